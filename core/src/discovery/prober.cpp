// SPDX-License-Identifier: Apache-2.0
#include "discovery/prober.hpp"

#include <algorithm>
#include <thread>

#include "log.hpp"

namespace turtlefinder::discovery {

Prober::Prober(const plugins::Registry &registry, const Options &options) : registry_(registry), options_(options) {}

Prober::~Prober() {
    // What ended already is destroyed with pending_, after this lock.
    std::lock_guard lock(board_->mu);
    for (auto &p : pending_) p.run->abandoned = true;
}

Prober::ProbeSettings Prober::settings_for(const plugins::Plugin &plugin) const {
    ProbeSettings s{options_.probe_timeout, {}};
    if (auto it = options_.plugin_settings.find(plugin.name()); it != options_.plugin_settings.end())
        s.settings = it->second;
    return s;
}

void Prober::launch(const std::shared_ptr<Run> &run, std::function<std::vector<FoundEngine>()> work) {
    std::thread([board = board_, run, work = std::move(work)]() mutable {
        std::vector<FoundEngine> found;
        try {
            found = work();
        } catch (const std::exception &e) {
            log().warn("probe failed: {}", e.what());
        } catch (...) {
            log().warn("probe failed");
        }
        work = nullptr; // its plugin and sockets: what it found holds its own
        {
            std::lock_guard lock(board->mu);
            run->done = true;
            if (!run->abandoned) run->found = std::move(found);
        }
        board->ended.notify_all();
        // Abandoned: `found` is destroyed here, each engine holding its plugin.
    }).detach();
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
        auto run = std::make_shared<Run>();
        launch(run, [board = board_.get(), settings = settings_for(*plugin), process = p, plugin,
                     sockets = std::move(sockets),
                     candidate] { return probe(*board, settings, process, plugin, false, sockets, candidate.get()); });
        pending_.push_back({key, plugin, retry, until, std::nullopt, std::move(run), std::move(candidate)});
    }

    for (auto &job : jobs) {
        const auto *activator = table.find(job.activator_pid);
        procfs::ProcessKey key{job.activator_pid, activator != nullptr ? activator->starttime : 0};
        // Connect, find the service, probe it: three steps of probe_timeout.
        auto until = now + options_.probe_timeout * 4;
        auto plugin = job.plugin;
        bool retry = job.retry;
        auto run = std::make_shared<Run>();
        launch(run, [board = board_.get(), settings = settings_for(*plugin), job, root = table.root()] {
            return activate(*board, settings, job, root);
        });
        pending_.push_back({key, std::move(plugin), retry, until, std::move(job), std::move(run), nullptr});
    }
}

std::vector<FoundEngine> Prober::activate(Board &board, const ProbeSettings &settings, const ActivationJob &job,
                                          const std::string &procfs_root) {
    std::vector<FoundEngine> found;
    auto service = run_activation(procfs_root, job, settings.timeout);
    if (!service) return found;
    ++board.activations;
    for (auto &f : probe(board, settings, service->service, service->plugin, true, {service->socket})) {
        f.api_inode = service->socket.socket.inode;
        f.api_handle = service->socket.handle;
        f.pidns_pid = service->activator_pid;
        f.activated = true;
        found.push_back(std::move(f));
    }
    return found;
}

void Prober::collect(const std::function<void(FoundEngine)> &found, const Bound &bound) {
    auto ended = [&] {
        return std::any_of(pending_.begin(), pending_.end(), [](const Pending &p) { return p.run->done; });
    };
    while (true) {
        std::vector<Pending> done;
        {
            std::lock_guard lock(board_->mu);
            for (auto it = pending_.begin(); it != pending_.end();) {
                if (!it->run->done) {
                    ++it;
                    continue;
                }
                done.push_back(std::move(*it));
                it = pending_.erase(it);
            }
        }
        for (auto &p : done) harvest(p, found);
        if (bound.reached()) break; // what still runs is collected later
        // Waited for: first tries within their bound.
        const auto now = std::chrono::steady_clock::now();
        auto until = std::chrono::steady_clock::time_point::max();
        for (const auto &p : pending_)
            if (!p.retry && now < p.until) until = std::min(until, p.until);
        if (until == std::chrono::steady_clock::time_point::max()) break;
        std::unique_lock lock(board_->mu);
        bound.wait(board_->ended, lock, until, ended);
    }
    const auto now = std::chrono::steady_clock::now();
    for (const auto &p : pending_) {
        if (p.retry) continue;
        log().debug("{} PID {} with plugin \"{}\" outlasts this discovery",
                    p.activation ? "activating a socket of" : "probing", p.process.pid, p.plugin->name());
        if (!p.candidate || now < p.until) continue; // stopped before its bound: no verdict yet
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
    auto found_engines = std::move(pending.run->found); // done: the thread no longer touches it
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

std::vector<FoundEngine> Prober::probe(Board &board, const ProbeSettings &settings, const procfs::Process &process,
                                       const std::shared_ptr<const plugins::Plugin> &plugin, bool activated,
                                       const std::vector<Candidate> &sockets, turtlefinder::Candidate *candidate) {
    ++board.probes;
    plugins::ProbeInput input;
    input.pid = process.pid;
    input.process_name = process.name;
    // Plugins connect through the handles only: the paths they are given
    // cannot be redirected by the engine's container (see SocketHandle).
    for (auto &s : sockets) input.api_paths.push_back(s.handle->connect_path());
    input.timeout = settings.timeout;
    input.settings = settings.settings;
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
