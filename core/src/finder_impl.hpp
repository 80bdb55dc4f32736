// SPDX-License-Identifier: Apache-2.0
// The Finder's state, shared by the pipeline (finder.cpp) and what
// subscribers are told (finder_events.cpp).
#pragma once

#include <turtlefinder/finder.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "bound.hpp"
#include "discovery/prober.hpp"
#include "discovery/trigger.hpp"
#include "events/stream.hpp"
#include "plugins/engine_handle.hpp"
#include "plugins/registry.hpp"
#include "procfs/procfs.hpp"
#include "procfs/tracker.hpp"
#include "query/query.hpp"
#include "watch/watcher.hpp"

namespace turtlefinder {

struct Finder::Impl {
    // Engine, PID namespace and host PIDs live in the query state.
    struct Watched : query::EngineState {
        procfs::ProcessKey process;
        std::uint64_t api_inode = 0; // the listening socket the engine handle talks to (0: unknown)
        bool activated = false;
        bool in_root_pidns = false; // engine PIDs are ours as they are
        std::unique_ptr<watch::Watcher> watcher;
        std::atomic<bool> announced{false};
        std::shared_ptr<const Engine> told; // as subscribers last heard of it (stream held)
    };

    Options options;
    std::vector<std::string> plugin_dirs; // searched in this order
    plugins::Registry registry;

    BoundedMutex discovery_mu; // one discovery (scan, prune, probe, watch, query) at a time
    std::unique_ptr<procfs::ProcessTracker> processes; // the process table; current() under discovery_mu
    mutable std::shared_mutex mu; // guards `watched`
    std::vector<std::shared_ptr<Watched>> watched;
    // The engines as the last query placed them: the ones its containers point at.
    std::vector<std::shared_ptr<const Engine>> placed;
    discovery::Prober prober; // under discovery_mu
    query::Assembler assembler; // under discovery_mu
    std::atomic<std::uint64_t> discoveries{0};
    // Discovery durations (Stats::discovery_buckets) and the resyncs of
    // watchers already dropped. Lock order: mu, counts_mu.
    mutable std::mutex counts_mu;
    decltype(Stats::discovery_buckets) discovery_buckets{};
    double discovery_seconds = 0;
    std::uint64_t dropped_resyncs = 0;

    // A subscription with the state holds the stream before its snapshot, so
    // no event falls between the two. Lock order: discovery_mu, stream, mu.
    // Watcher threads hold the stream holding nothing else.
    events::Stream stream;

    // Stopped first by ~Impl: a discovery the trigger runs ends its waits.
    std::stop_source closing;
    // Discoveries on process events while someone subscribed (with events only).
    std::unique_ptr<discovery::Trigger> trigger;
    // The process names the trigger reacts to: what loaded plugins claim and
    // what would get a deferred one loaded. The trigger's thread reads this
    // copy, never the registry, which discoveries change (discovery_mu held).
    mutable std::mutex claimed_mu;
    std::set<std::string, std::less<>> claimed_names;
    // Copies them again after the registry changed (discovery_mu held).
    void refresh_claimed_names();

    explicit Impl(Options o);

    ~Impl();

    // One discovery, read top to bottom: scan → prune → probe/activate →
    // watch → query → stack; each wait ends at `bound` too.
    std::vector<Container> containers(const Bound &bound);
    // The same, discovery_mu held.
    std::vector<Container> discover(const Bound &bound);

    // The watched engines' containers as their views hold them now, without
    // a discovery (for a caller stopped while another discovery runs).
    std::vector<Container> known_containers();

    // Loads the plugins known from their metadata that a process in `table`
    // needs: a host never maps a plugin (and its libraries) it has no use for.
    // Only the processes changed since `needs_seen` are looked at; none
    // after the registry changed (then the names that matter did too): all.
    void load_needed_plugins(const procfs::ProcessTable &table);
    std::optional<procfs::ProcessTable::Cursor> needs_seen;

    // Counts one discovery's duration.
    void count_discovery(double seconds);

    // Drops the engines whose process is gone or whose watch ended.
    void prune(const procfs::ProcessTable &table);

    // The APIs the watched engines talk to.
    discovery::WatchedApis watched_apis() const;

    // Starts watching an engine a probe found.
    std::shared_ptr<Watched> start_watch(discovery::FoundEngine found);

    // Waits, within this discovery's online wait, for each new engine's first sync.
    void wait_online(const std::vector<std::shared_ptr<Watched>> &fresh, std::chrono::steady_clock::time_point deadline,
                     const Bound &bound);

    // Adds the new engines to the watched ones (announced once placed).
    void publish(const std::vector<std::shared_ptr<Watched>> &fresh);

    // Tells subscribers of a new engine, placed, and of every container its
    // view holds. A change the watcher makes meanwhile is either in that view
    // or told after it (or both: applying it again changes nothing).
    void announce(Watched &w);

    // Tells subscribers of engines whose place (prefix, parent) the last
    // query changed.
    void tell_placement();

    // Places engines into containers and translates container PIDs; updates
    // each engine's prefix and parent. Returns the containers.
    std::vector<Container> query(const procfs::ProcessTable &table);

    // An engine's state changed: its published copy is replaced (the next
    // query rebuilds its containers and re-points its children) and
    // subscribers are told.
    void on_health(Watched &w, const watch::Health &health);

    // A change a watcher saw, told to subscribers as a container of ours.
    void on_change(Watched &w, EventKind kind, const plugins::ReportedContainer &raw);

    // A container as a caller sees it, outside a query: host PID from the
    // last query, else translated now.
    Container container_of(Watched &w, const plugins::ReportedContainer &raw);

    // The current state as initial events, then the subscription: atomic
    // while the stream is held.
    int subscribe(Callback callback, bool with_state);
    void unsubscribe(int handle);

    // Starts discovering on process events (see discovery::Trigger).
    void start_trigger();

    // Whether the engine process still runs (not a reused PID, not a zombie).
    bool alive(const procfs::ProcessKey &key) const;
};

} // namespace turtlefinder
