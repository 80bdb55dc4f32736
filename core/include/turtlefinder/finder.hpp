// SPDX-License-Identifier: Apache-2.0
// The public entry point for host applications.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stop_token>
#include <vector>

#include <turtlefinder/export.hpp>
#include <turtlefinder/model.hpp>
#include <turtlefinder/options.hpp>

namespace turtlefinder {

// One listening socket of a Candidate and what it said when probed.
struct CandidateSocket {
    std::string path; // as reachable from here
    // What went wrong: "timeout" (no answer in time), "refused" (nothing
    // listens), "permission-denied", "not-this-protocol" (it answered, but not
    // as this engine), "closed" (it hung up), "gone", "error" (anything
    // else), or "unknown" (the plugin does not tell: built for ABI 1.0).
    std::string error;
    std::string reason; // the same for people: the error and what the plugin said
};

// A process a detector claimed whose sockets gave no engine (yet): it is
// probed again after a growing delay, and listed here until it gives an
// engine or is gone.
struct Candidate {
    int pid = 0;
    std::string process; // its name (comm)
    std::string plugin; // the detector that claimed it
    std::vector<CandidateSocket> sockets; // the listening sockets tried, each with its outcome
    std::string reason; // why no engine came of them, in one line
    // Its fds could not be read (another user's process, turtlefinder not
    // root): whether it serves an engine is unknown, and it is not probed.
    bool denied = false;
    std::int64_t uid = -1; // its owner (real UID) when denied; -1 when unknown
};

struct PluginStatus {
    std::string file;
    std::string name; // empty when refused before the descriptor was read
    std::string version;
    std::string description;
    std::vector<std::string> kinds; // "engine-detector", "socket-activator", "activated-engine"
    std::vector<std::string> claims; // process names and socket suffixes
    bool loaded = false;
    // Known from the metadata in its file, not loaded yet: it is once a
    // process it claims runs (then `loaded`); kinds and claims are the metadata's.
    bool deferred = false;
    bool builtin = false; // linked into the host (Options::builtin_plugins); file is "<builtin:NAME>"
    std::string reason; // why it was refused
};

// Counters for monitoring and tests.
struct Stats {
    std::uint64_t discoveries = 0; // discoveries run (containers() calls, and on process events)
    std::uint64_t process_scans = 0; // full /proc scans (with process events: the first, and after lost events)
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
    // Stops every watcher and joins every thread of its own. Waits for no
    // probe: one still running (a socket that does not answer) ends by its
    // own probe_timeout on a detached thread that holds its plugin loaded
    // and touches nothing of the Finder; what it finds is destroyed.
    ~Finder();
    Finder(const Finder &) = delete;
    Finder &operator=(const Finder &) = delete;

    // Scans, prunes, discovers new engines (waiting at most online_wait for
    // their first sync), and returns every alive container of every engine.
    // Safe to call from several threads at once.
    std::vector<Container> containers();
    // The same, cut short once `stop` is requested or `deadline` passes,
    // whichever comes first: it returns promptly with what it has — the
    // containers of the engines watched already, new engines with what their
    // first sync listed so far — and starts no probe once stopped. Probes
    // still running are not waited for: each ends by its own probe_timeout
    // and what it finds is collected by a later discovery. A call waiting for
    // another thread's discovery gives up at the stop too, and answers with
    // the last discovery's containers.
    std::vector<Container>
    containers(std::stop_token stop,
               std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max());
    // The engines as the last discovery placed them: the very objects its
    // containers point at, with their state as of that discovery.
    std::vector<std::shared_ptr<const Engine>> engines();
    std::size_t engine_count();
    // Every plugin: loaded, known and not loaded yet (`deferred`), or refused.
    std::vector<PluginStatus> plugins() const;
    // Reads the plugin directories again: loads the plugin files that
    // appeared since (the next discovery uses them) and tries refused files
    // again; loaded plugins stay as they are (a removed file is not
    // unloaded). Returns the number of plugins newly loaded (one known from
    // its metadata is listed now and loaded by the discovery that needs it).
    // Waits for a discovery that runs.
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
