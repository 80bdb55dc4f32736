// SPDX-License-Identifier: Apache-2.0
#include <turtlefinder/clients/grpc/cri.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include <boost/json.hpp>

#include <turtlefinder/clients/grpc/containerd.hpp>

#include "channel_client.hpp"
#include "stream_reader.hpp"
#include "tf_cri_api.grpc.pb.h"

namespace turtlefinder::clients::grpc {

namespace cri = ::runtime::v1;

namespace {

// containerd's CRI plugin answers every call, Version too, with this until
// it has initialised, a moment after the socket first accepts: an engine
// process found as soon as it listens (process events) meets it.
bool cri_initialising(const ::grpc::Status &status) {
    return status.error_code() == ::grpc::StatusCode::UNKNOWN &&
           status.error_message().find("not initialized") != std::string::npos;
}

} // namespace

std::optional<CriVersion> probe_cri(const std::string &socket, std::chrono::milliseconds timeout,
                                    ProbeFailure *failure) {
    cri::VersionRequest request;
    request.set_version("v1");
    cri::VersionResponse response;
    constexpr auto pause = std::chrono::milliseconds(50);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    ::grpc::Status status;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        status = probe_call(socket, std::max(left, std::chrono::milliseconds(1)),
                            [&](UnixChannel &channel, ::grpc::ClientContext &ctx) {
                                return cri::RuntimeService::NewStub(channel.get())->Version(&ctx, request, &response);
                            });
        // Initialising: asked again within the probe's time.
        if (!cri_initialising(status) || std::chrono::steady_clock::now() + pause >= deadline) break;
        std::this_thread::sleep_for(pause);
    }
    if (!status.ok()) {
        if (failure != nullptr) *failure = probe_failure(socket, status, "the CRI's runtime.v1 Version service");
        return std::nullopt;
    }
    return CriVersion{response.runtime_name(), response.runtime_version(), response.runtime_api_version()};
}

int pid_from_info_json(const std::string &json) noexcept {
    boost::system::error_code ec;
    auto value = boost::json::parse(json, ec);
    if (ec || !value.is_object()) return 0;
    const auto *pid = value.as_object().if_contains("pid");
    if (pid == nullptr) return 0;
    if (pid->is_int64()) return static_cast<int>(std::clamp<int64_t>(pid->as_int64(), 0, INT32_MAX));
    if (pid->is_uint64()) return static_cast<int>(std::min<uint64_t>(pid->as_uint64(), INT32_MAX));
    if (pid->is_double() && pid->as_double() > 0 && pid->as_double() < INT32_MAX)
        return static_cast<int>(pid->as_double());
    return 0;
}

namespace {

int pid_from_info(const google::protobuf::Map<std::string, std::string> &info) {
    auto it = info.find("info");
    return it == info.end() ? 0 : pid_from_info_json(it->second);
}

void add_pod_labels(sdk::Container &c, const cri::PodSandboxMetadata &meta) {
    c.labels.emplace_back(label_pod_name, meta.name());
    c.labels.emplace_back(label_pod_namespace, meta.namespace_());
    c.labels.emplace_back(label_pod_uid, meta.uid());
}

// Labels from the engine, with the metadata-derived keys replacing any
// same-named label so each key appears once.
void copy_labels(sdk::Container &c, const google::protobuf::Map<std::string, std::string> &labels) {
    for (const auto &[k, v] : labels)
        if (k != label_pod_name && k != label_pod_namespace && k != label_pod_uid && k != label_container_name &&
            k != label_sandbox)
            c.labels.emplace_back(k, v);
}

class CriClient final : public ChannelClient {
public:
    CriClient(sdk::EngineInfo info, CriOptions options, std::chrono::milliseconds timeout, sdk::Log log,
              std::unique_ptr<UnixChannel> channel)
        : ChannelClient(std::move(info), "CRI " + options.socket + ": ", timeout, std::move(log), std::move(channel)),
          options_(std::move(options)),
          runtime_(cri::RuntimeService::NewStub(channel_->get())) {}

