// SPDX-License-Identifier: Apache-2.0
// The pipeline behind the public API: scan, prune, probe/activate, watch,
// query, stack.
#include "finder_impl.hpp"

#include <algorithm>
#include <set>

#include "hierarchy/hierarchy.hpp"
#include "log.hpp"
#include "plugins/search_path.hpp"

namespace turtlefinder {

const char *version() { return TF_VERSION; }

Finder::Impl::Impl(Options o)
    : options(std::move(o)), registry(plugins::Registry::Loading::on_demand), prober(registry, options) {
    plugins::check_plugin_dirs(options.plugin_dirs); // a directory the caller names must be one
    plugin_dirs = options.plugin_dirs;
    if (options.default_plugin_dirs)
        for (auto &d : plugins::default_plugin_dirs()) plugin_dirs.push_back(std::move(d));
    for (const auto *builtin : options.builtin_plugins) registry.add(builtin, {}, options.disabled_plugins);
    registry.load_directories(plugin_dirs, options.disabled_plugins);
    registry.warn_unmatched(options.disabled_plugins);
    std::string why_not;
    processes = procfs::track_processes(options.procfs_root, options.process_events, why_not);
    if (!processes->incremental()) log().debug("scanning {} on every discovery: {}", options.procfs_root, why_not);
    start_trigger();
}

Finder::Impl::~Impl() {
    closing.request_stop(); // a discovery the trigger runs stops waiting
    trigger.reset(); // no discovery starts from here on
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

std::vector<Container> Finder::Impl::containers(const Bound &bound) {
    if (!discovery_mu.lock(bound)) return known_containers();
    std::unique_lock serial(discovery_mu, std::adopt_lock);
    return discover(bound);
}

std::vector<Container> Finder::Impl::discover(const Bound &bound) {
    ++discoveries;
    const auto started = std::chrono::steady_clock::now();
    const auto &table = processes->current();
    load_needed_plugins(table);
    prune(table);
    // Probes and activations run side by side, each bounded by its own
    // probe timeout (one that hangs is collected by a later discovery);
    // then, within online_wait, the new engines' first syncs, which run
    // side by side too. A stopped caller starts none and waits for none.
    if (!bound.reached()) prober.start(table, watched_apis());
    std::vector<std::shared_ptr<Watched>> fresh;
    prober.collect([&](discovery::FoundEngine found) { fresh.push_back(start_watch(std::move(found))); }, bound);
    wait_online(fresh, std::chrono::steady_clock::now() + options.online_wait, bound);
    publish(fresh);
    auto result = query(table);
    tell_placement();
    for (auto &w : fresh) announce(*w);
    count_discovery(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return result;
}

void Finder::Impl::count_discovery(double seconds) {
    const auto &bounds = Stats::discovery_bounds;
    auto bucket = std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
    std::lock_guard lock(counts_mu);
    ++discovery_buckets[static_cast<std::size_t>(bucket)];
    discovery_seconds += seconds;
}

void Finder::Impl::load_needed_plugins(const procfs::ProcessTable &table) {
    if (!registry.has_deferred()) return;
    auto changed = needs_seen ? table.changed_since(*needs_seen) : std::nullopt;
    needs_seen = table.cursor();
    auto wanted = registry.wanted_process_names();
    std::set<std::string, std::less<>> running;
    if (changed) {
        for (int pid : *changed)
            if (const auto *p = table.find(pid); p != nullptr && wanted.contains(p->name)) running.insert(p->name);
    } else {
        for (const auto &[pid, p] : table.processes())
            if (wanted.contains(p.name)) running.insert(p.name);
    }
    if (running.empty()) return;
    // Processes seen before are classified again against the new claims.
    if (registry.load_for(running) > 0) prober.plugins_changed();
    refresh_claimed_names(); // loaded or refused, they are deferred no more
    needs_seen.reset(); // what is wanted now may run already (an activator's service)
}

std::vector<Container> Finder::Impl::known_containers() {
    std::vector<std::shared_ptr<Watched>> engines;
    {
        std::shared_lock lock(mu);
        engines = watched;
    }
    std::vector<Container> out;
    for (auto &w : engines)
        // Held for the loop: a temporary shared_ptr would not outlive the range expression.
        if (const auto view = w->watcher->snapshot())
            for (const auto &raw : *view) out.push_back(container_of(*w, *raw));
    return out;
}

void Finder::Impl::prune(const procfs::ProcessTable &table) {
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
        if (w->announced) stream.notify({EventKind::engine_lost, w->engine, {}, {}, false});
    }
}

discovery::WatchedApis Finder::Impl::watched_apis() const {
    discovery::WatchedApis apis;
    std::shared_lock lock(mu);
    for (const auto &w : watched)
        if (w->api_inode != 0) apis.emplace(w->api_inode, w->engine->type);
    return apis;
}

auto Finder::Impl::start_watch(discovery::FoundEngine found) -> std::shared_ptr<Watched> {
    auto w = std::make_shared<Watched>();
    w->engine = std::make_shared<Engine>(found.engine->identity());
    w->engine->pid = found.process.pid;
    if (auto uid = procfs::read_uid(options.procfs_root, found.process.pid)) w->engine->uid = *uid;
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

void Finder::Impl::wait_online(const std::vector<std::shared_ptr<Watched>> &fresh,
                               std::chrono::steady_clock::time_point deadline, const Bound &bound) {
    deadline = std::min(deadline, bound.deadline);
    for (auto &w : fresh) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (!w->watcher->wait_ready(std::max(left, std::chrono::milliseconds(0)), bound.stop))
            log().debug("{} engine \"{}\" not synced within online wait", w->engine->type, w->engine->api);
    }
}

void Finder::Impl::publish(const std::vector<std::shared_ptr<Watched>> &fresh) {
    if (fresh.empty()) return;
    std::unique_lock lock(mu);
    for (auto &w : fresh) watched.push_back(w);
}

std::vector<Container> Finder::Impl::query(const procfs::ProcessTable &table) {
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
        inputs.push_back(
            {w.get(), table.find(w->process.pid) != nullptr ? w->process.pid : w->pidns_pid, w->watcher->snapshot()});
    {
        std::unique_lock lock(mu); // host_pids and engines are written
        assembler.update(table, inputs);
        placed.clear();
        for (auto &w : engines) placed.push_back(w->engine);
    }
    return query::Assembler::collect(inputs);
}

bool Finder::Impl::alive(const procfs::ProcessKey &key) const {
    auto p = procfs::read_process(options.procfs_root, key.pid);
    return p && p->starttime == key.starttime && p->state != 'Z';
}

Finder::Finder(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Finder::~Finder() = default;

std::vector<Container> Finder::containers() { return impl_->containers({}); }

std::vector<Container> Finder::containers(std::stop_token stop, std::chrono::steady_clock::time_point deadline) {
    return impl_->containers({std::move(stop), deadline});
}

std::vector<std::shared_ptr<const Engine>> Finder::engines() {
    std::shared_lock lock(impl_->mu);
    return impl_->placed;
}

std::size_t Finder::engine_count() {
    std::shared_lock lock(impl_->mu);
    return impl_->watched.size();
}

std::vector<turtlefinder::Candidate> Finder::candidates() const { return impl_->prober.candidates(); }

std::vector<PluginStatus> Finder::plugins() const { return impl_->registry.statuses_snapshot(); }

// Discoveries look plugins up under discovery_mu, so loading under it races
// with none of them.
std::size_t Finder::reload_plugins() {
    std::lock_guard serial(impl_->discovery_mu);
    std::size_t before = impl_->registry.plugins().size();
    impl_->registry.reload_directories(impl_->plugin_dirs, impl_->options.disabled_plugins);
    std::size_t loaded = impl_->registry.plugins().size() - before;
    if (loaded > 0) impl_->prober.plugins_changed();
    impl_->refresh_claimed_names(); // deferred ones count too
    impl_->needs_seen.reset(); // a new deferred one may want a process running for long
    return loaded;
}

std::vector<std::string> Finder::plugin_directories() const { return impl_->plugin_dirs; }

Stats Finder::stats() const {
    Stats s;
    s.discoveries = impl_->discoveries;
    s.process_scans = impl_->processes->counters().scans;
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

void Finder::unsubscribe(int handle) { impl_->unsubscribe(handle); }

} // namespace turtlefinder
