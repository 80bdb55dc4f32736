// SPDX-License-Identifier: Apache-2.0
#include "hierarchy/hierarchy.hpp"

#include <deque>
#include <set>
#include <unordered_map>

namespace turtlefinder::hierarchy {

Placement stack(const procfs::ProcessTable &table, const std::vector<EngineNode> &engines,
                const std::vector<ContainerNode> &containers) {
    Placement out;
    const std::size_t n = engines.size();
    out.container_of.resize(n);
    out.prefix.resize(n);
    out.parent.resize(n);

    std::unordered_map<int, std::vector<std::size_t>> by_init, by_shim;
    for (std::size_t i = 0; i < containers.size(); ++i) {
        const auto &c = containers[i];
        if (c.pid <= 0) continue;
        by_init[c.pid].push_back(i);
        if (const auto *p = table.find(c.pid); p != nullptr && p->ppid > 1) by_shim[p->ppid].push_back(i);
    }
    auto pick = [&](const std::vector<std::size_t> &candidates, std::size_t engine) -> std::optional<std::size_t> {
        std::optional<std::size_t> best;
        for (auto i : candidates) {
            if (containers[i].engine == engine) continue; // never inside its own container
            if (!best || containers[i].name < containers[*best].name) best = i; // deterministic
        }
        return best;
    };

    for (std::size_t e = 0; e < n; ++e) {
        int pid = engines[e].pid;
        for (int hops = 0; pid > 0 && hops < 4096; ++hops) {
            std::optional<std::size_t> hit;
            if (auto it = by_init.find(pid); it != by_init.end()) hit = pick(it->second, e);
            if (!hit)
                if (auto it = by_shim.find(pid); it != by_shim.end()) hit = pick(it->second, e);
            if (hit) {
                out.container_of[e] = hit;
                out.parent[e] = containers[*hit].engine;
                break;
            }
            const auto *p = table.find(pid);
            if (p == nullptr || p->ppid == pid) break;
            pid = p->ppid;
        }
    }

    // Break cycles (impossible with real process trees, but a fixture or a
    // PID reused between scan and list must not make us loop).
    for (std::size_t e = 0; e < n; ++e) {
        std::set<std::size_t> seen{e};
        for (auto p = out.parent[e]; p; p = out.parent[*p]) {
            if (!seen.insert(*p).second) {
                out.parent[e].reset();
                out.container_of[e].reset();
                break;
            }
        }
    }
    for (std::size_t e = 0; e < n; ++e) {
        std::deque<std::string> names;
        for (auto cur = e; out.container_of[cur]; cur = *out.parent[cur])
            names.push_front(containers[*out.container_of[cur]].name);
        std::string prefix;
        for (const auto &name : names) prefix += (prefix.empty() ? "" : "/") + name;
        out.prefix[e] = std::move(prefix);
    }
    return out;
}

const PidTranslator::Namespace *PidTranslator::namespace_of(int namespace_pid) {
    auto ns_inode = [&](int pid) -> std::optional<std::uint64_t> {
        if (auto it = namespace_inode_.find(pid); it != namespace_inode_.end()) return it->second;
        auto ino = procfs::pid_namespace(table_.root(), pid);
        if (ino) namespace_inode_[pid] = *ino;
        return ino;
    };
    auto inode = ns_inode(namespace_pid);
    if (!inode) return nullptr;
    if (auto it = namespaces_.find(*inode); it != namespaces_.end()) return &it->second;

    auto chain = procfs::read_nspid(table_.root(), namespace_pid);
    if (!chain || chain->empty()) return nullptr;
    Namespace ns;
    ns.level = chain->size() - 1;
    if (ns.level > 0) {
        // The namespace's processes all descend from its init: walk up from
        // the given process while the parent shares its namespace, then read
        // the NSpid chains of that init's descendants only.
        int init = namespace_pid;
        for (int hops = 0; hops < 4096; ++hops) {
            const auto *p = table_.find(init);
            if (p == nullptr || p->ppid <= 0) break;
            auto parent_ns = ns_inode(p->ppid);
            if (!parent_ns || *parent_ns != *inode) break;
            init = p->ppid;
        }
        std::deque<int> todo{init};
        while (!todo.empty()) {
            int pid = todo.front();
            todo.pop_front();
            if (auto c = procfs::read_nspid(table_.root(), pid); c && c->size() > ns.level)
                ns.to_host.emplace((*c)[ns.level], (*c)[0]);
            if (const auto *p = table_.find(pid)) todo.insert(todo.end(), p->children.begin(), p->children.end());
        }
    }
    return &namespaces_.emplace(*inode, std::move(ns)).first->second;
}

std::optional<int> PidTranslator::to_host(int namespace_pid, int pid) {
    if (pid <= 0) return std::nullopt;
    const Namespace *ns = namespace_of(namespace_pid);
    if (ns == nullptr) return std::nullopt;
    if (ns->level == 0) return pid;
    if (auto it = ns->to_host.find(pid); it != ns->to_host.end()) return it->second;
    return std::nullopt;
}

} // namespace turtlefinder::hierarchy
