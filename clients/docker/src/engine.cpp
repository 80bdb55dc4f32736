// SPDX-License-Identifier: Apache-2.0
#include <turtlefinder/clients/docker/engine.hpp>

#include <string_view>

namespace turtlefinder::clients::docker {

namespace {

// Running and paused are the alive states; the rest is history.
constexpr std::string_view alive_filter = R"({"status":["running","paused"]})";
constexpr std::string_view event_filter = R"({"type":["container"],"event":["start","die","pause","unpause"]})";

// Runs `body`, turning client errors into SDK errors with the same code.
template <typename F>
auto mapped(F &&body) -> decltype(body()) {
    try {
        return body();
    } catch (const docker::Error &e) {
        throw sdk::Error(e.code(), e.what());
    }
}

sdk::Container to_container(const docker::ContainerDetails &d) {
    sdk::Container c;
    c.id = d.id;
    c.name = d.name;
    c.pid = d.pid;
    c.paused = d.paused;
    c.labels.assign(d.labels.begin(), d.labels.end());
    return c;
}

class Engine final : public sdk::EngineClient {
public:
    Engine(sdk::EngineInfo info, std::unique_ptr<docker::Client> client)
        : sdk::EngineClient(std::move(info)), client_(std::move(client)) {}

    void list(const std::function<bool(const sdk::Container &)> &emit) override {
        mapped([&] {
            for (const auto &summary : client_->containers(alive_filter)) {
                // The list has no PID: inspect each. One that died meanwhile is skipped.
                auto details = client_->inspect(summary.id);
                if (!details || !(details->running || details->paused)) continue;
                if (!emit(to_container(*details))) return;
            }
        });
    }

    std::optional<sdk::Container> inspect(const std::string &id) override {
        return mapped([&]() -> std::optional<sdk::Container> {
            auto details = client_->inspect(id);
            if (!details || !(details->running || details->paused)) return std::nullopt;
            return to_container(*details);
        });
    }

    void watch(sdk::WatchSink &sink) override {
        mapped([&] {
            client_->events(
                event_filter, [&] { return sink.subscribed(); },
                [&](const docker::Event &e) {
                    if (e.type != "container" || e.id.empty()) return true;
                    sdk::EventKind kind;
                    if (e.action == "start")
                        kind = sdk::EventKind::started;
                    else if (e.action == "die")
                        kind = sdk::EventKind::exited;
                    else if (e.action == "pause")
                        kind = sdk::EventKind::paused;
                    else if (e.action == "unpause")
                        kind = sdk::EventKind::unpaused;
                    else
                        return true; // filtered by the engine already; ignore strays
                    return sink.event(kind, e.id);
                });
        });
    }

    void cancel() override { client_->cancel(); }

private:
    std::unique_ptr<docker::Client> client_;
};

} // namespace

std::unique_ptr<sdk::EngineClient> make_docker_engine(std::unique_ptr<Client> client, sdk::EngineInfo info) {
    return std::make_unique<Engine>(std::move(info), std::move(client));
}

std::unique_ptr<sdk::EngineClient> make_docker_engine(Options options, sdk::EngineInfo info) {
    return make_docker_engine(std::make_unique<Client>(std::move(options)), std::move(info));
}

} // namespace turtlefinder::clients::docker
