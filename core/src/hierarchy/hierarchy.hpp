// SPDX-License-Identifier: Apache-2.0
// Which engine sits in which container, and container PIDs in our namespace.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "procfs/procfs.hpp"

namespace turtlefinder::hierarchy {

struct EngineNode {
    int pid = 0; // engine process, host view
};

struct ContainerNode {
    std::size_t engine = 0; // index into the engines
    std::string name;
    int pid = 0; // init process, host view; 0 when unknown
};

struct Placement {
    // For each engine: index of the container it runs in, if any.
    std::vector<std::optional<std::size_t>> container_of;
    // For each engine: enclosing container names, outermost first, joined by '/'.
    std::vector<std::string> prefix;
    // For each engine: index of the engine whose container holds it.
    std::vector<std::optional<std::size_t>> parent;
};

// An engine sits in the container whose init process — or that process's
// parent, the shim — is the engine process itself or its nearest such
// ancestor. Engines are never placed in their own containers, and the
// resulting tree has no cycles (an engine closing one stays at the top).
Placement stack(const procfs::ProcessTable &table, const std::vector<EngineNode> &engines,
                const std::vector<ContainerNode> &containers);

// Maps PIDs of one PID namespace to PIDs in the procfs root's namespace.
class PidTranslator {
public:
    explicit PidTranslator(const procfs::ProcessTable &table) : table_(table) {}
    // `pid` as seen in the PID namespace of process `namespace_pid` (host
    // view) translated to the host view; nullopt when it cannot be.
    std::optional<int> to_host(int namespace_pid, int pid);

private:
    struct Namespace {
        std::size_t level = 0; // 0: the procfs root's own namespace
        std::map<int, int> to_host; // inner PID → host PID
    };
    const Namespace *namespace_of(int namespace_pid);

    const procfs::ProcessTable &table_;
    std::map<std::uint64_t, Namespace> namespaces_; // by pid-namespace inode
    std::map<int, std::uint64_t> namespace_inode_; // host PID → its pid-namespace inode
};

} // namespace turtlefinder::hierarchy
