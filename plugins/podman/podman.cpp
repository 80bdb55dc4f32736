// SPDX-License-Identifier: Apache-2.0
// Podman's Docker-compatible API, found two ways:
//
// - as an activated engine: a socket whose path ends in `podman.sock`, held
//   by a socket activator (systemd), starts `podman system service` on the
//   first connection; the core then hands us that service process;
// - as an engine detector for a `podman system service` that runs on its own
//   (no activator), including one serving a `docker.sock` (podman-docker),
//   which the moby detector refuses because it answers like podman.
//
// Either way a socket is podman's only when GET /_ping carries the
// `Libpod-Api-Version` header: Docker's never does. Containers, inspection
// and events come from the shared Docker-API engine client; only the event
// subscription is adapted here (see DeferredWatch).
#include <turtlefinder/clients/docker/client.hpp>
#include <turtlefinder/clients/docker/engine.hpp>
#include <turtlefinder/plugin.h>
#include <turtlefinder/plugin.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tfplugin::podman {

namespace docker = turtlefinder::clients::docker;
namespace sdk = turtlefinder::sdk;

namespace {

using namespace std::chrono_literals;

// Podman (seen with 4.3) sends the /events response headers only together
// with the first event, so "the 200 headers are in" never tells that the
// subscription stands while nothing happens. Once the request has been
// outstanding this long without an error, it is taken as standing: podman
// subscribes to its event source as soon as it handles the request.
constexpr auto subscribe_grace = 250ms;
// Podman answers /version and /info by running helper programs (conmon,
// runc --version, dpkg-query): seconds on a busy host. Neither the probe nor
// the engine's calls use them (the client negotiates from /_ping alone);
// the calls still get at least this much time, listing being podman's
// slowest remaining answer on a loaded host.
constexpr auto call_timeout_floor = std::chrono::milliseconds(5000);
// The event connection waits for its (late) headers without a deadline of
// its own; it ends when podman closes it (podman exiting) or on cancel().
constexpr auto event_header_wait = std::chrono::hours(24 * 365);

struct QueuedEvent {
    sdk::EventKind kind;
    std::string id;
    std::optional<sdk::Container> details;
};

class Engine final : public sdk::EngineClient {
public:
    Engine(sdk::EngineInfo info, docker::Options options)
        : sdk::EngineClient(info),
          options_(options),
          calls_(docker::make_docker_engine(std::move(options), std::move(info))) {}

    ~Engine() override { cancel(); }

    void list(const std::function<bool(const sdk::Container &)> &emit) override { calls_->list(emit); }
    std::optional<sdk::Container> inspect(const std::string &id) override { return calls_->inspect(id); }

    // Runs the shared engine's watch on a helper thread with its own
    // connection and relays what it reports, so that sink.subscribed() can be
    // called after subscribe_grace even though podman holds its headers back.
    // Every sink call happens on this (the host's watch) thread, in order.
    void watch(sdk::WatchSink &sink) override {
        auto events_options = options_;
        events_options.timeout = event_header_wait;
        std::shared_ptr<sdk::EngineClient> stream;
        {
            std::lock_guard lock(mu_);
            if (cancelled_) throw sdk::Error(-ECANCELED, "cancelled");
            stream = docker::make_docker_engine(std::move(events_options), info());
            stream_ = stream;
        }
        Relay relay;
        std::thread helper([&] {
            try {
                stream->watch(relay);
            } catch (...) {
                relay.fail(std::current_exception());
                return;
            }
            relay.fail(nullptr); // returned because the relay asked it to stop
        });
        struct Joiner {
            std::thread &t;
            std::shared_ptr<sdk::EngineClient> &s;
            Relay &r;
            Engine &self;
            ~Joiner() {
                r.stop();
                s->cancel();
                t.join();
                std::lock_guard lock(self.mu_);
                self.stream_.reset();
            }
        } joiner{helper, stream, relay, *this};

        relay.wait_subscribed(subscribe_grace);
        relay.rethrow_if_done(); // failed at once: refused, gone, not podman
        if (is_cancelled()) throw sdk::Error(-ECANCELED, "cancelled");
        if (!sink.subscribed()) return;
        for (;;) {
            auto batch = relay.take();
            for (auto &e : batch)
                if (!sink.event(e.kind, e.id, e.details ? &*e.details : nullptr)) return;
            if (batch.empty()) {
                relay.rethrow_if_done();
                if (is_cancelled()) throw sdk::Error(-ECANCELED, "cancelled");
            }
        }
    }