    void list(const std::function<bool(const sdk::Container &)> &emit) override {
        cri::ListPodSandboxRequest sandboxes_request;
        sandboxes_request.mutable_filter()->mutable_state()->set_state(cri::SANDBOX_READY);
        cri::ListPodSandboxResponse sandboxes;
        {
            ::grpc::ClientContext ctx;
            prepare(ctx, timeout_);
            CallSet::Guard guard(calls_, ctx);
            check(runtime_->ListPodSandbox(&ctx, sandboxes_request, &sandboxes), "list pod sandboxes");
        }
        std::map<std::string, cri::PodSandboxMetadata> pods;
        for (const auto &s : sandboxes.items()) pods[s.id()] = s.metadata();

        cri::ListContainersRequest containers_request;
        containers_request.mutable_filter()->mutable_state()->set_state(cri::CONTAINER_RUNNING);
        cri::ListContainersResponse containers;
        {
            ::grpc::ClientContext ctx;
            prepare(ctx, timeout_);
            CallSet::Guard guard(calls_, ctx);
            check(runtime_->ListContainers(&ctx, containers_request, &containers), "list containers");
        }

        for (const auto &s : sandboxes.items()) {
            auto c = sandbox_details(s.id());
            if (c && !emit(*c)) return;
        }
        for (const auto &k : containers.containers()) {
            auto pod = pods.find(k.pod_sandbox_id());
            auto c = container_details(k, pod == pods.end() ? nullptr : &pod->second);
            if (c && !emit(*c)) return;
        }
    }

    std::optional<sdk::Container> inspect(const std::string &id) override {
        cri::ListContainersRequest request;
        request.mutable_filter()->set_id(id);
        cri::ListContainersResponse containers;
        {
            ::grpc::ClientContext ctx;
            prepare(ctx, timeout_);
            CallSet::Guard guard(calls_, ctx);
            check(runtime_->ListContainers(&ctx, request, &containers), "list container " + id);
        }
        for (const auto &k : containers.containers()) {
            if (k.id() != id) continue; // the filter may match by prefix
            if (k.state() != cri::CONTAINER_RUNNING) return std::nullopt;
            std::optional<cri::PodSandboxMetadata> pod;
            if (auto s = sandbox_status(k.pod_sandbox_id(), false)) pod = s->status().metadata();
            return container_details(k, pod ? &*pod : nullptr);
        }
        return sandbox_details(id);
    }

    void watch(sdk::WatchSink &sink) override {
        StreamReader<cri::ContainerEventResponse> stream(
            calls_, [&](::grpc::ClientContext *ctx, ::grpc::CompletionQueue *cq) {
                return runtime_->PrepareAsyncGetContainerEvents(ctx, cri::GetEventsRequest{}, cq);
            });
        using Next = StreamReader<cri::ContainerEventResponse>::Next;
        // A runtime without the event API answers UNIMPLEMENTED (containerd
        // < 1.7) or closes the stream (CRI-O without enable_pod_events) right
        // away; a live stream sends nothing until something happens. So a
        // stream still open after a short window is taken as subscribed.
        auto window = std::clamp(timeout_ / 2, std::chrono::milliseconds(100), std::chrono::milliseconds(1000));
        cri::ContainerEventResponse event;
        auto r = stream.next(event, std::chrono::system_clock::now() + window);
        if (r == Next::ended) {
            if (calls_.cancelled()) throw sdk::Error(-ECANCELED, "watch cancelled");
            const auto &status = stream.status();
            if (status.ok() || status.error_code() == ::grpc::StatusCode::UNIMPLEMENTED) {
                if (!told_no_events_.exchange(true))
                    log(TF_LOG_INFO, "runtime has no container event stream (GetContainerEvents: " +
                                         (status.ok() ? std::string("ended at once") : status.error_message()) +
                                         "); relisting instead");
                throw sdk::Error(-ENOTSUP, "CRI runtime has no container event stream");
            }
            check(status, "CRI event stream");
        }
        if (!sink.subscribed()) return;
        if (r == Next::message && !deliver(event, sink)) return;
        while (true) {
            cri::ContainerEventResponse next;
            r = stream.next(next, std::chrono::system_clock::now() + std::chrono::seconds(1));
            if (r == Next::timeout) {
                if (calls_.cancelled()) throw sdk::Error(-ECANCELED, "watch cancelled");
                continue;
            }
            if (r == Next::ended) {
                if (calls_.cancelled()) throw sdk::Error(-ECANCELED, "watch cancelled");
                check(stream.status(), "CRI event stream");
                throw sdk::Error(-EPIPE, "CRI event stream ended");
            }
            if (!deliver(next, sink)) return;
        }
    }

private:
    static bool deliver(const cri::ContainerEventResponse &event, sdk::WatchSink &sink) {
        switch (event.container_event_type()) {
        case cri::CONTAINER_STARTED_EVENT: return sink.event(sdk::EventKind::started, event.container_id());
        case cri::CONTAINER_STOPPED_EVENT: return sink.event(sdk::EventKind::exited, event.container_id());
        default: return true; // created: not alive yet; deleted: its stop came first
        }
    }

