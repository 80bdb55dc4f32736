// SPDX-License-Identifier: Apache-2.0
// Discovery driven by process events, for long-running use (someone
// subscribed): a process a detector or activator claims that appears (exec,
// or renamed) is watched until it listens on a unix socket, then discovered;
// an engine process that exits is pruned at once. One thread, started on
// demand, ending once nobody listens any more; discoveries it runs are
// debounced and go through the Finder's own (serialized) pipeline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <thread>
#include <vector>

#include "procfs/procfs.hpp"
#include "procfs/tracker.hpp"

namespace turtlefinder::discovery {

class Trigger {
public:
    struct Hooks {
        std::function<bool(std::string_view name)> claimed; // a detector or activator claims this process name
        std::function<bool(int pid)> engine; // an engine runs as this process
        std::function<bool()> wanted; // someone listens; else the thread ends
        // Runs one discovery; `again` changed since their probe gave nothing.
        std::function<void(const std::vector<procfs::ProcessKey> &again)> discover;
    };
    // How long a new claimed process is watched for its sockets.
    static constexpr std::chrono::seconds young_for{10};
    // How often its sockets are looked at meanwhile.
    static constexpr std::chrono::milliseconds young_poll{10};
    // Changes this close together are one discovery.
    static constexpr std::chrono::milliseconds debounce{5};

    Trigger(procfs::ProcessTracker &tracker, Hooks hooks);
    ~Trigger(); // stops and joins the thread
    Trigger(const Trigger &) = delete;
    Trigger &operator=(const Trigger &) = delete;

    // Starts the thread unless it runs. [any-thread]
    void start();
    // Makes the thread look at `wanted` again. [any-thread]
    void wake();

    // Discoveries it ran (tests).
    std::uint64_t discoveries() const;

private:
    struct Young {
        std::chrono::steady_clock::time_point until;
        std::vector<std::uint64_t> held; // inodes of the sockets among its fds, sorted
        std::vector<std::uint64_t> listening; // the listening unix sockets among them, sorted
    };
    void run();
    // Looks at what the kernel reported; returns whether a discovery is due.
    bool react(const std::vector<procfs::ProcessEvent> &events);
    void adopt(int pid); // a process that may be claimed appeared
    // Looks at the sockets of young processes; returns whether a discovery is due.
    bool poll_young();

    procfs::ProcessTracker &tracker_;
    Hooks hooks_;
    int wake_fd_ = -1; // eventfd

    mutable std::mutex mu_;
    std::thread thread_;
    bool running_ = false;
    bool stop_ = false;
    std::uint64_t discoveries_ = 0;

    // The thread's own.
    std::map<procfs::ProcessKey, Young> young_;
    std::set<procfs::ProcessKey> again_;
};

} // namespace turtlefinder::discovery
