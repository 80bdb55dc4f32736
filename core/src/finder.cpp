// SPDX-License-Identifier: Apache-2.0
// The pipeline behind the public API: scan, prune, probe/activate, watch,
// query, stack.
#include <turtlefinder/finder.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "discovery/prober.hpp"
#include "hierarchy/hierarchy.hpp"
#include "log.hpp"
#include "plugins/engine_handle.hpp"
#include "plugins/registry.hpp"
#include "plugins/search_path.hpp"
#include "procfs/procfs.hpp"
#include "query/query.hpp"
#include "watch/watcher.hpp"

namespace turtlefinder {

const char *version() { return TF_VERSION; }

struct Finder::Impl {
    // Engine, PID namespace and host PIDs live in the query state.
    struct Watched : query::EngineState {
        procfs::ProcessKey process;
        std::uint64_t api_inode = 0; // the listening socket the engine handle talks to (0: unknown)
        bool activated = false;
        bool in_root_pidns = false; // engine PIDs are ours as they are
        std::unique_ptr<watch::Watcher> watcher;
        std::atomic<bool> announced{false};
        std::shared_ptr<const Engine> told; // as subscribers last heard of it (under stream_mu)
    };

    Options options;
    std::vector<std::string> plugin_dirs; // searched in this order
    mutable std::mutex registry_mu; // loading (under discovery_mu too) against reading the statuses
    plugins::Registry registry;

    std::mutex discovery_mu; // one discovery (scan, prune, probe, watch, query) at a time
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

    // Every event is delivered under stream_mu, in one order for all
    // subscribers; a subscription with the state takes it before its
    // snapshot, so no event falls between the two. Lock order: discovery_mu,
    // stream_mu, mu. Watcher threads take stream_mu holding nothing else.
    std::mutex stream_mu;
    std::map<int, Callback> subscribers;
    int next_subscriber = 1;
    // A callback may unsubscribe (itself or another) while it is told: the
    // thread delivering holds stream_mu, so it only notes the handle, and
    // deliver() drops it once the event has been told.
    std::atomic<std::thread::id> delivering{};
    std::vector<int> dropped; // under stream_mu

    explicit Impl(Options o) : options(std::move(o)), prober(registry, options) {
        plugins::check_plugin_dirs(options.plugin_dirs); // a directory the caller names must be one
        plugin_dirs = options.plugin_dirs;
        if (options.default_plugin_dirs)
            for (auto &d : plugins::default_plugin_dirs()) plugin_dirs.push_back(std::move(d));
        for (const auto *builtin : options.builtin_plugins) registry.add(builtin, {}, options.disabled_plugins);
        registry.load_directories(plugin_dirs, options.disabled_plugins);
        registry.warn_unmatched(options.disabled_plugins);
    }

    ~Impl() {
        std::vector<std::shared_ptr<Watched>> all;
        {
            std::unique_lock lock(mu);
            all.swap(watched);
        }
        // Join every watcher before its Watched can be freed: a watcher thread
        // may briefly hold a reference (change callbacks), and must never be
        // the one to destroy itself.
        for (auto &w : all) w->watcher.reset();
    }

