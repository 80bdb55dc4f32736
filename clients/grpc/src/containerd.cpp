// SPDX-License-Identifier: Apache-2.0
#include <turtlefinder/clients/grpc/containerd.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include <google/protobuf/empty.pb.h>

#include "channel_client.hpp"
#include "stream_reader.hpp"
#include "tf_containerd_containers.grpc.pb.h"
#include "tf_containerd_events.grpc.pb.h"
#include "tf_containerd_introspection.grpc.pb.h"
#include "tf_containerd_namespaces.grpc.pb.h"
#include "tf_containerd_task_events.pb.h"
#include "tf_containerd_tasks.grpc.pb.h"
#include "tf_containerd_version.grpc.pb.h"

namespace turtlefinder::clients::grpc {

namespace cd_version = ::containerd::services::version::v1;
namespace cd_introspection = ::containerd::services::introspection::v1;
namespace cd_namespaces = ::containerd::services::namespaces::v1;
namespace cd_containers = ::containerd::services::containers::v1;
namespace cd_tasks = ::containerd::services::tasks::v1;
namespace cd_events = ::containerd::services::events::v1;
namespace cd_types = ::containerd::v1::types;

std::set<std::string> split_list(const std::string &text) {
    std::set<std::string> items;
    std::string::size_type pos = 0;
    while (pos <= text.size()) {
        auto comma = text.find(',', pos);
        if (comma == std::string::npos) comma = text.size();
        auto item = text.substr(pos, comma - pos);
        auto first = item.find_first_not_of(" \t");
        auto last = item.find_last_not_of(" \t");
        if (first != std::string::npos) items.insert(item.substr(first, last - first + 1));
        pos = comma + 1;
    }
    return items;
}

std::optional<std::string> probe_containerd(const std::string &socket, std::chrono::milliseconds timeout,
                                            ProbeFailure *failure) {
    cd_version::VersionResponse response;
    auto status = probe_call(socket, timeout, [&](UnixChannel &channel, ::grpc::ClientContext &ctx) {
        return cd_version::Version::NewStub(channel.get())->Version(&ctx, ::google::protobuf::Empty{}, &response);
    });
    if (!status.ok()) {
        if (failure != nullptr) *failure = probe_failure(socket, status, "containerd's Version service");
        return std::nullopt;
    }
    return response.version();
}

std::string node_engine_id(int engine_pid, const std::string &socket) {
    std::string inner = socket_name(socket);
    const std::string root = "/proc/" + std::to_string(engine_pid) + "/root";
    if (inner.compare(0, root.size(), root) == 0 && inner.size() > root.size() && inner[root.size()] == '/')
        inner = inner.substr(root.size());

    std::string host;
    std::string ns_path = "/proc/" + std::to_string(engine_pid) + "/ns/uts";
    struct stat theirs {
    }, ours{};
    if (::stat(ns_path.c_str(), &theirs) == 0 && ::stat("/proc/self/ns/uts", &ours) == 0 &&
        theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev) {
        utsname u{};
        if (::uname(&u) == 0) host = u.nodename;
    } else if (engine_pid > 0) {
        // setns(CLONE_NEWUTS) affects only the calling thread, which then ends.
        std::thread([&] {
            int fd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) return;
            utsname u{};
            if (::setns(fd, CLONE_NEWUTS) == 0 && ::uname(&u) == 0) host = u.nodename;
            ::close(fd);
        }).join();
        if (host.empty() && theirs.st_ino != 0) host = "uts-" + std::to_string(theirs.st_ino);
    }
    if (host.empty()) host = "unknown-host";
    return host + ":" + inner;
}

