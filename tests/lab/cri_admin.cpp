// SPDX-License-Identifier: Apache-2.0
// Each call runs tf-lab-cri (cri_tool_main.cpp), a CRI client process of its
// own: see there why the generated CRI code cannot live in a test process.
#include "cri_admin.hpp"

#include <cerrno>

#include <boost/json.hpp>

#include <turtlefinder/plugin.hpp>

#include "lab.hpp"

namespace turtlefinder::lab {

namespace json = boost::json;

namespace {

json::object labels_of(const std::map<std::string, std::string> &labels) {
    json::object out;
    for (const auto &[k, v] : labels) out[k] = v;
    return out;
}

} // namespace

struct CriAdmin::Impl {
    std::string socket;
    std::chrono::milliseconds timeout;
    std::map<std::string, json::object> pods; // id → the pod's request, which creating a container repeats

    json::object call(const json::object &request, const std::string &what) const {
        // The tool's own deadline is `timeout`; this one only stops a hang.
        auto r = run({TF_LAB_CRI_TOOL, socket, std::to_string(timeout.count()), json::serialize(request)}, {},
                     timeout + std::chrono::seconds(30));
        if (!r.ok())
            throw sdk::Error(r.timed_out ? -ETIMEDOUT : -EIO,
                             what + " failed (tf-lab-cri exit " + std::to_string(r.exit_code) + "): " + trim(r.err));
        boost::system::error_code ec;
        auto answer = json::parse(r.out, ec);
        if (ec || !answer.is_object()) throw sdk::Error(-EPROTO, what + ": tf-lab-cri answered " + r.out);
        return answer.as_object();
    }
    std::string id_of(const json::object &request, const std::string &what) const {
        auto answer = call(request, what);
        auto *id = answer.if_contains("id");
        if (id == nullptr || !id->is_string())
            throw sdk::Error(-EPROTO, what + ": no id in " + json::serialize(answer));
        return std::string(id->as_string());
    }
};

CriAdmin::CriAdmin(const std::string &socket, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(Impl{socket, timeout, {}})) {}

CriAdmin::~CriAdmin() = default;

clients::grpc::CriVersion CriAdmin::version() {
    auto v = impl_->call({{"op", "version"}}, "CRI version");
    auto field = [&](const char *key) { return std::string(v.at(key).as_string()); };
    return {field("runtime_name"), field("runtime_version"), field("runtime_api_version")};
}

std::string CriAdmin::run_pod(const std::string &name, const std::string &pod_namespace, const std::string &uid,
                              const std::map<std::string, std::string> &labels) {
    json::object pod{{"name", name}, {"namespace", pod_namespace}, {"uid", uid}, {"labels", labels_of(labels)}};
    json::object request = pod;
    request["op"] = "run-pod";
    auto id = impl_->id_of(request, "run pod " + name);
    impl_->pods[id] = std::move(pod);
    return id;
}

std::string CriAdmin::create_container(const std::string &pod_id, const std::string &name, const std::string &image,
                                       const std::vector<std::string> &command,
                                       const std::map<std::string, std::string> &labels) {
    auto pod = impl_->pods.find(pod_id);
    if (pod == impl_->pods.end()) throw sdk::Error(-ENOENT, "pod " + pod_id + " was not created here");
    json::array args;
    for (const auto &a : command) args.emplace_back(a);
    return impl_->id_of({{"op", "create-container"},
                         {"pod_id", pod_id},
                         {"pod", pod->second},
                         {"name", name},
                         {"image", image},
                         {"command", std::move(args)},
                         {"labels", labels_of(labels)}},
                        "create container " + name);
}

void CriAdmin::start_container(const std::string &id) {
    impl_->call({{"op", "start-container"}, {"id", id}}, "start container " + id);
}

void CriAdmin::stop_container(const std::string &id) {
    impl_->call({{"op", "stop-container"}, {"id", id}}, "stop container " + id);
}

void CriAdmin::remove_container(const std::string &id) {
    impl_->call({{"op", "remove-container"}, {"id", id}}, "remove container " + id);
}

void CriAdmin::stop_pod(const std::string &id) { impl_->call({{"op", "stop-pod"}, {"id", id}}, "stop pod " + id); }

void CriAdmin::remove_pod(const std::string &id) {
    impl_->call({{"op", "remove-pod"}, {"id", id}}, "remove pod " + id);
    impl_->pods.erase(id);
}

} // namespace turtlefinder::lab
