// SPDX-License-Identifier: Apache-2.0
#include "discovery/prober.hpp"

#include <algorithm>

#include "log.hpp"

namespace turtlefinder::discovery {

Prober::Prober(const plugins::Registry &registry, const Options &options)
    : registry_(registry), options_(options), slots_(options.workers) {}

Prober::~Prober() {
    for (auto &p : pending_) p.result.wait();
}

void Prober::prune(const procfs::ProcessTable &table) {
    std::erase_if(probed_, [&](const procfs::ProcessKey &k) {
        const auto *p = table.find(k.pid);
        return p == nullptr || p->starttime != k.starttime;
    });
    std::erase_if(fruitless_, [&](const auto &entry) { return !probed_.contains(entry.first); });
}

void Prober::forget_activation(std::uint64_t socket_inode) { activation_.forget(socket_inode); }

void Prober::reprobe(const procfs::ProcessKey &process) {
    probed_.erase(process);
    fruitless_.erase(process);
}

void Prober::start(const procfs::ProcessTable &table, WatchedApis watched) {
    watched_ = std::move(watched);
    for (const auto &[pid, p] : table.processes()) {
        auto plugin = registry_.detector_for(p.name);
        if (!plugin) continue;
        procfs::ProcessKey key{pid, p.starttime};
        bool retry = !probed_.insert(key).second;
        if (retry) {
            auto due = fruitless_.find(key);
            if (due == fruitless_.end() || std::chrono::steady_clock::now() < due->second.next) continue;
        }
        pending_.push_back({key, plugin, retry, std::async(std::launch::async, [this, process = p, plugin] {
                                auto sockets = listening_sockets_of(options_.procfs_root, process.pid);
                                return probe(process, plugin, false, sockets);
                            })});
    }
}

void Prober::activate(const procfs::ProcessTable &table, std::chrono::steady_clock::time_point deadline,
                      const std::function<void(FoundEngine)> &found_engine) {
    std::set<std::uint64_t> watched_inodes; // sockets some engine already talks to
    for (const auto &[inode, type] : watched_)
        if (inode != 0) watched_inodes.insert(inode);
    auto reads_before = activation_.socket_reads();
    for (auto &service : activation_.activate(table, registry_, watched_inodes, deadline)) {
        procfs::ProcessKey key{service.service.pid, service.service.starttime};
        // The service may also be claimed by a detector (a podman that runs
        // on its own): it is examined here, not probed again.
        probed_.insert(key);
        if (watched_inodes.contains(service.socket.socket.inode)) continue;
        for (auto &found : probe(service.service, service.plugin, true, {service.socket})) {
            found.api_inode = service.socket.socket.inode;
            found.api_handle = service.socket.handle;
            found.pidns_pid = service.activator_pid;
            found.activated = true;
            const Engine &e = found.engine->identity();
            log().info("found {} engine \"{}\" version {} (PID {}) activated by PID {} via plugin \"{}\"", e.type,
                       e.api, e.version, key.pid, service.activator_pid, service.plugin->name());
            watched_inodes.insert(service.socket.socket.inode);
            watched_.emplace(service.socket.socket.inode, e.type);
            found_engine(std::move(found));
        }
        ++activations_;
    }
    activator_socket_reads_ += activation_.socket_reads() - reads_before;
}

std::vector<FoundEngine> Prober::collect(std::chrono::steady_clock::time_point deadline) {
    std::vector<FoundEngine> fresh;
    for (auto it = pending_.begin(); it != pending_.end();) {
        auto until = it->retry ? std::chrono::steady_clock::now() : deadline;
        if (it->result.wait_until(until) != std::future_status::ready) {
            log().debug("probing PID {} with plugin \"{}\" outlasts this discovery", it->process.pid,
                        it->plugin->name());
            ++it;
            continue;
        }
        auto found_engines = it->result.get();
        schedule_retry(it->process, !found_engines.empty());
        for (auto &found : found_engines) {
            if (!claim_api(found)) continue; // e.g. a service this discovery activated, also claimed by a detector
            const Engine &e = found.engine->identity();
            log().info("found {} engine \"{}\" version {} (PID {}) via plugin \"{}\"", e.type, e.api, e.version,
                       it->process.pid, it->plugin->name());
            fresh.push_back(std::move(found));
        }
        it = pending_.erase(it);
    }
    return fresh;
}

void Prober::schedule_retry(const procfs::ProcessKey &process, bool found_any) {
    if (found_any) {
        fruitless_.erase(process);
        return;
    }
    auto &retry = fruitless_[process];
    retry.delay = std::min(retry.delay == std::chrono::milliseconds(0) ? first_retry : retry.delay * 2, max_retry);
    retry.next = std::chrono::steady_clock::now() + retry.delay;
}

bool Prober::claim_api(const FoundEngine &found) {
    if (found.api_inode == 0 || watched_.emplace(found.api_inode, found.engine->identity().type).second) return true;
    log().debug("\"{}\" is already watched (socket inode {})", found.engine->identity().api, found.api_inode);
    return false;
}

std::vector<FoundEngine> Prober::probe(const procfs::Process &process,
                                       const std::shared_ptr<const plugins::Plugin> &plugin, bool activated,
                                       const std::vector<Candidate> &sockets) {
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
    slots_.acquire();
    auto outcome = activated ? plugin->probe_activated(input) : plugin->probe(input);
    slots_.release();
    std::vector<FoundEngine> found;
    for (auto &e : outcome.engines) {
        FoundEngine f;
        f.process = {process.pid, process.starttime};
        f.pidns_pid = process.pid;
        hand_over_handle(*e, sockets, f);
        f.engine = std::move(e);
        found.push_back(std::move(f));
    }
    if (!outcome.result.ok())
        log().debug("plugin \"{}\" probing {} (PID {}): {}", plugin->name(), process.name, process.pid,
                    outcome.result.message);
    else if (found.empty())
        log().debug("plugin \"{}\" found no engine at {} (PID {}, {} sockets)", plugin->name(), process.name,
                    process.pid, input.api_paths.size());
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
