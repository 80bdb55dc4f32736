// SPDX-License-Identifier: Apache-2.0
// Probing: which processes are handed to which plugin, how many probes run
// at once, retries of processes that had no engine yet, and the services
// socket activators start. Used by one discovery at a time.
//
// A probe cannot be cancelled (plugin ABI), so nobody waits for one beyond
// their own bound: each runs on a detached thread that holds its plugin (the
// shared object stays loaded, deinit waits), its sockets and its inputs, and
// never the Prober; it ends by its own probe timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <turtlefinder/finder.hpp>
#include <turtlefinder/options.hpp>

#include "bound.hpp"
#include "discovery/activation.hpp"
#include "discovery/discovery.hpp"
#include "discovery/retry.hpp"
#include "plugins/engine_handle.hpp"
#include "plugins/registry.hpp"
#include "procfs/procfs.hpp"

namespace turtlefinder::discovery {

// What a plugin told of one socket (a negative errno and its message), in
// the words of CandidateSocket.
void record_outcome(CandidateSocket &socket, int outcome, std::string message);

// An engine a probe found, not watched yet.
struct FoundEngine {
    std::shared_ptr<plugins::EngineHandle> engine;
    std::uint64_t api_inode = 0; // the listening socket it talks to (0: unknown)
    std::shared_ptr<const SocketHandle> api_handle; // the handle it connects through (null: unknown)
    procfs::ProcessKey process; // the engine process
    int pidns_pid = 0; // process whose PID namespace its container PIDs are in
    bool activated = false; // a service an activator started
};

// The APIs engines are watched at, by (socket inode, engine type). One
// socket may carry several APIs (containerd: native and CRI), so an engine
// is a duplicate only if its socket and its type both match.
using WatchedApis = std::set<std::pair<std::uint64_t, std::string>>;

class Prober {
public:
    Prober(const plugins::Registry &registry, const Options &options);
    // Waits for no probe: those still running end on their own (each socket
    // bounded by probe_timeout) and destroy what they find, unwatched.
    ~Prober();
    Prober(const Prober &) = delete;
    Prober &operator=(const Prober &) = delete;

    // Forgets the processes gone from `table`, with their retry state.
    void prune(const procfs::ProcessTable &table);
    // The activated engine behind this socket is gone: activate it again.
    void forget_activation(std::uint64_t socket_inode);
    // Plugins were loaded: activators' sockets are read again, and every
    // process is classified again (a new plugin may claim it).
    void plugins_changed() {
        activation_.plugins_changed();
        claims_seen_.reset();
    }
    // The engine of this still running process was dropped (its API socket
    // went away): probe the process again, afresh.
    void reprobe(const procfs::ProcessKey &process);
    // The sockets of this process changed since its probe gave no engine
    // (an engine still starting): probe it at the next start(), without
    // waiting for its retry, unless a probe of it still runs.
    void probe_again(const procfs::ProcessKey &process);

    // Starts, in the background and side by side: a probe of every process
    // of `table` a detector claims that was not probed yet, or whose probe
    // found nothing and is due for a retry; and the activation (then probe)
    // of every socket an activator holds for an engine not watched yet.
    // Engines found at an API in `watched` are duplicates.
    void start(const procfs::ProcessTable &table, WatchedApis watched);
    // Hands each new engine of the probes and activations started so far to
    // `found` as soon as its probe ends (an activated service exits when
    // idle, so it is watched without delay). A first try is waited for until
    // its own bound (derived from probe_timeout), a retry not at all; what
    // still runs is collected by a later call, so a candidate that hangs
    // costs only its own result. Returns as soon as `bound` is reached.
    void collect(const std::function<void(FoundEngine)> &found, const Bound &bound = {});

    // Processes whose probe gave no engine (or outlasted its bound), until
    // they give one or are gone. [any-thread]
    std::vector<turtlefinder::Candidate> candidates() const;