    // One discovery, read top to bottom: scan → prune → probe/activate →
    // watch → query → stack.
    std::vector<Container> containers() {
        std::lock_guard serial(discovery_mu);
        ++discoveries;
        const auto started = std::chrono::steady_clock::now();
        auto table = procfs::ProcessTable::scan(options.procfs_root);
        prune(table);
        // Probes and activations run side by side, each bounded by its own
        // probe timeout (one that hangs is collected by a later discovery);
        // then, within online_wait, the new engines' first syncs, which run
        // side by side too.
        prober.start(table, watched_apis());
        std::vector<std::shared_ptr<Watched>> fresh;
        prober.collect([&](discovery::FoundEngine found) { fresh.push_back(start_watch(std::move(found))); });
        wait_online(fresh, std::chrono::steady_clock::now() + options.online_wait);
        publish(fresh);
        auto result = query(table);
        tell_placement();
        for (auto &w : fresh) announce(*w);
        count_discovery(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        return result;
    }

    void count_discovery(double seconds) {
        const auto &bounds = Stats::discovery_bounds;
        auto bucket = std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
        std::lock_guard lock(counts_mu);
        ++discovery_buckets[static_cast<std::size_t>(bucket)];
        discovery_seconds += seconds;
    }

    // Drops the engines whose process is gone or whose watch ended.
    void prune(const procfs::ProcessTable &table) {
        prober.prune(table);
        std::vector<std::shared_ptr<Watched>> dropped;
        {
            std::unique_lock lock(mu);
            std::erase_if(watched, [&](const std::shared_ptr<Watched> &w) {
                const auto *p = table.find(w->process.pid);
                bool gone = p == nullptr || p->starttime != w->process.starttime;
                if (gone || w->watcher->dead()) {
                    std::lock_guard counts(counts_mu); // its resyncs stay counted
                    dropped_resyncs += w->watcher->resyncs();
                    dropped.push_back(w);
                    return true;
                }
                return false;
            });
        }
        for (auto &w : dropped) w->watcher.reset(); // join before the last reference can go
        for (auto &w : dropped) {
            if (w->activated) prober.forget_activation(w->api_inode);
            const auto *p = table.find(w->process.pid);
            if (p != nullptr && p->starttime == w->process.starttime) prober.reprobe(w->process); // its socket went
            log().info("{} engine \"{}\" (PID {}) is gone", w->engine->type, w->engine->api, w->engine->pid);
            if (w->announced) notify({EventKind::engine_lost, w->engine, {}, {}, false});
        }
    }

    // The APIs the watched engines talk to.
    discovery::WatchedApis watched_apis() const {
        discovery::WatchedApis apis;
        std::shared_lock lock(mu);
        for (const auto &w : watched)
            if (w->api_inode != 0) apis.emplace(w->api_inode, w->engine->type);
        return apis;
    }

    // Starts watching an engine a probe found.
    std::shared_ptr<Watched> start_watch(discovery::FoundEngine found) {
        auto w = std::make_shared<Watched>();
        w->engine = std::make_shared<Engine>(found.engine->identity());
        w->engine->pid = found.process.pid;
        w->engine->state = Engine::State::syncing;
        w->engine->since = std::chrono::system_clock::now();
        w->process = found.process;
        w->pidns_pid = found.pidns_pid;
        w->api_inode = found.api_inode;
        w->activated = found.activated;
        auto chain = procfs::read_nspid(options.procfs_root, found.pidns_pid);
        w->in_root_pidns = chain && chain->size() == 1;
        const procfs::ProcessKey key = found.process;
        std::weak_ptr<Watched> weak = w;
        watch::WatcherOptions wo{options.relist_interval, options.backoff_min, options.backoff_max,
                                 options.health_interval};
        w->watcher = std::make_unique<watch::Watcher>(
            std::move(found.engine), wo,
            [this, weak](EventKind kind, const plugins::ReportedContainer &raw) {
                if (auto self = weak.lock()) on_change(*self, kind, raw);
            },
            // A watch through a socket nobody listens on any more ends too: its
            // engine re-bound (a new inode, never followed) and is probed again.
            [this, key, socket = std::move(found.api_handle)] { return alive(key) && (!socket || socket->served()); },
            [this, weak](const watch::Health &health) {
                if (auto self = weak.lock()) on_health(*self, health);
            });
        return w;
    }

    // Waits, within this discovery's online wait, for each new engine's first sync.
    void wait_online(const std::vector<std::shared_ptr<Watched>> &fresh,
                     std::chrono::steady_clock::time_point deadline) {
        for (auto &w : fresh) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (!w->watcher->wait_ready(std::max(left, std::chrono::milliseconds(0))))
                log().debug("{} engine \"{}\" not synced within online wait", w->engine->type, w->engine->api);
        }
    }

    // Adds the new engines to the watched ones (announced once placed).
    void publish(const std::vector<std::shared_ptr<Watched>> &fresh) {
        if (fresh.empty()) return;
        std::unique_lock lock(mu);
        for (auto &w : fresh) watched.push_back(w);
    }

    // Tells subscribers of a new engine, placed, and of every container its
    // view holds. A change the watcher makes meanwhile is either in that view
    // or told after it (or both: applying it again changes nothing).
    void announce(Watched &w) {
        std::lock_guard stream(stream_mu);
        w.announced = true;
        std::shared_ptr<const Engine> engine;
        {
            std::shared_lock lock(mu);
            engine = w.engine;
        }
        w.told = engine;
        deliver({EventKind::engine_found, engine, {}, {}, false});
        for (const auto &raw : *w.watcher->snapshot())
            deliver({EventKind::started, engine, container_of(w, *raw), {}, false});
    }

