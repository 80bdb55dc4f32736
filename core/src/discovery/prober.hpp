// SPDX-License-Identifier: Apache-2.0
// Probing: which processes are handed to which plugin, how many probes run
// at once, retries of processes that had no engine yet, and the services
// socket activators start. Used by one discovery at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <turtlefinder/options.hpp>

#include "discovery/activation.hpp"
#include "discovery/discovery.hpp"
#include "discovery/slots.hpp"
#include "plugins/engine_handle.hpp"
#include "plugins/registry.hpp"
#include "procfs/procfs.hpp"

namespace turtlefinder::discovery {

// An engine a probe found, not watched yet.
struct FoundEngine {
    std::shared_ptr<plugins::EngineHandle> engine;
    std::uint64_t api_inode = 0; // the listening socket it talks to (0: unknown)
    std::shared_ptr<const SocketHandle> api_handle; // the handle it connects through (null: unknown)
    procfs::ProcessKey process;  // the engine process
    int pidns_pid = 0;           // process whose PID namespace its container PIDs are in
    bool activated = false;      // a service an activator started
};

// The APIs engines are watched at, by (socket inode, engine type). One
// socket may carry several APIs (containerd: native and CRI), so an engine
// is a duplicate only if its socket and its type both match.
using WatchedApis = std::set<std::pair<std::uint64_t, std::string>>;

class Prober {
public:
    Prober(const plugins::Registry &registry, const Options &options);
    // Probes end on their own (each socket bounded by probe_timeout): waits
    // for them; their engines are destroyed unwatched.
    ~Prober();
    Prober(const Prober &) = delete;
    Prober &operator=(const Prober &) = delete;

    // Forgets the processes gone from `table`, with their retry state.
    void prune(const procfs::ProcessTable &table);
    // The activated engine behind this socket is gone: activate it again.
    void forget_activation(std::uint64_t socket_inode);
    // The engine of this still running process was dropped (its API socket
    // went away): probe the process again, afresh.
    void reprobe(const procfs::ProcessKey &process);

    // Starts probing, in the background, every process of `table` a detector
    // claims that was not probed yet, or whose probe found nothing and is due
    // for a retry. Engines found at an API in `watched` are duplicates.
    void start(const procfs::ProcessTable &table, WatchedApis watched);
    // Activates the sockets activators hold for engines not watched yet and
    // probes the services that start; gives up at `deadline`. Each engine
    // goes to `found` at once, before the next socket is activated: an
    // activated service exits when idle, so it is watched without delay.
    void activate(const procfs::ProcessTable &table, std::chrono::steady_clock::time_point deadline,
                  const std::function<void(FoundEngine)> &found);
    // The new engines of the probes that end by `deadline` (a retry is never
    // waited for); a probe still running is collected by a later call.
    std::vector<FoundEngine> collect(std::chrono::steady_clock::time_point deadline);

    std::uint64_t probes() const { return probes_; }
    std::uint64_t activations() const { return activations_; }
    std::uint64_t activator_socket_reads() const { return activator_socket_reads_; }

private:
    struct Pending {
        procfs::ProcessKey process;
        std::shared_ptr<const plugins::Plugin> plugin;
        bool retry; // of a process that had no engine before: never waited for
        std::future<std::vector<FoundEngine>> result;
    };
    // Processes whose probe found no engine are probed again after a growing
    // delay: an engine caught while starting (no socket yet, or not answering
    // yet) must not be ignored for the Finder's lifetime.
    struct Retry {
        std::chrono::steady_clock::time_point next;
        std::chrono::milliseconds delay{0};
    };
    static constexpr std::chrono::milliseconds first_retry{2000}, max_retry{60000};

    // Probes one process's sockets with the plugin claiming it (any thread).
    std::vector<FoundEngine> probe(const procfs::Process &process, const std::shared_ptr<const plugins::Plugin> &plugin,
                                   bool activated, const std::vector<Candidate> &sockets);
    // Gives `engine` the handle of the socket it reports as its api (kept
    // open while it lives, and shown as the path the user knows).
    static void hand_over_handle(plugins::EngineHandle &engine, const std::vector<Candidate> &sockets,
                                 FoundEngine &found);
    void schedule_retry(const procfs::ProcessKey &process, bool found_any);
    // False (and a debug line) when an engine at that API is watched already.
    bool claim_api(const FoundEngine &found);

    const plugins::Registry &registry_;
    const Options &options_;
    Slots slots_;
    std::set<procfs::ProcessKey> probed_; // processes already examined by a plugin
    std::map<procfs::ProcessKey, Retry> fruitless_;
    std::vector<Pending> pending_;
    Activation activation_;
    WatchedApis watched_; // of the current discovery, with what it found so far
    std::atomic<std::uint64_t> probes_{0}, activations_{0}, activator_socket_reads_{0};
};

} // namespace turtlefinder::discovery
