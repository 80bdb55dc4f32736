// SPDX-License-Identifier: Apache-2.0
// tf-lab-cri: creates and removes CRI (runtime.v1) pods and containers, for
// the lab's CriAdmin. A process of its own, with its own copy of the
// generated CRI code: a test process also loads the gRPC client library,
// whose copy stays private to it, and protobuf aborts when one process
// registers a .proto file twice.
//
//   tf-lab-cri SOCKET TIMEOUT_MS REQUEST-JSON
//
// REQUEST-JSON is an object with "op" and the operation's fields (see
// cri_admin.cpp). Prints the answer as one JSON object; on failure prints
// the reason to stderr and exits 1 (2: the request itself was wrong).
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>

#include <boost/json.hpp>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "tf_cri_api.grpc.pb.h"

namespace json = boost::json;
namespace cri = ::runtime::v1;

namespace {

struct BadRequest : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string text(const json::object &request, const char *key) {
    auto *v = request.if_contains(key);
    if (v == nullptr || !v->is_string()) throw BadRequest(std::string("\"") + key + "\" must be a string");
    return std::string(v->as_string());
}

void add_labels(const json::object &request, const char *key, google::protobuf::Map<std::string, std::string> &to) {
    auto *v = request.if_contains(key);
    if (v == nullptr) return;
    if (!v->is_object()) throw BadRequest(std::string("\"") + key + "\" must be an object of strings");
    for (const auto &[k, value] : v->as_object()) {
        if (!value.is_string()) throw BadRequest(std::string("\"") + key + "\" must be an object of strings");
        to[std::string(k)] = std::string(value.as_string());
    }
}

// The pod's configuration, which creating a container in it repeats.
cri::PodSandboxConfig pod_config(const json::object &pod) {
    cri::PodSandboxConfig config;
    config.mutable_metadata()->set_name(text(pod, "name"));
    config.mutable_metadata()->set_namespace_(text(pod, "namespace"));
    config.mutable_metadata()->set_uid(text(pod, "uid"));
    add_labels(pod, "labels", *config.mutable_labels());
    // Host network: no CNI is needed. PID and IPC stay per pod.
    config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(cri::NODE);
    return config;
}

class Client {
public:
    Client(const std::string &target, std::chrono::milliseconds timeout)
        : timeout_(timeout),
          stub_(cri::RuntimeService::NewStub(::grpc::CreateChannel(target, ::grpc::InsecureChannelCredentials()))) {}

    template <typename Request, typename Response>
    Response call(::grpc::Status (cri::RuntimeService::Stub::*method)(::grpc::ClientContext *, const Request &,
                                                                      Response *),
                  const Request &request, const std::string &what) {
        ::grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
        ctx.set_wait_for_ready(false);
        Response response;
        auto status = ((*stub_).*method)(&ctx, request, &response);
        if (!status.ok()) throw std::runtime_error(what + ": " + status.error_message());
        return response;
    }

private:
    std::chrono::milliseconds timeout_;
    std::unique_ptr<cri::RuntimeService::Stub> stub_;
};

json::object serve(Client &client, const json::object &request) {
    const std::string op = text(request, "op");
    if (op == "version") {
        cri::VersionRequest r;
        r.set_version("v1");
        auto v = client.call(&cri::RuntimeService::Stub::Version, r, "CRI version");
        return {{"runtime_name", v.runtime_name()},
                {"runtime_version", v.runtime_version()},
                {"runtime_api_version", v.runtime_api_version()}};
    }
    if (op == "run-pod") {
        cri::RunPodSandboxRequest r;
        *r.mutable_config() = pod_config(request);
        return {{"id", client.call(&cri::RuntimeService::Stub::RunPodSandbox, r, "run pod " + text(request, "name"))
                           .pod_sandbox_id()}};
    }
    if (op == "create-container") {
        auto *pod = request.if_contains("pod");
        if (pod == nullptr || !pod->is_object()) throw BadRequest("\"pod\" must be an object");
        cri::CreateContainerRequest r;
        r.set_pod_sandbox_id(text(request, "pod_id"));
        *r.mutable_sandbox_config() = pod_config(pod->as_object());
        auto *config = r.mutable_config();
        config->mutable_metadata()->set_name(text(request, "name"));
        config->mutable_image()->set_image(text(request, "image"));
        if (auto *command = request.if_contains("command")) {
            if (!command->is_array()) throw BadRequest("\"command\" must be an array of strings");
            for (const auto &arg : command->as_array()) {
                if (!arg.is_string()) throw BadRequest("\"command\" must be an array of strings");
                config->add_command(std::string(arg.as_string()));
            }
        }
        add_labels(request, "labels", *config->mutable_labels());
        config->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(cri::NODE);
        return {
            {"id",
             client.call(&cri::RuntimeService::Stub::CreateContainer, r, "create container " + text(request, "name"))
                 .container_id()}};
    }
    const std::string id = text(request, "id");
    if (op == "start-container") {
        cri::StartContainerRequest r;
        r.set_container_id(id);
        client.call(&cri::RuntimeService::Stub::StartContainer, r, "start container " + id);
    } else if (op == "stop-container") {
        cri::StopContainerRequest r;
        r.set_container_id(id);
        r.set_timeout(0);
        client.call(&cri::RuntimeService::Stub::StopContainer, r, "stop container " + id);
    } else if (op == "remove-container") {
        cri::RemoveContainerRequest r;
        r.set_container_id(id);
        client.call(&cri::RuntimeService::Stub::RemoveContainer, r, "remove container " + id);
    } else if (op == "stop-pod") {
        cri::StopPodSandboxRequest r;
        r.set_pod_sandbox_id(id);
        client.call(&cri::RuntimeService::Stub::StopPodSandbox, r, "stop pod " + id);
    } else if (op == "remove-pod") {
        cri::RemovePodSandboxRequest r;
        r.set_pod_sandbox_id(id);
        client.call(&cri::RuntimeService::Stub::RemovePodSandbox, r, "remove pod " + id);
    } else {
        throw BadRequest("unknown \"op\": " + op);
    }
    return {};
}

} // namespace

int main(int argc, char **argv) {
    if (argc != 4) {
        std::cerr << "usage: tf-lab-cri SOCKET TIMEOUT_MS REQUEST-JSON\n";
        return 2;
    }
    try {
        std::string socket = argv[1];
        auto timeout = std::chrono::milliseconds(std::stol(argv[2]));
        boost::system::error_code ec;
        auto request = json::parse(argv[3], ec);
        if (ec || !request.is_object()) throw BadRequest("the request is not a JSON object");
        // A socket path longer than sun_path (a nested engine's, reached
        // through /proc/PID/root) is reached from its directory.
        auto slash = socket.rfind('/');
        if (socket.size() >= 100 && slash != std::string::npos && slash > 0) {
            if (::chdir(socket.substr(0, slash).c_str()) != 0)
                throw std::runtime_error("cannot enter the directory of " + socket);
            socket = socket.substr(slash + 1);
        }
        Client client("unix:" + socket, timeout);
        std::cout << json::serialize(serve(client, request.as_object())) << "\n";
        return 0;
    } catch (const BadRequest &e) {
        std::cerr << "tf-lab-cri: bad request: " << e.what() << "\n";
        return 2;
    } catch (const std::exception &e) {
        std::cerr << "tf-lab-cri: " << e.what() << "\n";
        return 1;
    }
}