    std::uint64_t probes() const { return board_->probes; }
    std::uint64_t activations() const { return board_->activations; }
    std::uint64_t activator_socket_reads() const { return activator_socket_reads_; }
    // Probes and activations by plugin, with those that gave no engine by
    // reason (see Stats::probes_by_plugin). [any-thread]
    std::map<std::string, Stats::PluginProbes> probes_by_plugin() const;

private:
    // What a detector probe has found out so far; its thread writes, a
    // discovery that stops waiting reads.
    struct Progress {
        mutable std::mutex mu;
        turtlefinder::Candidate candidate; // under mu
    };
    // What the probe threads share with the Prober, which they may outlive.
    struct Board {
        std::mutex mu;
        std::condition_variable_any ended; // a run ended
        std::atomic<std::uint64_t> probes{0}, activations{0};
        mutable std::mutex counts_mu;
        std::map<std::string, Stats::PluginProbes> by_plugin; // under counts_mu

        // Counts one probe by `plugin`; `failure` is its reason when it gave no engine.
        void count(const std::string &plugin, const char *failure);
    };
    // One probe or activation thread's outcome, under Board::mu.
    struct Run {
        bool done = false;
        bool abandoned = false; // the Prober is gone: the thread destroys what it found
        std::vector<FoundEngine> found;
    };
    struct Pending {
        procfs::ProcessKey process; // the process probed; for an activation, the activator
        std::shared_ptr<const plugins::Plugin> plugin;
        bool retry; // of something that gave no engine before: never waited for
        std::chrono::steady_clock::time_point until; // a first try is waited for until then
        std::optional<ActivationJob> activation;
        std::shared_ptr<Run> run;
        std::shared_ptr<Progress> progress; // filled by the probe (detector probes only)
    };
    // What a probe thread needs, copied: the Options may go before it ends.
    struct ProbeSettings {
        std::chrono::milliseconds timeout;
        std::map<std::string, std::string> settings;
    };

    ProbeSettings settings_for(const plugins::Plugin &plugin) const;
    // Runs `work` on a thread of its own, whose result `run` receives.
    void launch(const std::shared_ptr<Run> &run, std::function<std::vector<FoundEngine>()> work);
    // Probes one process's sockets with the plugin claiming it (any thread).
    static std::vector<FoundEngine> probe(Board &board, const ProbeSettings &settings, const procfs::Process &process,
                                          const std::shared_ptr<const plugins::Plugin> &plugin, bool activated,
                                          const std::vector<Candidate> &sockets,
                                          const std::shared_ptr<Progress> &progress = nullptr);
    // Gives `engine` the handle of the socket it reports as its api (kept
    // open while it lives, and shown as the path the user knows).
    static void hand_over_handle(plugins::EngineHandle &engine, const std::vector<Candidate> &sockets,
                                 FoundEngine &found);
    // Activates one socket and probes the service that starts (any thread).
    static std::vector<FoundEngine> activate(Board &board, const ProbeSettings &settings, const ActivationJob &job,
                                             const std::string &procfs_root);
    void schedule_retry(const procfs::ProcessKey &process, bool found_any);
    // Brings the claimed processes up to `table`: only the processes that
    // changed since the last call when the table can tell, else all.
    void track_claims(const procfs::ProcessTable &table);
    // A claimed process whose fds we may not read: listed as a candidate
    // once (not probed; nothing can be learnt of it).
    void note_denied(const procfs::ProcessKey &key, const procfs::Process &process, const std::string &plugin);
    // Takes the result of a pending that ended.
    void harvest(Pending &pending, const std::function<void(FoundEngine)> &found);
    // False (and a debug line) when an engine at that API is watched already.
    bool claim_api(const FoundEngine &found);

    const plugins::Registry &registry_;
    const Options &options_;
    // Processes a detector claims and activator processes, by PID, as of
    // the table at `claims_seen_` (none: every process is classified again):
    // a discovery looks at these only.
    std::set<int> detector_pids_, activator_pids_;
    std::optional<procfs::ProcessTable::Cursor> claims_seen_;
    std::set<procfs::ProcessKey> probed_; // processes already examined by a plugin
    std::map<procfs::ProcessKey, Retry> fruitless_;
    mutable std::mutex candidates_mu_;
    std::map<procfs::ProcessKey, turtlefinder::Candidate> candidates_; // under candidates_mu_
    std::vector<Pending> pending_;
    Activation activation_;
    WatchedApis watched_; // of the current discovery, with what it found so far
    std::shared_ptr<Board> board_ = std::make_shared<Board>();
    std::atomic<std::uint64_t> activator_socket_reads_{0};
};

} // namespace turtlefinder::discovery
