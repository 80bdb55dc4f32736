// SPDX-License-Identifier: Apache-2.0
#include "discovery/prober.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

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

void Prober::probe_again(const procfs::ProcessKey &process) {
    if (!fruitless_.contains(process)) return; // never probed, found an engine, or still probing
    if (std::any_of(pending_.begin(), pending_.end(), [&](const Pending &p) { return p.process == process; })) return;
    probed_.erase(process);
    fruitless_.erase(process);
}

void Prober::track_claims(const procfs::ProcessTable &table) {
    auto classify = [&](const procfs::Process &p) {
        if (registry_.detector_for(p.name)) detector_pids_.insert(p.pid);
        if (registry_.activator_for(p.name)) activator_pids_.insert(p.pid);
    };
    auto changed = claims_seen_ ? table.changed_since(*claims_seen_) : std::nullopt;
    if (changed) {
        for (int pid : *changed) {
            detector_pids_.erase(pid);
            activator_pids_.erase(pid);
            if (const auto *p = table.find(pid)) classify(*p);
        }
    } else {
        detector_pids_.clear();
        activator_pids_.clear();
        for (const auto &[pid, p] : table.processes()) classify(p);
    }
    claims_seen_ = table.cursor();
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
    track_claims(table);
    auto reads_before = activation_.socket_reads();
    auto jobs = activation_.due(table, activator_pids_, registry_, watched_inodes);
    activator_socket_reads_ += activation_.socket_reads() - reads_before;
    std::set<std::uint64_t> activating; // a service holding one of these is examined by its activation
    for (const auto &job : jobs) activating.insert(job.socket.socket.inode);

    // Another user's activator hides its sockets just the same.
    for (int pid : activator_pids_) {
        if (detector_pids_.contains(pid)) continue;
        const auto &p = *table.find(pid);
        procfs::ProcessKey key{pid, p.starttime};
        if (!probed_.contains(key) && procfs::fds_denied(options_.procfs_root, pid))
            note_denied(key, p, registry_.activator_for(p.name)->name());
    }
    for (int pid : detector_pids_) {
        const auto &p = *table.find(pid);
        auto plugin = registry_.detector_for(p.name);
        procfs::ProcessKey key{pid, p.starttime};
        if (!probed_.contains(key) && procfs::fds_denied(options_.procfs_root, pid)) {
            note_denied(key, p, plugin->name());
            continue;
        }
        // Examined already and not due again: its sockets are not even read.
        bool retry = probed_.contains(key);
        if (retry) {
            auto due = fruitless_.find(key);
            if (due == fruitless_.end() || !due->second.due()) continue;
        }
        auto sockets = listening_sockets_of(options_.procfs_root, p.pid);
        if (std::any_of(sockets.begin(), sockets.end(),
                        [&](const Candidate &s) { return activating.contains(s.socket.inode); }))
            continue;
        probed_.insert(key);
        // It holds the API socket of an engine watched already: that engine's
        // own process, or a child it forked that has not exec'd yet (process
        // events show many). Nothing new is behind it, and probing it would
        // only open connections to an engine we talk to already.
        if (std::any_of(sockets.begin(), sockets.end(),
                        [&](const Candidate &s) { return watched_inodes.contains(s.socket.inode); })) {
            log().debug("{} (PID {}) holds the API socket of a watched engine: not probed", p.name, pid);
            continue;
        }
        // A child of a process of its name holding its parent's listening
        // sockets is a fork not exec'd yet, found before its parent was
        // watched: probing it could report the engine under the child's PID.
        if (const auto *parent = table.find(p.ppid); parent != nullptr && parent->name == p.name && !sockets.empty()) {
            auto theirs = listening_sockets_of(options_.procfs_root, parent->pid);
            if (std::any_of(sockets.begin(), sockets.end(), [&](const Candidate &s) {
                    return std::any_of(theirs.begin(), theirs.end(),
                                       [&](const Candidate &t) { return t.socket.inode == s.socket.inode; });
                })) {
                log().debug("{} (PID {}) is a fork of PID {} holding its sockets: not probed", p.name, pid,
                            parent->pid);
                continue;
            }
        }
        auto until = now + options_.probe_timeout * static_cast<long>(sockets.size() + 1);
        auto progress = std::make_shared<Progress>();
        auto &candidate = progress->candidate;
        candidate.pid = pid;
        candidate.process = p.name;
        candidate.plugin = plugin->name();
        for (const auto &s : sockets) candidate.sockets.push_back({s.socket.reachable, "", ""});
        auto run = std::make_shared<Run>();
        launch(run, [board = board_.get(), settings = settings_for(*plugin), process = p, plugin,
                     sockets = std::move(sockets),
                     progress] { return probe(*board, settings, process, plugin, false, sockets, progress); });
        pending_.push_back({key, plugin, retry, until, std::nullopt, std::move(run), std::move(progress)});
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
        if (!p.progress || now < p.until) continue; // stopped before its bound: no verdict yet
        turtlefinder::Candidate c;
        {
            std::lock_guard progress_lock(p.progress->mu);
            c = p.progress->candidate;
        }
        // The sockets it has not told of yet are still being tried.
        for (auto &s : c.sockets)
            if (s.error.empty())
                record_outcome(
                    s, -ETIMEDOUT,
                    fmt::format("no answer within {} ms (still being probed)", options_.probe_timeout.count()));
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
        if (found_engines.empty() && pending.progress) {
            std::lock_guard progress_lock(pending.progress->mu);
            candidates_[pending.process] = pending.progress->candidate;
        } else
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

void Prober::note_denied(const procfs::ProcessKey &key, const procfs::Process &process, const std::string &plugin) {
    probed_.insert(key);
    turtlefinder::Candidate c;
    c.pid = process.pid;
    c.process = process.name;
    c.plugin = plugin;
    c.denied = true;
    if (auto uid = procfs::read_uid(options_.procfs_root, process.pid)) c.uid = *uid;
    c.reason = fmt::format("its file descriptors cannot be read (permission denied): it runs as UID {}, turtlefinder "
                           "as UID {} without the privilege to read other users' processes",
                           c.uid, ::geteuid());
    log().debug("{} (PID {}): {}", process.name, process.pid, c.reason);
    std::lock_guard lock(candidates_mu_);
    candidates_[key] = std::move(c);
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

std::map<std::string, Stats::PluginProbes> Prober::probes_by_plugin() const {
    std::lock_guard lock(board_->counts_mu);
    return board_->by_plugin;
}

} // namespace turtlefinder::discovery
