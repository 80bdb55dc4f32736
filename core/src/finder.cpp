// SPDX-License-Identifier: Apache-2.0
// The orchestration behind the public API: scan, prune, discover, query, stack.
#include <turtlefinder/finder.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>

#include "discovery/activation.hpp"
#include "discovery/discovery.hpp"
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

namespace {

// A process identity that survives PID reuse.
struct ProcessKey {
    int pid = 0;
    std::uint64_t starttime = 0;
    auto operator<=>(const ProcessKey &) const = default;
};

// Bounds the engine round-trips (probes) running at once across all calls.
class Slots {
public:
    explicit Slots(unsigned n) : free_(std::max(1u, n)) {}
    void acquire() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return free_ > 0; });
        --free_;
    }
    void release() {
        {
            std::lock_guard lock(mu_);
            ++free_;
        }
        cv_.notify_one();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    unsigned free_;
};

} // namespace

struct Finder::Impl {
    // Engine, PID namespace and host PIDs live in the query state.
    struct Watched : query::EngineState {
        ProcessKey process;
        std::uint64_t api_inode = 0; // the listening socket the client talks to (0: unknown)
        bool activated = false;
        bool in_root_pidns = false; // engine PIDs are ours as they are
        std::unique_ptr<watch::Watcher> watcher;
        bool announced = false;
    };

    Options options;
    plugins::Registry registry;
    Slots probe_slots;

    std::mutex discovery_mu;      // one discovery (scan, prune, discover, query) at a time
    mutable std::shared_mutex mu; // guards `watched` and `probed`
    std::vector<std::shared_ptr<Watched>> watched;
    // An engine handle a probe created, with the socket it talks to.
    struct Probed {
        std::shared_ptr<plugins::EngineHandle> engine;
        std::uint64_t api_inode = 0;
    };
    std::set<ProcessKey> probed;  // processes already examined by a detector
    discovery::Activation activation; // used by discoveries only (under discovery_mu)
    struct PendingProbe {
        ProcessKey process;
        std::shared_ptr<const plugins::Plugin> plugin;
        bool retry; // of a process that had no engine before: never waited for
        std::future<std::vector<Probed>> result;
    };
    std::vector<PendingProbe> pending_probes; // under discovery_mu
    query::Assembler assembler;               // under discovery_mu
    // Processes whose probe found no engine are probed again after a growing
    // delay: an engine caught while starting (no socket yet, or not answering
    // yet) must not be ignored for the Finder's lifetime. Under discovery_mu.
    struct Retry {
        std::chrono::steady_clock::time_point next;
        std::chrono::milliseconds delay{0};
    };
    std::map<ProcessKey, Retry> fruitless;
    static constexpr std::chrono::milliseconds first_retry{2000}, max_retry{60000};
    mutable std::mutex stats_mu;
    Stats stats;

    std::mutex subscribers_mu;
    std::map<int, Callback> subscribers;
    int next_subscriber = 1;

    explicit Impl(Options o) : options(std::move(o)), probe_slots(options.workers) {
        auto dirs = options.plugin_dirs;
        if (options.default_plugin_dirs)
            for (auto &d : plugins::default_plugin_dirs()) dirs.push_back(std::move(d));
        registry.load_directories(dirs, options.disabled_plugins);
    }

