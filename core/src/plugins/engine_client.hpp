// SPDX-License-Identifier: Apache-2.0
// The host's C++ view of one tf_engine: RAII, errors as results.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <turtlefinder/model.hpp>
#include <turtlefinder/plugin.h>

#include "registry.hpp"

namespace turtlefinder::plugins {

struct RawContainer {
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

// Copies a tf_container into a RawContainer, defensively: NULL strings become
// empty, labels with NULL parts are dropped, invalid UTF-8 is kept as bytes.
RawContainer copy_container(const tf_container &c);

class EngineClient {
public:
    // Takes ownership of `engine`; `plugin` keeps the shared object loaded.
    EngineClient(tf_engine *engine, std::shared_ptr<const Plugin> plugin);
    ~EngineClient(); // cancel + destroy
    EngineClient(const EngineClient &) = delete;
    EngineClient &operator=(const EngineClient &) = delete;

    // Identity copied at construction (the plugin's strings are not kept).
    const Engine &identity() const { return identity_; }
    const std::shared_ptr<const Plugin> &plugin() const { return plugin_; }

    CallResult list(const std::function<void(RawContainer &&)> &each);
    // found=false when the container is not alive.
    CallResult inspect(const std::string &id, RawContainer &out, bool &found);
    struct WatchHandler {
        std::function<bool()> subscribed; // false → stop
        std::function<bool(tf_event_kind, const std::string &id, const RawContainer *details)> event;
    };
    CallResult watch(const WatchHandler &handler);
    void cancel();

private:
    tf_engine *engine_;
    std::shared_ptr<const Plugin> plugin_;
    Engine identity_;
};

// What a probe is asked about (the C request is built from it for the call).
struct ProbeInput {
    int pid = 0;
    std::string process_name;
    std::vector<std::string> api_paths; // reachable from here
    std::chrono::milliseconds timeout{1000};
    std::map<std::string, std::string> settings;
};

struct ProbeOutcome {
    CallResult result; // code = number of engines on success
    std::vector<std::unique_ptr<EngineClient>> engines;
};

// Runs `probe` (the plugin's detector or activated-engine probe) and wraps
// each engine it hands over. Engines whose tf_engine lacks a v1 member are
// refused back to the plugin (which destroys them) with a warning.
ProbeOutcome probe(const std::shared_ptr<const Plugin> &plugin, tf_probe_fn probe, const ProbeInput &input);

} // namespace turtlefinder::plugins