namespace {

constexpr const char *sync_topic = "/turtlefinder/subscribed";
constexpr const char *sync_type = "turtlefinder.io/subscribed";
constexpr std::chrono::milliseconds marker_retry{50};

class ContainerdClient final : public ChannelClient {
public:
    ContainerdClient(sdk::EngineInfo info, ContainerdOptions options, std::chrono::milliseconds timeout, sdk::Log log,
                     std::unique_ptr<UnixChannel> channel)
        : ChannelClient(std::move(info), "containerd " + options.socket + ": ", timeout, std::move(log),
                        std::move(channel)),
          options_(std::move(options)),
          namespaces_(cd_namespaces::Namespaces::NewStub(channel_->get())),
          containers_(cd_containers::Containers::NewStub(channel_->get())),
          tasks_(cd_tasks::Tasks::NewStub(channel_->get())),
          events_(cd_events::Events::NewStub(channel_->get())) {}

    void list(const std::function<bool(const sdk::Container &)> &emit) override {
        for (const auto &ns : namespaces()) {
            if (options_.skip_namespaces.count(ns) != 0) continue;
            cd_tasks::ListTasksResponse tasks;
            {
                ::grpc::ClientContext ctx;
                prepare(ctx, timeout_, ns);
                CallSet::Guard guard(calls_, ctx);
                check(tasks_->List(&ctx, cd_tasks::ListTasksRequest{}, &tasks), "list tasks in " + ns);
            }
            if (tasks.tasks_size() == 0) continue;
            cd_containers::ListContainersResponse containers;
            {
                ::grpc::ClientContext ctx;
                prepare(ctx, timeout_, ns);
                CallSet::Guard guard(calls_, ctx);
                check(containers_->List(&ctx, cd_containers::ListContainersRequest{}, &containers),
                      "list containers in " + ns);
            }
            std::map<std::string, const cd_containers::Container *> by_id;
            for (const auto &c : containers.containers()) by_id[c.id()] = &c;
            for (const auto &task : tasks.tasks()) {
                const std::string &id = task.container_id().empty() ? task.id() : task.container_id();
                if (!task.id().empty() && !task.container_id().empty() && task.id() != task.container_id())
                    continue; // an exec process, not a container's init
                if (!alive(task.status())) continue;
                auto it = by_id.find(id);
                if (!emit(to_container(ns, id, task, it == by_id.end() ? nullptr : it->second))) return;
            }
        }
    }

    std::optional<sdk::Container> inspect(const std::string &display_id) override {
        auto [ns, id] = split_id(display_id);
        if (id.empty() || options_.skip_namespaces.count(ns) != 0) return std::nullopt;
        cd_tasks::GetResponse task;
        {
            ::grpc::ClientContext ctx;
            prepare(ctx, timeout_, ns);
            CallSet::Guard guard(calls_, ctx);
            cd_tasks::GetRequest request;
            request.set_container_id(id);
            auto status = tasks_->Get(&ctx, request, &task);
            if (status.error_code() == ::grpc::StatusCode::NOT_FOUND) return std::nullopt;
            check(status, "get task " + display_id);
        }
        if (!alive(task.process().status())) return std::nullopt;
        cd_containers::GetContainerResponse container;
        {
            ::grpc::ClientContext ctx;
            prepare(ctx, timeout_, ns);
            CallSet::Guard guard(calls_, ctx);
            cd_containers::GetContainerRequest request;
            request.set_id(id);
            auto status = containers_->Get(&ctx, request, &container);
            if (status.error_code() == ::grpc::StatusCode::NOT_FOUND) return std::nullopt;
            check(status, "get container " + display_id);
        }
        return to_container(ns, id, task.process(), &container.container());
    }

