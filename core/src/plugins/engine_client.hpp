// SPDX-License-Identifier: Apache-2.0
// The host's C++ view of one tf_engine: RAII, errors as results.
#pragma once

#include <functional>
#include <memory>
#include <string>

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

} // namespace turtlefinder::plugins
