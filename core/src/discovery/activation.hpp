// SPDX-License-Identifier: Apache-2.0
// Socket activation: finding engines that run only once someone connects to
// the socket an activator (systemd, systemd-socket-activate) holds for them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "discovery/discovery.hpp"
#include "discovery/retry.hpp"
#include "plugins/registry.hpp"
#include "procfs/procfs.hpp"

namespace turtlefinder::discovery {

struct ActivatedService {
    procfs::Process service; // the started engine process
    int activator_pid = 0; // PPID hint: its PID namespace is the engine's
    Candidate socket; // the activatable socket and its handle
    std::shared_ptr<const plugins::Plugin> plugin;
};

// One socket to activate: chosen by Activation::due(), run on any thread.
struct ActivationJob {
    int activator_pid = 0;
    std::string activator_name;
    Candidate socket; // the socket and its handle
    std::shared_ptr<const plugins::Plugin> plugin;
    bool retry = false; // an earlier activation of this socket gave no engine
};

// Connects to the job's socket (which starts the service) and finds the
// service process: the claimed name, a child of the activator (or the
// activator itself, exec'd in place), holding that socket. Each step is
// bounded by `timeout`; nullopt (and an info line) when no service came.
// [any-thread]
std::optional<ActivatedService> run_activation(const std::string &procfs_root, const ActivationJob &job,
                                               std::chrono::milliseconds timeout);

class Activation {
public:
    // For each activator process in `table` whose socket fd set changed since
    // last time, or that holds a socket due for a retry: every listening
    // socket whose path ends in a claimed suffix, whose inode is not in
    // `watched` and that is not being activated or activated already. The
    // sockets returned count as being activated until finished().
    std::vector<ActivationJob> due(const procfs::ProcessTable &table, const plugins::Registry &registry,
                                   const std::set<std::uint64_t> &watched);
    // A job ended: with an engine, its socket stays handled until forget();
    // without, it is tried again after a growing delay (see Retry).
    void finished(const ActivationJob &job, bool found_engine);
    // The engine behind this socket is gone: activate it again next time.
    void forget(std::uint64_t socket_inode);
    // Plugins were loaded: every activator's sockets are read again next
    // time, for suffixes a new plugin claims.
    void plugins_changed();
    // How often an activator's listening sockets were read (after a change).
    std::uint64_t socket_reads() const { return socket_reads_; }

private:
    struct Activator {
        std::uint64_t starttime = 0;
        std::size_t fd_hash = 0;
        std::set<std::uint64_t> handled; // sockets being activated or activated
        std::map<std::uint64_t, Retry> fruitless; // sockets whose activation gave no engine
        bool dirty = true;
        bool retry_due() const;
    };
    std::map<int, Activator> activators_;
    std::uint64_t socket_reads_ = 0;
};

} // namespace turtlefinder::discovery