    std::optional<cri::PodSandboxStatusResponse> sandbox_status(const std::string &id, bool verbose) {
        ::grpc::ClientContext ctx;
        prepare(ctx, timeout_);
        CallSet::Guard guard(calls_, ctx);
        cri::PodSandboxStatusRequest request;
        request.set_pod_sandbox_id(id);
        request.set_verbose(verbose);
        cri::PodSandboxStatusResponse response;
        auto status = runtime_->PodSandboxStatus(&ctx, request, &response);
        if (status.error_code() == ::grpc::StatusCode::NOT_FOUND) return std::nullopt;
        check(status, "pod sandbox status " + id);
        return response;
    }

    // A ready sandbox as a container, nullopt when gone or not ready.
    std::optional<sdk::Container> sandbox_details(const std::string &id) {
        auto response = sandbox_status(id, true);
        if (!response || response->status().id().empty() || response->status().state() != cri::SANDBOX_READY)
            return std::nullopt;
        const auto &s = response->status();
        sdk::Container c;
        c.id = s.id();
        c.name = s.metadata().name().empty() ? s.id() : s.metadata().name();
        c.pid = pid_from_info(response->info());
        copy_labels(c, s.labels());
        add_pod_labels(c, s.metadata());
        c.labels.emplace_back(label_sandbox, "true");
        return c;
    }

    std::optional<sdk::Container> container_details(const cri::Container &k, const cri::PodSandboxMetadata *pod) {
        ::grpc::ClientContext ctx;
        prepare(ctx, timeout_);
        CallSet::Guard guard(calls_, ctx);
        cri::ContainerStatusRequest request;
        request.set_container_id(k.id());
        request.set_verbose(true);
        cri::ContainerStatusResponse response;
        auto status = runtime_->ContainerStatus(&ctx, request, &response);
        if (status.error_code() == ::grpc::StatusCode::NOT_FOUND) return std::nullopt;
        check(status, "container status " + k.id());
        if (response.status().state() != cri::CONTAINER_RUNNING) return std::nullopt;
        sdk::Container c;
        c.id = k.id();
        c.name = k.metadata().name().empty() ? k.id() : k.metadata().name();
        c.pid = pid_from_info(response.info());
        copy_labels(c, k.labels());
        if (pod != nullptr) add_pod_labels(c, *pod);
        c.labels.emplace_back(label_container_name, k.metadata().name());
        return c;
    }

    CriOptions options_;
    std::unique_ptr<cri::RuntimeService::Stub> runtime_;
    std::atomic<bool> told_no_events_{false};
};

} // namespace

std::unique_ptr<sdk::EngineClient> make_cri_client(const sdk::ProbeRequest &request, CriOptions options) {
    auto channel = std::make_unique<UnixChannel>(options.socket);
    std::string version = options.version.runtime_name + " " + options.version.runtime_version;
    sdk::EngineInfo info{"k8s.io/cri-api", options.flavor, node_engine_id(request.pid, options.socket),
                         version,          options.socket, request.pid};
    return std::make_unique<CriClient>(std::move(info), std::move(options), request.timeout, request.log,
                                       std::move(channel));
}

std::unique_ptr<sdk::EngineClient> probe_cri_engine(const sdk::ProbeRequest &request, const std::string &socket,
                                                    std::string flavor, ProbeFailure *failure) {
    auto version = probe_cri(socket, request.timeout, failure);
    if (!version) return nullptr;
    return make_cri_client(request, {socket, std::move(flavor), std::move(*version)});
}

} // namespace turtlefinder::clients::grpc
