// SPDX-License-Identifier: Apache-2.0
// The public entry point for host applications.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <turtlefinder/export.hpp>
#include <turtlefinder/model.hpp>
#include <turtlefinder/options.hpp>

namespace turtlefinder {

// A process a detector claimed whose sockets gave no engine (yet): it is
// probed again after a growing delay, and listed here until it gives an
// engine or is gone.
struct Candidate {
    int pid = 0;
    std::string process; // its name (comm)
    std::string plugin; // the detector that claimed it
    std::vector<std::string> sockets; // the listening sockets tried, as reachable from here
    std::string reason; // why no engine came of them
};

struct PluginStatus {
    std::string file;
    std::string name; // empty when refused before the descriptor was read
    std::string version;
    std::string description;
    std::vector<std::string> kinds; // "engine-detector", "socket-activator", "activated-engine"
    std::vector<std::string> claims; // process names and socket suffixes
    bool loaded = false;
    bool builtin = false; // linked into the host (Options::builtin_plugins); file is "<builtin:NAME>"
    std::string reason; // why it was refused
};

// Counters for monitoring and tests.
struct Stats {
    std::uint64_t discoveries = 0; // containers() calls that scanned
    std::uint64_t probes = 0; // processes handed to a plugin's probe
    std::uint64_t activator_socket_reads = 0; // activators whose socket set had to be read again
    std::uint64_t activations = 0; // services found after activating their socket

    // How long discoveries took: discovery_buckets[i] counts those that took
    // at most discovery_bounds[i] seconds and more than the bound before it;
    // the last bucket those above every bound.
    static constexpr std::array<double, 11> discovery_bounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    std::array<std::uint64_t, discovery_bounds.size() + 1> discovery_buckets{};
    double discovery_seconds = 0; // their sum
    // Probes by plugin, and of them those that gave no engine, by reason:
    // "no_socket" (the process listens on none), "error" (the plugin failed),
    // "no_engine" (no socket answered as its engine), "activation" (an
    // activator's socket started no service).
    struct PluginProbes {
        std::uint64_t probes = 0;
        std::map<std::string, std::uint64_t> failures;
    };
    std::map<std::string, PluginProbes> probes_by_plugin;
    std::uint64_t watch_resyncs = 0; // lists again after an engine's event stream broke
};

class TF_PUBLIC Finder {
public:
    explicit Finder(Options options = {});
    ~Finder(); // stops every watcher and joins every thread
    Finder(const Finder &) = delete;
    Finder &operator=(const Finder &) = delete;

    // Scans, prunes, discovers new engines (waiting at most online_wait for
    // their first sync), and returns every alive container of every engine.
    // Safe to call from several threads at once.
    std::vector<Container> containers();
    // The engines as the last discovery placed them: the very objects its
    // containers point at, with their state as of that discovery.
    std::vector<std::shared_ptr<const Engine>> engines();
    std::size_t engine_count();
    // Loaded and refused plugins.
    std::vector<PluginStatus> plugins() const;
    // Reads the plugin directories again: loads the plugin files that
    // appeared since (the next discovery uses them) and tries refused files
    // again; loaded plugins stay as they are (a removed file is not
    // unloaded). Returns the number of plugins newly loaded. Waits for a
    // discovery that runs.
    std::size_t reload_plugins();
    // The directories plugins are loaded from, in search order.
    std::vector<std::string> plugin_directories() const;
    Stats stats() const;
    // Processes a detector claimed whose sockets gave no engine, as of the
    // last discovery.
    std::vector<Candidate> candidates() const;

    // Live changes, delivered from the Finder's threads one at a time, in one
    // order for all subscribers (engine found/lost are found by discoveries,
    // i.e. containers() calls). With Replay::state the subscription starts
    // with the state as the last discovery shows it — engine_found for each
    // engine, started for each container, all marked `initial` — handed over
    // within subscribe() and atomically with the subscription: no change falls
    // between them (one may be told again that the state already shows;
    // applying it again changes nothing). Replaying the events from there on
    // rebuilds what containers() and engines() show. Returns a handle:
    // unsubscribe with it. The callback may unsubscribe (itself or another;
    // it is not told again from then on) but must not call anything else of
    // the Finder.
    using Callback = std::function<void(const Event &)>;
    enum class Replay { none, state };
    int subscribe(Callback callback, Replay replay = Replay::none);
    void unsubscribe(int handle);

private:
    struct TF_PRIVATE Impl;
    std::unique_ptr<Impl> impl_;
};

// Version of the library.
TF_PUBLIC const char *version();

// A listening unix socket of a process.
struct ApiSocket {
    std::uint64_t inode = 0;
    std::string path; // as bound, meaningful in the owner's mount namespace
    std::string reachable; // the same socket reached from here, through /proc/PID/root
};

struct ProcessSockets {
    int pid = 0;
    std::string name;
    std::vector<ApiSocket> sockets; // sorted by path
};

// Every process under `procfs_root` holding listening, non-abstract stream
// unix sockets, by PID: what engine detectors are offered to probe. Loads no
// plugins and talks to no engine.
TF_PUBLIC std::vector<ProcessSockets> listening_sockets(const std::string &procfs_root = "/proc");

} // namespace turtlefinder