    // Tells subscribers of engines whose place (prefix, parent) the last
    // query changed.
    void tell_placement() {
        std::vector<std::shared_ptr<Watched>> engines;
        {
            std::shared_lock lock(mu);
            engines = watched;
        }
        auto same_engine = [](const std::shared_ptr<const Engine> &a, const std::shared_ptr<const Engine> &b) {
            return (!a && !b) || (a && b && a->api == b->api && a->pid == b->pid && a->type == b->type);
        };
        std::lock_guard stream(stream_mu);
        for (auto &w : engines) {
            if (!w->announced || !w->told) continue;
            std::shared_ptr<const Engine> now;
            {
                std::shared_lock lock(mu);
                now = w->engine;
            }
            if (now->prefix == w->told->prefix && same_engine(now->parent, w->told->parent)) continue;
            w->told = now;
            deliver({EventKind::engine_changed, now, {}, {}, false});
        }
    }

    // Places engines into containers and translates container PIDs; updates
    // each engine's prefix and parent. Returns the containers.
    std::vector<Container> query(const procfs::ProcessTable &table) {
        std::vector<std::shared_ptr<Watched>> engines;
        {
            std::shared_lock lock(mu);
            engines = watched;
        }
        std::vector<query::Input> inputs;
        inputs.reserve(engines.size());
        for (auto &w : engines)
            // A service activated in this very discovery is not in the scan yet:
            // place it by its activator, whose child it is.
            inputs.push_back({w.get(), table.find(w->process.pid) != nullptr ? w->process.pid : w->pidns_pid,
                              w->watcher->snapshot()});
        {
            std::unique_lock lock(mu); // host_pids and engines are written
            assembler.update(table, inputs);
            placed.clear();
            for (auto &w : engines) placed.push_back(w->engine);
        }
        return query::Assembler::collect(inputs);
    }

    // An engine's state changed: its published copy is replaced (the next
    // query rebuilds its containers and re-points its children) and
    // subscribers are told.
    void on_health(Watched &w, const watch::Health &health) {
        std::shared_ptr<const Engine> engine;
        {
            std::unique_lock lock(mu);
            auto copy = std::make_shared<Engine>(*w.engine);
            copy->state = health.state;
            copy->error = health.error;
            copy->since = health.since;
            w.engine = copy;
            engine = std::move(copy);
        }
        std::lock_guard stream(stream_mu);
        if (!w.announced) return;
        w.told = engine;
        deliver({EventKind::engine_changed, engine, {}, {}, false});
    }

    // A change a watcher saw, told to subscribers as a container of ours.
    void on_change(Watched &w, EventKind kind, const plugins::ReportedContainer &raw) {
        std::lock_guard stream(stream_mu);
        if (subscribers.empty() || !w.announced) return; // not announced: announce() reads the view
        std::shared_ptr<const Engine> engine;
        {
            std::shared_lock lock(mu);
            engine = w.engine;
        }
        deliver({kind, engine, container_of(w, raw), {}, false});
    }

    // A container as a caller sees it, outside a query: host PID from the
    // last query, else translated now.
    Container container_of(Watched &w, const plugins::ReportedContainer &raw) {
        int host_pid = 0;
        std::shared_ptr<const Engine> engine;
        {
            std::shared_lock lock(mu);
            engine = w.engine;
            if (auto it = w.host_pids.find({raw.id, raw.pid}); it != w.host_pids.end()) host_pid = it->second;
        }
        if (host_pid == 0 && raw.pid > 0) {
            if (w.in_root_pidns) {
                host_pid = raw.pid;
            } else { // rare: a nested engine's new container; needs the NSpid chains
                auto table = procfs::ProcessTable::scan(options.procfs_root);
                hierarchy::PidTranslator translate(table);
                host_pid = translate.to_host(w.pidns_pid, raw.pid).value_or(0);
            }
        }
        return query::to_container(engine, raw, host_pid);
    }

    void notify(Event event) {
        std::lock_guard stream(stream_mu);
        deliver(std::move(event));
    }

    // Tells every subscriber (stream_mu held); one that throws does not stop
    // the others.
    void deliver(Event event) {
        if (event.time == std::chrono::system_clock::time_point{}) event.time = std::chrono::system_clock::now();
        delivering = std::this_thread::get_id();
        for (auto &[id, cb] : subscribers)
            if (std::find(dropped.begin(), dropped.end(), id) == dropped.end()) tell(cb, event);
        delivering = std::thread::id{};
        for (int id : dropped) subscribers.erase(id);
        dropped.clear();
    }