    ~Impl() {
        // Probes end on their own (each socket bounded by probe_timeout); their
        // engine clients are destroyed unwatched.
        for (auto &p : pending_probes) p.result.wait();
        pending_probes.clear();
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

    void notify(const Event &event) {
        std::vector<Callback> targets;
        {
            std::lock_guard lock(subscribers_mu);
            for (auto &[id, cb] : subscribers) targets.push_back(cb);
        }
        for (auto &cb : targets) {
            try {
                cb(event);
            } catch (const std::exception &e) {
                log().warn("a subscriber threw: {}", e.what());
            }
        }
    }

    bool alive(const ProcessKey &key) const {
        auto p = procfs::read_process(options.procfs_root, key.pid);
        return p && p->starttime == key.starttime && p->state != 'Z';
    }

    void prune(const procfs::ProcessTable &table) {
        std::vector<std::shared_ptr<Watched>> dropped;
        {
            std::unique_lock lock(mu);
            std::erase_if(probed, [&](const ProcessKey &k) {
                const auto *p = table.find(k.pid);
                return p == nullptr || p->starttime != k.starttime;
            });
            std::erase_if(fruitless, [&](const auto &entry) { return !probed.contains(entry.first); });
            std::erase_if(watched, [&](const std::shared_ptr<Watched> &w) {
                const auto *p = table.find(w->process.pid);
                bool gone = p == nullptr || p->starttime != w->process.starttime;
                if (gone || w->watcher->dead()) {
                    dropped.push_back(w);
                    return true;
                }
                return false;
            });
        }
        for (auto &w : dropped) w->watcher.reset(); // join before the last reference can go
        for (auto &w : dropped) {
            if (w->activated) activation.forget(w->api_inode);
            log().info("{} engine \"{}\" (PID {}) is gone", w->engine->type, w->engine->api, w->engine->pid);
            if (w->announced) notify({EventKind::engine_lost, w->engine, {}});
        }
    }

    // Probes one process's sockets with the plugin claiming it.
    std::vector<Probed> probe(const procfs::Process &process, const std::shared_ptr<const plugins::Plugin> &plugin,
                              bool activated, const std::vector<discovery::ApiSocket> &sockets) {
        {
            std::lock_guard lock(stats_mu);
            ++stats.probes;
        }
        plugins::ProbeInput input;
        input.pid = process.pid;
        input.process_name = process.name;
        for (auto &s : sockets) input.api_paths.push_back(s.reachable);
        input.timeout = options.probe_timeout;
        if (auto it = options.plugin_settings.find(plugin->name()); it != options.plugin_settings.end())
            input.settings = it->second;
        probe_slots.acquire();
        auto outcome = activated ? plugin->probe_activated(input) : plugin->probe(input);
        probe_slots.release();
        std::vector<Probed> clients;
        for (auto &e : outcome.engines) {
            Probed p{std::shared_ptr<plugins::EngineHandle>(std::move(e)), 0};
            for (const auto &s : sockets)
                if (s.reachable == p.engine->identity().api) p.api_inode = s.inode;
            clients.push_back(std::move(p));
        }
        if (!outcome.result.ok())
            log().debug("plugin \"{}\" probing {} (PID {}): {}", plugin->name(), process.name, process.pid,
                        outcome.result.message);
        else if (clients.empty())
            log().debug("plugin \"{}\" found no engine at {} (PID {}, {} sockets)", plugin->name(), process.name,
                        process.pid, input.api_paths.size());
        return clients;
    }

    std::shared_ptr<Watched> start_watch(Probed probed, const ProcessKey &key, int pidns_pid, bool activated) {
        auto handle = std::move(probed.engine);
        auto w = std::make_shared<Watched>();
        w->engine = std::make_shared<Engine>(handle->identity());
        w->engine->pid = key.pid;
        w->process = key;
        w->pidns_pid = pidns_pid;
        w->api_inode = probed.api_inode;
        w->activated = activated;
        auto chain = procfs::read_nspid(options.procfs_root, pidns_pid);
        w->in_root_pidns = chain && chain->size() == 1;
        std::weak_ptr<Watched> weak = w;
        watch::WatcherOptions wo{options.relist_interval, options.backoff_min, options.backoff_max};
        w->watcher = std::make_unique<watch::Watcher>(
            std::move(handle), wo,
            [this, weak](EventKind kind, const plugins::ReportedContainer &raw) {
                if (auto self = weak.lock()) on_change(*self, kind, raw);
            },
            [this, key] { return alive(key); });
        return w;
    }

    void on_change(Watched &w, EventKind kind, const plugins::ReportedContainer &raw) {
        bool any;
        {
            std::lock_guard lock(subscribers_mu);
            any = !subscribers.empty();
        }
        if (!any) return;
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
        notify({kind, engine, query::to_container(engine, raw, host_pid)});
    }

    void discover(const procfs::ProcessTable &table) {
        const auto deadline = std::chrono::steady_clock::now() + options.online_wait;
        struct Candidate {
            const procfs::Process *process;
            std::shared_ptr<const plugins::Plugin> plugin;
            bool retry;
        };
        std::vector<Candidate> candidates;
        std::set<std::uint64_t> watched_inodes; // sockets some engine client already talks to
        // One socket may carry several APIs (containerd: native and CRI), so
        // an engine is a duplicate only if its socket and its type both match.
        std::set<std::pair<std::uint64_t, std::string>> watched_apis;
        {
            std::unique_lock lock(mu);
            for (const auto &[pid, p] : table.processes()) {
                auto plugin = registry.detector_for(p.name);
                if (!plugin) continue;
                ProcessKey key{pid, p.starttime};
                bool retry = !probed.insert(key).second;
                if (retry) {
                    auto due = fruitless.find(key);
                    if (due == fruitless.end() || std::chrono::steady_clock::now() < due->second.next) continue;
                }
                candidates.push_back({&p, std::move(plugin), retry});
            }
            for (const auto &w : watched)
                if (w->api_inode != 0) {
                    watched_inodes.insert(w->api_inode);
                    watched_apis.emplace(w->api_inode, w->engine->type);
                }
        }
        // Probe new processes in parallel (bounded by probe_slots) while
        // activators are looked at; then wait for every new engine's first
        // sync — all of it within one online_wait. A probe still running at
        // the deadline (an engine with many slow sockets) is harvested by a
        // later discovery rather than stalling this one.
        for (auto &c : candidates)
            pending_probes.push_back(
                {{c.process->pid, c.process->starttime}, c.plugin, c.retry,
                 std::async(std::launch::async, [this, process = *c.process, plugin = c.plugin] {
                     auto sockets = discovery::listening_sockets_of(options.procfs_root, process.pid);
                     return probe(process, plugin, false, sockets);
                 })});
        std::vector<std::shared_ptr<Watched>> fresh;
        auto reads_before = activation.socket_reads();
        for (auto &service : activation.activate(table, registry, watched_inodes, deadline)) {
            ProcessKey key{service.service.pid, service.service.starttime};
            {
                // The service may also be claimed by a detector (a podman that
                // runs on its own): it is examined here, not probed again.
                std::unique_lock lock(mu);
                probed.insert(key);
            }
            if (watched_inodes.contains(service.socket.inode)) continue;
            for (auto &found : probe(service.service, service.plugin, true, {service.socket})) {
                found.api_inode = service.socket.inode;
                log().info("found {} engine \"{}\" version {} (PID {}) activated by PID {} via plugin \"{}\"",
                           found.engine->identity().type, found.engine->identity().api,
                           found.engine->identity().version, key.pid, service.activator_pid, service.plugin->name());
                watched_inodes.insert(service.socket.inode);
                watched_apis.emplace(service.socket.inode, found.engine->identity().type);
                fresh.push_back(start_watch(std::move(found), key, service.activator_pid, true));
            }
            std::lock_guard lock(stats_mu);
            ++stats.activations;
        }
        {
            std::lock_guard lock(stats_mu);
            stats.activator_socket_reads += activation.socket_reads() - reads_before;
        }
        for (auto it = pending_probes.begin(); it != pending_probes.end();) {
            auto until = it->retry ? std::chrono::steady_clock::now() : deadline;
            if (it->result.wait_until(until) != std::future_status::ready) {
                log().debug("probing PID {} with plugin \"{}\" outlasts this discovery", it->process.pid,
                            it->plugin->name());
                ++it;
                continue;
            }
            auto found_engines = it->result.get();
            if (found_engines.empty()) {
                auto &retry = fruitless[it->process];
                retry.delay = std::min(retry.delay == std::chrono::milliseconds(0) ? first_retry : retry.delay * 2,
                                       max_retry);
                retry.next = std::chrono::steady_clock::now() + retry.delay;
            } else {
                fruitless.erase(it->process);
            }
            for (auto &found : found_engines) {
                if (found.api_inode != 0 &&
                    !watched_apis.emplace(found.api_inode, found.engine->identity().type).second) {
                    log().debug("\"{}\" is already watched (socket inode {})", found.engine->identity().api,
                                found.api_inode);
                    continue; // e.g. a service this discovery activated, also claimed by a detector
                }
                log().info("found {} engine \"{}\" version {} (PID {}) via plugin \"{}\"",
                           found.engine->identity().type, found.engine->identity().api,
                           found.engine->identity().version, it->process.pid, it->plugin->name());
                fresh.push_back(start_watch(std::move(found), it->process, it->process.pid, false));
            }
            it = pending_probes.erase(it);
        }
        if (fresh.empty()) return;
        for (auto &w : fresh) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (!w->watcher->wait_ready(std::max(left, std::chrono::milliseconds(0))))
                log().debug("{} engine \"{}\" not synced within online wait", w->engine->type, w->engine->api);
        }
        {
            std::unique_lock lock(mu);
            for (auto &w : fresh) watched.push_back(w);
        }
        for (auto &w : fresh) {
            w->announced = true;
            notify({EventKind::engine_found, w->engine, {}});
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
        }
        return query::Assembler::collect(inputs);
    }

