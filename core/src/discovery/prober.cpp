// SPDX-License-Identifier: Apache-2.0
#include "discovery/prober.hpp"

#include <algorithm>

#include "log.hpp"

namespace turtlefinder::discovery {

Prober::Prober(const plugins::Registry &registry, const Options &options) : registry_(registry), options_(options) {}

Prober::~Prober() {
    for (auto &p : pending_) p.result.wait();
}

void Prober::prune(const procfs::ProcessTable &table) {
    std::erase_if(probed_, [&](const procfs::ProcessKey &k) {
        const auto *p = table.find(k.pid);
        return p == nullptr || p->starttime != k.starttime;
    });
    std::erase_if(fruitless_, [&](const auto &entry) { return !probed_.contains(entry.first); });
    std::lock_guard lock(candidates_mu_);
    std::erase_if(candidates_, [&](const auto &entry) { return !probed_.contains(entry.first); });
}

std::vector<turtlefinder::Candidate> Prober::candidates() const {
    std::lock_guard lock(candidates_mu_);
    std::vector<turtlefinder::Candidate> out;
    for (const auto &[key, c] : candidates_) out.push_back(c);
    return out;
}

void Prober::forget_activation(std::uint64_t socket_inode) { activation_.forget(socket_inode); }

void Prober::reprobe(const procfs::ProcessKey &process) {
    probed_.erase(process);
    fruitless_.erase(process);
}

// Every candidate gets its own thread, so none waits behind another that
// hangs; each is bounded by probe_timeout per socket (and per step of an
// activation), which also bounds how long a discovery waits for it.
void Prober::start(const procfs::ProcessTable &table, WatchedApis watched) {
    watched_ = std::move(watched);
    const auto now = std::chrono::steady_clock::now();

    std::set<std::uint64_t> watched_inodes; // sockets some engine already talks to
    for (const auto &[inode, type] : watched_)
        if (inode != 0) watched_inodes.insert(inode);
    auto reads_before = activation_.socket_reads();
    auto jobs = activation_.due(table, registry_, watched_inodes);
    activator_socket_reads_ += activation_.socket_reads() - reads_before;
    std::set<std::uint64_t> activating; // a service holding one of these is examined by its activation
    for (const auto &job : jobs) activating.insert(job.socket.socket.inode);

    for (const auto &[pid, p] : table.processes()) {
        auto plugin = registry_.detector_for(p.name);
        if (!plugin) continue;
        procfs::ProcessKey key{pid, p.starttime};
        auto sockets = listening_sockets_of(options_.procfs_root, p.pid);
        if (std::any_of(sockets.begin(), sockets.end(),
                        [&](const Candidate &s) { return activating.contains(s.socket.inode); }))
            continue;
        bool retry = !probed_.insert(key).second;
        if (retry) {
            auto due = fruitless_.find(key);
            if (due == fruitless_.end() || !due->second.due()) continue;
        }
        auto until = now + options_.probe_timeout * static_cast<long>(sockets.size() + 1);
        auto candidate = std::make_shared<turtlefinder::Candidate>();
        candidate->pid = pid;
        candidate->process = p.name;
        candidate->plugin = plugin->name();
        for (const auto &s : sockets) candidate->sockets.push_back(s.socket.reachable);
        pending_.push_back({key, plugin, retry, until, std::nullopt,
                            std::async(std::launch::async,
                                       [this, process = p, plugin, sockets = std::move(sockets), candidate] {
                                           return probe(process, plugin, false, sockets, candidate.get());
                                       }),
                            candidate});
    }

    for (auto &job : jobs) {
        const auto *activator = table.find(job.activator_pid);
        procfs::ProcessKey key{job.activator_pid, activator != nullptr ? activator->starttime : 0};
        // Connect, find the service, probe it: three steps of probe_timeout.
        auto until = now + options_.probe_timeout * 4;
        auto plugin = job.plugin;
        bool retry = job.retry;
        auto run = [this, job, root = table.root()] { return activate(job, root); };
        pending_.push_back({key, std::move(plugin), retry, until, std::move(job), std::async(std::launch::async, run)});
    }
}

std::vector<FoundEngine> Prober::activate(const ActivationJob &job, const std::string &procfs_root) {
    std::vector<FoundEngine> found;
    auto service = run_activation(procfs_root, job, options_.probe_timeout);
    if (!service) {
        count_probe(job.plugin->name(), "activation");
        return found;
    }
    ++activations_;
    for (auto &f : probe(service->service, service->plugin, true, {service->socket})) {
        f.api_inode = service->socket.socket.inode;
        f.api_handle = service->socket.handle;
        f.pidns_pid = service->activator_pid;
        f.activated = true;
        found.push_back(std::move(f));
    }
    return found;
}

void Prober::collect(const std::function<void(FoundEngine)> &found) {
    while (true) {
        std::erase_if(pending_, [&](Pending &p) {
            if (p.result.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
            harvest(p, found);
            return true;
        });
        // Waited for: first tries within their bound.
        const auto now = std::chrono::steady_clock::now();
        auto waited =
            std::find_if(pending_.begin(), pending_.end(), [&](const Pending &p) { return !p.retry && now < p.until; });
        if (waited == pending_.end()) break;
        waited->result.wait_until(std::min(waited->until, now + std::chrono::milliseconds(10)));
    }
    for (const auto &p : pending_) {
        if (p.retry) continue;
        log().debug("{} PID {} with plugin \"{}\" outlasts this discovery",
                    p.activation ? "activating a socket of" : "probing", p.process.pid, p.plugin->name());
        if (!p.candidate) continue;
        turtlefinder::Candidate c; // the probe thread may still write `reason`: copy the rest only
        c.pid = p.candidate->pid;
        c.process = p.candidate->process;
        c.plugin = p.candidate->plugin;
        c.sockets = p.candidate->sockets;
        c.reason = fmt::format("timeout: no answer within {} ms per socket", options_.probe_timeout.count());
        std::lock_guard lock(candidates_mu_);
        candidates_.try_emplace(p.process, std::move(c));
    }
}

void Prober::harvest(Pending &pending, const std::function<void(FoundEngine)> &found) {
    auto found_engines = pending.result.get();
    if (pending.activation) {
        activation_.finished(*pending.activation, !found_engines.empty());
        // A service that also runs on its own terms (claimed by a detector)
        // is examined here, not probed again.
        for (const auto &f : found_engines) probed_.insert(f.process);
    } else {
        schedule_retry(pending.process, !found_engines.empty());
        std::lock_guard lock(candidates_mu_);
        if (found_engines.empty() && pending.candidate)
            candidates_[pending.process] = *pending.candidate;
        else
            candidates_.erase(pending.process);
    }
    for (auto &f : found_engines) {
        if (!claim_api(f)) continue; // e.g. a service this discovery activated, also claimed by a detector
        const Engine &e = f.engine->identity();
        if (f.activated)
            log().info("found {} engine \"{}\" version {} (PID {}) activated by PID {} via plugin \"{}\"", e.type,
                       e.api, e.version, f.process.pid, pending.process.pid, pending.plugin->name());
        else
            log().info("found {} engine \"{}\" version {} (PID {}) via plugin \"{}\"", e.type, e.api, e.version,
                       pending.process.pid, pending.plugin->name());
        found(std::move(f));
    }
}

void Prober::schedule_retry(const procfs::ProcessKey &process, bool found_any) {
    if (found_any)
        fruitless_.erase(process);
    else
        fruitless_[process].failed();
}

bool Prober::claim_api(const FoundEngine &found) {
    if (found.api_inode == 0 || watched_.emplace(found.api_inode, found.engine->identity().type).second) return true;
    log().debug("\"{}\" is already watched (socket inode {})", found.engine->identity().api, found.api_inode);
    return false;
}

std::vector<FoundEngine> Prober::probe(const procfs::Process &process,
                                       const std::shared_ptr<const plugins::Plugin> &plugin, bool activated,
                                       const std::vector<Candidate> &sockets, turtlefinder::Candidate *candidate) {
    ++probes_;
    plugins::ProbeInput input;
    input.pid = process.pid;
    input.process_name = process.name;
    // Plugins connect through the handles only: the paths they are given
    // cannot be redirected by the engine's container (see SocketHandle).
    for (auto &s : sockets) input.api_paths.push_back(s.handle->connect_path());
    input.timeout = options_.probe_timeout;
    if (auto it = options_.plugin_settings.find(plugin->name()); it != options_.plugin_settings.end())
        input.settings = it->second;
    auto outcome = activated ? plugin->probe_activated(input) : plugin->probe(input);
    std::vector<FoundEngine> found;
    for (auto &e : outcome.engines) {
        FoundEngine f;
        hand_over_handle(*e, sockets, f);
        f.engine = std::move(e);
        f.process = {process.pid, process.starttime};
        f.pidns_pid = process.pid;
        found.push_back(std::move(f));
    }
    if (!outcome.result.ok())
        log().debug("plugin \"{}\" probing {} (PID {}): {}", plugin->name(), process.name, process.pid,
                    outcome.result.message);
    else if (found.empty())
        log().debug("plugin \"{}\" found no engine at {} (PID {}, {} sockets)", plugin->name(), process.name,
                    process.pid, input.api_paths.size());
    const char *failure = !found.empty()         ? nullptr
                          : sockets.empty()      ? "no_socket"
                          : !outcome.result.ok() ? "error"
                                                 : "no_engine";
    count_probe(plugin->name(), failure);
    if (candidate != nullptr && found.empty()) {
        if (sockets.empty())
            candidate->reason = "no listening unix socket";
        else if (!outcome.result.ok())
            candidate->reason = outcome.result.message;
        else
            candidate->reason = "no socket answered as this engine (timeout, refused or not this protocol)";
    }
    return found;
}

void Prober::count_probe(const std::string &plugin, const char *failure) {
    std::lock_guard lock(counts_mu_);
    auto &counts = by_plugin_[plugin];
    ++counts.probes;
    if (failure != nullptr) ++counts.failures[failure];
}

std::map<std::string, Stats::PluginProbes> Prober::probes_by_plugin() const {
    std::lock_guard lock(counts_mu_);
    return by_plugin_;
}

void Prober::hand_over_handle(plugins::EngineHandle &engine, const std::vector<Candidate> &sockets,
                              FoundEngine &found) {
    for (const auto &s : sockets) {
        if (s.handle->connect_path() != engine.identity().api) continue;
        engine.show_api_as(s.handle->connect_path(), s.socket.reachable);
        engine.keep_until_destroyed(s.handle);
        found.api_inode = s.socket.inode;
        found.api_handle = s.handle;
        return;
    }
    // An engine reporting an api it was not given may connect to any of them.
    auto all = std::make_shared<std::vector<std::shared_ptr<const SocketHandle>>>();
    for (const auto &s : sockets) all->push_back(s.handle);
    engine.keep_until_destroyed(std::move(all));
}

} // namespace turtlefinder::discovery
