// SPDX-License-Identifier: Apache-2.0
// One watcher per engine handle: keeps an always-current view of the engine's
// alive containers in memory, so queries never wait for an engine.
//
// Sync protocol (engine-agnostic): subscribe to events first; once the
// subscription stands, list; events that arrived meanwhile are applied after
// the list, in order, so a container that died during the list is removed
// again and pause changes land on top. After a stream error the watcher
// resyncs from scratch with capped exponential backoff, keeping the last good
// view readable until the new list is complete. Engines without an event
// stream are polled by relisting.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <turtlefinder/model.hpp>

#include "plugins/engine_handle.hpp"

namespace turtlefinder::watch {

using ContainerPtr = std::shared_ptr<const plugins::ReportedContainer>;
using Snapshot = std::vector<ContainerPtr>;

struct WatcherOptions {
    std::chrono::milliseconds relist_interval{1000};
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5000};
    // While an event stream stands, the engine is asked for a list this
    // often: a stream that merely goes quiet (a stopped engine) says nothing.
    std::chrono::milliseconds health_interval{5000};
};

// How far the view can be trusted (see Engine::State).
struct Health {
    Engine::State state = Engine::State::syncing;
    std::string error; // last error of the engine's API; "" when none since it was online
    std::chrono::system_clock::time_point since = std::chrono::system_clock::now();
};
using HealthListener = std::function<void(const Health &health)>;

// A change to the view: kind is started, exited, paused or unpaused.
using ChangeListener = std::function<void(EventKind kind, const plugins::ReportedContainer &container)>;

class Watcher {
public:
    // `alive` tells whether the engine process still exists; a failing watch
    // whose engine is gone ends for good (the watcher is then dead).
    // `on_health` hears every change of health(), from the watcher's threads.
    Watcher(std::shared_ptr<plugins::EngineHandle> engine, WatcherOptions options, ChangeListener on_change,
            std::function<bool()> alive, HealthListener on_health = {});
    ~Watcher(); // cancels the engine's blocking calls and joins the thread
    Watcher(const Watcher &) = delete;
    Watcher &operator=(const Watcher &) = delete;

    // Waits until the first sync completed (or the watch died, or `stop`);
    // true if synced.
    bool wait_ready(std::chrono::milliseconds timeout, std::stop_token stop = {}) const;
    bool ready() const { return ready_.load(); }
    bool dead() const { return dead_.load(); }
    // True once the engine said it has no event stream and is being polled.
    bool polling() const { return polling_.load(); }
    // Number of full syncs (lists that replaced the view) so far.
    unsigned syncs() const { return syncs_.load(); }
    // Of them, those after the event stream broke (polling relists are not).
    unsigned resyncs() const { return resyncs_.load(); }

    Health health() const;

    // The current view; cheap (shared, immutable). Empty before the first sync.
    std::shared_ptr<const Snapshot> snapshot() const;

private:
    void run();
    bool sync(); // full list, replaces the view; false on error
    void apply(EventKind kind, const std::string &id, const plugins::ReportedContainer *details);
    bool sleep_for(std::chrono::milliseconds d); // false when stopping
    void publish_locked();
    void mark_ready();
    void heartbeat();
    // The API answered (a complete list) or failed with `error`. A failure
    // makes an online engine stale; `by_heartbeat` failures are cleared by
    // the next heartbeat that succeeds.
    void answered(bool by_heartbeat);
    void failed(const std::string &error, bool by_heartbeat);
    void set_health(Engine::State state, const std::string &error);

    std::shared_ptr<plugins::EngineHandle> engine_;
    WatcherOptions options_;
    ChangeListener on_change_;
    std::function<bool()> alive_;
    HealthListener on_health_;

    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    std::map<std::string, ContainerPtr> view_;
    std::shared_ptr<const Snapshot> snapshot_;
    std::atomic<bool> ready_{false};
    std::atomic<bool> dead_{false};
    std::atomic<bool> polling_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<unsigned> syncs_{0};
    std::atomic<unsigned> resyncs_{0};
    Health health_; // under mu_
    bool stale_by_heartbeat_ = false; // under mu_
    std::mutex health_mu_; // orders health changes and their listeners
    std::thread thread_;
    std::thread heartbeat_;
};

} // namespace turtlefinder::watch