    std::vector<Container> containers() {
        std::lock_guard serial(discovery_mu);
        {
            std::lock_guard lock(stats_mu);
            ++stats.discoveries;
        }
        auto table = procfs::ProcessTable::scan(options.procfs_root);
        prune(table);
        discover(table);
        return query(table);
    }
};

Finder::Finder(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Finder::~Finder() = default;

std::vector<Container> Finder::containers() { return impl_->containers(); }

std::vector<std::shared_ptr<const Engine>> Finder::engines() {
    std::shared_lock lock(impl_->mu);
    std::vector<std::shared_ptr<const Engine>> out;
    for (auto &w : impl_->watched) out.push_back(w->engine);
    return out;
}

std::size_t Finder::engine_count() {
    std::shared_lock lock(impl_->mu);
    return impl_->watched.size();
}

std::vector<PluginStatus> Finder::plugins() const { return impl_->registry.statuses(); }

Stats Finder::stats() const {
    std::lock_guard lock(impl_->stats_mu);
    return impl_->stats;
}

int Finder::subscribe(Callback callback) {
    std::lock_guard lock(impl_->subscribers_mu);
    int id = impl_->next_subscriber++;
    impl_->subscribers.emplace(id, std::move(callback));
    return id;
}

void Finder::unsubscribe(int handle) {
    std::lock_guard lock(impl_->subscribers_mu);
    impl_->subscribers.erase(handle);
}

} // namespace turtlefinder