    void watch(sdk::WatchSink &sink) override {
        cd_events::SubscribeRequest request;
        for (const char *topic : {"/tasks/start", "/tasks/exit", "/tasks/paused", "/tasks/resumed", sync_topic})
            request.add_filters(std::string("topic==\"") + topic + "\"");
        StreamReader<cd_events::Envelope> stream(calls_, [&](::grpc::ClientContext *ctx, ::grpc::CompletionQueue *cq) {
            return events_->PrepareAsyncSubscribe(ctx, request, cq);
        });

        // containerd sends no response headers before the first event, so the
        // only proof that the subscription stands is an event coming through
        // it: publish a marker and wait for it. Events before it are kept and
        // delivered after subscribed(), as the ABI asks.
        // The stream makes progress only while its queue is polled, so the
        // first marker usually reaches containerd before the subscription
        // does and is lost: publish it again every marker_retry until it
        // comes back (or the timeout passes).
        std::string token = random_token();
        bool marker_sent = publish_marker(token);
        std::vector<cd_events::Envelope> early;
        const auto until = std::chrono::system_clock::now() + timeout_;
        auto republish = std::chrono::system_clock::now() + marker_retry;
        while (marker_sent) {
            cd_events::Envelope envelope;
            auto r = stream.next(envelope, std::min(until, republish));
            if (r == StreamReader<cd_events::Envelope>::Next::timeout) {
                if (std::chrono::system_clock::now() < until) {
                    publish_marker(token);
                    republish = std::chrono::system_clock::now() + marker_retry;
                    continue;
                }
                log(TF_LOG_DEBUG, "subscription marker did not come back in time; assuming subscribed");
                break;
            }
            if (r == StreamReader<cd_events::Envelope>::Next::ended) stream_ended(stream.status());
            if (envelope.topic() == sync_topic) {
                if (envelope.event().value() == token) break;
                continue; // another watcher's marker
            }
            early.push_back(std::move(envelope));
        }
        if (!sink.subscribed()) return;
        for (const auto &envelope : early)
            if (!deliver(envelope, sink)) return;
        while (true) {
            cd_events::Envelope envelope;
            auto r = stream.next(envelope, std::chrono::system_clock::now() + std::chrono::seconds(1));
            if (r == StreamReader<cd_events::Envelope>::Next::timeout) {
                if (calls_.cancelled()) throw sdk::Error(-ECANCELED, "watch cancelled");
                continue;
            }
            if (r == StreamReader<cd_events::Envelope>::Next::ended) stream_ended(stream.status());
            if (!deliver(envelope, sink)) return;
        }
    }

private:
    static bool alive(cd_types::Status status) {
        return status == cd_types::RUNNING || status == cd_types::PAUSED || status == cd_types::PAUSING;
    }

    static std::string display_id(const std::string &ns, const std::string &id) {
        return ns == "default" ? id : ns + "/" + id;
    }

    // "ns/id" → {ns, id}; an id without a namespace is in "default". containerd
    // namespaces and ids cannot contain '/', so the first one splits.
    static std::pair<std::string, std::string> split_id(const std::string &display) {
        auto slash = display.find('/');
        if (slash == std::string::npos) return {"default", display};
        return {display.substr(0, slash), display.substr(slash + 1)};
    }

    sdk::Container to_container(const std::string &ns, const std::string &id, const cd_types::Process &task,
                                const cd_containers::Container *meta) const {
        sdk::Container c;
        c.id = display_id(ns, id);
        c.pid = static_cast<int>(task.pid());
        c.paused = task.status() == cd_types::PAUSED || task.status() == cd_types::PAUSING;
        c.name = c.id;
        if (meta != nullptr) {
            for (const auto &[k, v] : meta->labels()) c.labels.emplace_back(k, v);
            auto it = meta->labels().find("nerdctl/name");
            if (it != meta->labels().end() && !it->second.empty()) c.name = it->second;
        }
        return c;
    }

    std::vector<std::string> namespaces() {
        ::grpc::ClientContext ctx;
        prepare(ctx, timeout_);
        CallSet::Guard guard(calls_, ctx);
        cd_namespaces::ListNamespacesResponse response;
        check(namespaces_->List(&ctx, cd_namespaces::ListNamespacesRequest{}, &response), "list namespaces");
        std::vector<std::string> names;
        for (const auto &ns : response.namespaces()) names.push_back(ns.name());
        return names;
    }