    void cancel() override {
        std::shared_ptr<sdk::EngineClient> stream;
        {
            std::lock_guard lock(mu_);
            cancelled_ = true;
            stream = stream_;
        }
        calls_->cancel();
        if (stream) stream->cancel(); // the helper's watch returns, the relay wakes the watch thread
    }

private:
    // Carries what the helper's watch reports over to the watch thread.
    class Relay final : public sdk::WatchSink {
    public:
        bool subscribed() override {
            std::lock_guard lock(mu_);
            subscribed_ = true;
            cv_.notify_all();
            return !stopping_;
        }
        bool event(sdk::EventKind kind, const std::string &id, const sdk::Container *details) override {
            std::lock_guard lock(mu_);
            queue_.push_back({kind, id, details ? std::optional<sdk::Container>(*details) : std::nullopt});
            cv_.notify_all();
            return !stopping_;
        }
        void fail(std::exception_ptr error) {
            std::lock_guard lock(mu_);
            done_ = true;
            error_ = std::move(error);
            cv_.notify_all();
        }
        void stop() {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        void wait_subscribed(std::chrono::milliseconds grace) {
            std::unique_lock lock(mu_);
            cv_.wait_for(lock, grace, [&] { return subscribed_ || done_; });
        }
        // Waits for events (or the end); returns them in order, or none when done.
        std::deque<QueuedEvent> take() {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return !queue_.empty() || done_; });
            return std::exchange(queue_, {});
        }
        void rethrow_if_done() {
            std::lock_guard lock(mu_);
            if (!done_ || !queue_.empty()) return;
            if (error_) std::rethrow_exception(error_);
            throw sdk::Error(-ECANCELED, "cancelled");
        }

    private:
        std::mutex mu_;
        std::condition_variable cv_;
        std::deque<QueuedEvent> queue_;
        bool subscribed_ = false;
        bool done_ = false;
        bool stopping_ = false;
        std::exception_ptr error_;
    };

    bool is_cancelled() {
        std::lock_guard lock(mu_);
        return cancelled_;
    }

    docker::Options options_;
    std::unique_ptr<sdk::EngineClient> calls_; // list and inspect
    std::mutex mu_;
    bool cancelled_ = false;
    std::shared_ptr<sdk::EngineClient> stream_; // the running watch's own engine
};

} // namespace

struct Plugin {
    static constexpr const char *name = "podman";
    static constexpr const char *version = "0.1.0";
    static constexpr const char *description = "podman system service (socket-activated or standalone)";
    // Detector: a service started by hand or by a unit without socket activation.
    static constexpr std::array<const char *, 1> process_names{"podman"};
    // Activated engine: what systemd's podman.socket (system and user) starts.
    static constexpr std::array<const char *, 1> socket_suffixes{"podman.sock"};
    static constexpr std::array<const char *, 1> service_names{"podman"};

    // One podman service serves one API socket: the first candidate that
    // answers /_ping with Libpod-Api-Version is it. Other sockets, Docker's
    // included, are skipped; every call is bounded by request.timeout.
    static sdk::Engines probe(const sdk::ProbeRequest &request) {
        std::vector<std::string> candidates = request.api_paths;
        std::sort(candidates.begin(), candidates.end()); // a stable choice whatever the fd order
        candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
        sdk::Engines engines;
        for (const auto &path : candidates) {
            docker::Options options;
            options.socket_path = path;
            options.timeout = request.timeout;
            try {
                docker::Ping ping = docker::Client(options).ping();
                if (!ping.is_podman()) {
                    request.log(TF_LOG_DEBUG, "'" + path + "' answers like Docker, not podman (no Libpod-Api-Version)");
                    request.report(path, -EPROTO, "Docker's API, not podman's (no Libpod-Api-Version)");
                    continue;
                }
                sdk::EngineInfo ei;
                ei.type = "podman.io";
                ei.flavor = "podman.io";
                // Podman's Docker-compatible /info makes up a new "ID" on every
                // call, so it identifies nothing: the API socket does.
                ei.id = "podman:" + path;
                ei.version = ping.libpod_api_version; // podman's own version
                ei.api = path;
                ei.pid = request.pid;
                options.timeout = std::max<std::chrono::milliseconds>(request.timeout, call_timeout_floor);
                engines.push_back(std::make_unique<Engine>(std::move(ei), options));
                request.report(path, 0, "podman's API");
                break;
            } catch (const docker::Error &e) {
                request.log(TF_LOG_DEBUG, "'" + path + "' is not podman's API: " + e.what());
                request.report(path, e.code(), e.what());
            }
        }
        return engines;
    }
};

} // namespace tfplugin::podman

TF_PLUGIN(tfplugin::podman::Plugin)