    static void tell(const Callback &cb, const Event &event) {
        try {
            cb(event);
        } catch (const std::exception &e) {
            log().warn("a subscriber threw: {}", e.what());
        }
    }

    // The current state as initial events, then the subscription: atomic
    // under stream_mu.
    int subscribe(Callback callback, bool with_state) {
        std::unique_lock<std::mutex> serial;
        if (with_state) serial = std::unique_lock(discovery_mu); // no discovery moves engines meanwhile
        std::lock_guard stream(stream_mu);
        if (with_state) {
            auto table = procfs::ProcessTable::scan(options.procfs_root);
            auto containers = query(table);
            std::vector<std::shared_ptr<Watched>> engines;
            {
                std::shared_lock lock(mu);
                engines = watched;
            }
            const auto now = std::chrono::system_clock::now();
            for (auto &w : engines) {
                if (!w->announced) continue;
                std::shared_ptr<const Engine> engine;
                {
                    std::shared_lock lock(mu);
                    engine = w->engine;
                }
                w->told = engine;
                tell(callback, {EventKind::engine_found, engine, {}, now, true});
            }
            for (auto &c : containers) {
                auto engine = c.engine;
                tell(callback, {EventKind::started, std::move(engine), std::move(c), now, true});
            }
        }
        int id = next_subscriber++;
        subscribers.emplace(id, std::move(callback));
        return id;
    }

    // Whether the engine process still runs (not a reused PID, not a zombie).
    bool alive(const procfs::ProcessKey &key) const {
        auto p = procfs::read_process(options.procfs_root, key.pid);
        return p && p->starttime == key.starttime && p->state != 'Z';
    }
};

Finder::Finder(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Finder::~Finder() = default;

std::vector<Container> Finder::containers() { return impl_->containers(); }

std::vector<std::shared_ptr<const Engine>> Finder::engines() {
    std::shared_lock lock(impl_->mu);
    return impl_->placed;
}

std::size_t Finder::engine_count() {
    std::shared_lock lock(impl_->mu);
    return impl_->watched.size();
}

std::vector<turtlefinder::Candidate> Finder::candidates() const { return impl_->prober.candidates(); }

std::vector<PluginStatus> Finder::plugins() const {
    std::lock_guard lock(impl_->registry_mu);
    return impl_->registry.statuses();
}

// Discoveries look plugins up under discovery_mu, so loading under it races
// with none of them.
std::size_t Finder::reload_plugins() {
    std::lock_guard serial(impl_->discovery_mu);
    std::lock_guard lock(impl_->registry_mu);
    std::size_t before = impl_->registry.plugins().size();
    impl_->registry.reload_directories(impl_->plugin_dirs, impl_->options.disabled_plugins);
    std::size_t loaded = impl_->registry.plugins().size() - before;
    if (loaded > 0) impl_->prober.plugins_changed();
    return loaded;
}

std::vector<std::string> Finder::plugin_directories() const { return impl_->plugin_dirs; }

Stats Finder::stats() const {
    Stats s;
    s.discoveries = impl_->discoveries;
    s.probes = impl_->prober.probes();
    s.activator_socket_reads = impl_->prober.activator_socket_reads();
    s.activations = impl_->prober.activations();
    s.probes_by_plugin = impl_->prober.probes_by_plugin();
    std::shared_lock lock(impl_->mu);
    for (const auto &w : impl_->watched) s.watch_resyncs += w->watcher->resyncs();
    std::lock_guard counts(impl_->counts_mu); // lock order: mu, counts_mu
    s.discovery_buckets = impl_->discovery_buckets;
    s.discovery_seconds = impl_->discovery_seconds;
    s.watch_resyncs += impl_->dropped_resyncs;
    return s;
}

int Finder::subscribe(Callback callback, Replay replay) {
    return impl_->subscribe(std::move(callback), replay == Replay::state);
}

void Finder::unsubscribe(int handle) {
    if (impl_->delivering.load() == std::this_thread::get_id()) { // from a callback being told
        impl_->dropped.push_back(handle);
        return;
    }
    std::lock_guard lock(impl_->stream_mu);
    impl_->subscribers.erase(handle);
}

} // namespace turtlefinder