    bool publish_marker(const std::string &token) {
        ::grpc::ClientContext ctx;
        prepare(ctx, timeout_, "default");
        CallSet::Guard guard(calls_, ctx);
        cd_events::PublishRequest request;
        request.set_topic(sync_topic);
        request.mutable_event()->set_type_url(sync_type);
        request.mutable_event()->set_value(token);
        ::google::protobuf::Empty empty;
        auto status = events_->Publish(&ctx, request, &empty);
        if (!status.ok()) {
            if (calls_.cancelled()) throw sdk::Error(-ECANCELED, "watch cancelled");
            log(TF_LOG_DEBUG, "cannot publish the subscription marker: " + status.error_message());
        }
        return status.ok();
    }

    [[noreturn]] void stream_ended(const ::grpc::Status &status) {
        if (calls_.cancelled()) throw sdk::Error(-ECANCELED, "watch cancelled");
        check(status, "containerd event stream");
        throw sdk::Error(-EPIPE, "containerd event stream ended");
    }

    bool deliver(const cd_events::Envelope &envelope, sdk::WatchSink &sink) {
        const std::string &ns = envelope.namespace_();
        if (options_.skip_namespaces.count(ns) != 0) return true;
        const std::string &topic = envelope.topic();
        const std::string &payload = envelope.event().value();
        if (topic == "/tasks/start") {
            ::containerd::events::TaskStart e;
            if (!e.ParseFromString(payload)) return bad_event(topic);
            return sink.event(sdk::EventKind::started, display_id(ns, e.container_id()));
        }
        if (topic == "/tasks/exit") {
            ::containerd::events::TaskExit e;
            if (!e.ParseFromString(payload)) return bad_event(topic);
            if (!e.id().empty() && e.id() != e.container_id()) return true; // an exec ended, not the container
            return sink.event(sdk::EventKind::exited, display_id(ns, e.container_id()));
        }
        if (topic == "/tasks/paused") {
            ::containerd::events::TaskPaused e;
            if (!e.ParseFromString(payload)) return bad_event(topic);
            return sink.event(sdk::EventKind::paused, display_id(ns, e.container_id()));
        }
        if (topic == "/tasks/resumed") {
            ::containerd::events::TaskResumed e;
            if (!e.ParseFromString(payload)) return bad_event(topic);
            return sink.event(sdk::EventKind::unpaused, display_id(ns, e.container_id()));
        }
        return true;
    }

    bool bad_event(const std::string &topic) {
        log(TF_LOG_WARN, "undecodable containerd event on " + topic + "; skipped");
        return true;
    }

    static std::string random_token() {
        std::random_device rd;
        std::mt19937_64 gen(rd());
        return std::to_string(gen()) + "-" + std::to_string(gen());
    }

    ContainerdOptions options_;
    std::unique_ptr<cd_namespaces::Namespaces::Stub> namespaces_;
    std::unique_ptr<cd_containers::Containers::Stub> containers_;
    std::unique_ptr<cd_tasks::Tasks::Stub> tasks_;
    std::unique_ptr<cd_events::Events::Stub> events_;
};

} // namespace

std::unique_ptr<sdk::EngineClient> make_containerd_client(const sdk::ProbeRequest &request, ContainerdOptions options) {
    auto channel = std::make_unique<UnixChannel>(options.socket);
    std::string id;
    {
        auto stub = cd_introspection::Introspection::NewStub(channel->get());
        ::grpc::ClientContext ctx;
        prepare(ctx, request.timeout);
        cd_introspection::ServerResponse response;
        auto status = stub->Server(&ctx, ::google::protobuf::Empty{}, &response);
        if (status.ok() && !response.uuid().empty())
            id = response.uuid();
        else if (status.error_code() == ::grpc::StatusCode::UNIMPLEMENTED || status.ok())
            id = node_engine_id(request.pid, options.socket);
        else
            check(status, "containerd introspection");
    }
    sdk::EngineInfo info{"containerd.io", "containerd.io", id, options.version, options.socket, request.pid};
    return std::make_unique<ContainerdClient>(std::move(info), std::move(options), request.timeout, request.log,
                                              std::move(channel));
}

} // namespace turtlefinder::clients::grpc
