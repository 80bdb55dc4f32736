// SPDX-License-Identifier: Apache-2.0
// The core's handle on one engine client a plugin created: RAII, errors as
// results, and only core types — the C structs stay inside core/src/plugins.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <turtlefinder/model.hpp>

struct tf_engine;

namespace turtlefinder::plugins {

class Plugin;

// A container as its engine reports it, copied out of the plugin's memory.
struct ReportedContainer {
    std::string id;
    std::string name;
    int pid = 0; // in the engine's PID namespace
    bool paused = false;
    Labels labels;
};

struct CallResult {
    int code = 0; // 0 or negative errno
    std::string message;
    bool ok() const { return code >= 0; }
};

class EngineHandle {
public:
    // Takes ownership of `engine`; `plugin` keeps the shared object loaded.
    EngineHandle(tf_engine *engine, std::shared_ptr<const Plugin> plugin);
    ~EngineHandle(); // cancel + destroy
    EngineHandle(const EngineHandle &) = delete;
    EngineHandle &operator=(const EngineHandle &) = delete;

    // Identity copied at construction (the plugin's strings are not kept).
    const Engine &identity() const { return identity_; }

    // The engine was handed `given` to connect to and reports it: show
    // `shown` instead, as its api and wherever its id quotes `given`.
    void show_api_as(const std::string &given, const std::string &shown);
    // Keeps `resources` (the socket handles the engine connects through)
    // until the plugin's engine is destroyed.
    void keep_until_destroyed(std::shared_ptr<const void> resources) { kept_ = std::move(resources); }

    CallResult list(const std::function<void(ReportedContainer &&)> &each);
    // found=false when the container is not alive.
    CallResult inspect(const std::string &id, ReportedContainer &out, bool &found);
    struct WatchHandler {
        std::function<bool()> subscribed; // false → stop
        // `kind` is started, exited, paused or unpaused; kinds this host does
        // not know yet never arrive here. false → stop.
        std::function<bool(EventKind kind, const std::string &id, const ReportedContainer *details)> event;
    };
    CallResult watch(const WatchHandler &handler);
    void cancel();

private:
    tf_engine *engine_;
    std::shared_ptr<const Plugin> plugin_;
    Engine identity_;
    std::shared_ptr<const void> kept_; // released after engine_ is destroyed
};

// What a probe is asked about (the C request is built from it for the call).
struct ProbeInput {
    int pid = 0;
    std::string process_name;
    std::vector<std::string> api_paths; // to connect to as given ("/proc/self/fd/N")
    std::chrono::milliseconds timeout{1000};
    std::map<std::string, std::string> settings;
    // What the plugin tells of each path (ABI 1.1; older plugins tell
    // nothing): the path as given, 0 or a negative errno, and a message.
    // May be called from any thread of the plugin until the probe returns.
    std::function<void(const std::string &api_path, int outcome, const std::string &message)> on_report;
};

struct ProbeOutcome {
    CallResult result; // code = number of engines on success
    std::vector<std::unique_ptr<EngineHandle>> engines;
};

} // namespace turtlefinder::plugins
