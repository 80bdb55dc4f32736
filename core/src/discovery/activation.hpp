// SPDX-License-Identifier: Apache-2.0
// Socket activation: finding engines that run only once someone connects to
// the socket an activator (systemd, systemd-socket-activate) holds for them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "discovery/discovery.hpp"
#include "plugins/registry.hpp"
#include "procfs/procfs.hpp"

namespace turtlefinder::discovery {

struct ActivatedService {
    procfs::Process service;   // the started engine process
    int activator_pid = 0;     // PPID hint: its PID namespace is the engine's
    Candidate socket;          // the activatable socket and its handle
    std::shared_ptr<const plugins::Plugin> plugin;
};

class Activation {
public:
    // For each activator process in `table` whose socket fd set changed since
    // last time: every listening socket whose path ends in a claimed suffix and
    // whose inode is not in `watched` is activated (a connect through the
    // activator's root), and its service process located: the claimed name, a
    // child of the activator (or the activator itself, exec'd in place),
    // holding that socket. Gives up on a socket at `deadline`; such a socket is
    // retried only once the activator's sockets change, or after forget().
    std::vector<ActivatedService> activate(const procfs::ProcessTable &table, const plugins::Registry &registry,
                                           const std::set<std::uint64_t> &watched,
                                           std::chrono::steady_clock::time_point deadline);
    // The engine behind this socket is gone: activate it again next time.
    void forget(std::uint64_t socket_inode);
    // How often an activator's listening sockets were read (after a change).
    std::uint64_t socket_reads() const { return socket_reads_; }

private:
    struct Activator {
        std::uint64_t starttime = 0;
        std::size_t fd_hash = 0;
        std::set<std::uint64_t> handled; // sockets activated or given up on
        bool dirty = true;
    };
    std::map<int, Activator> activators_;
    std::uint64_t socket_reads_ = 0;
};

} // namespace turtlefinder::discovery
