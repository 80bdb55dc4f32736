// SPDX-License-Identifier: Apache-2.0
// The process table a Finder works on, kept current by the kernel's process
// events: one scan at the start and after lost events, then only the
// processes that forked, exec'd, were renamed or exited are read again. With
// no events to listen to it scans on every call, as a plain scan would.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "procfs/process_events.hpp"
#include "procfs/procfs.hpp"

namespace turtlefinder::procfs {

// The processes `events` may have changed in `table`: each process that
// forked, exec'd, was renamed or exited, and, for one that exited, its
// children (re-parented without an event of their own). Thread events are
// left out: /proc/PID/stat shows the process.
std::vector<int> touched_by(const std::vector<ProcessEvent> &events, const ProcessTable &table);

class ProcessTracker {
public:
    // Events from `source`; none (null): a scan on every current().
    ProcessTracker(std::string procfs_root, std::unique_ptr<EventSource> source);
    ~ProcessTracker();
    ProcessTracker(const ProcessTracker &) = delete;
    ProcessTracker &operator=(const ProcessTracker &) = delete;

    // The table as of now: what arrived since the last call applied, or a
    // full scan (the first call, after lost events, and always without
    // events). Valid until the next call. [serialized]
    const ProcessTable &current();

    // Takes what the kernel queued (never blocks) for the next current(),
    // and appends it to `seen` if given. [any-thread]
    void receive(std::vector<ProcessEvent> *seen = nullptr);
    // True if the last receive() found events lost (a rescan follows).
    bool lost() const;

    // Whether events keep the table current; readable when some are waiting (-1: none).
    bool incremental() const { return source_ != nullptr; }
    int fd() const { return source_ ? source_->fd() : -1; }
    const std::string &root() const { return root_; }

    struct Counters {
        std::uint64_t scans = 0; // full scans
        std::uint64_t events = 0; // events received
        std::uint64_t rereads = 0; // processes read again after events
    };
    Counters counters() const;

private:
    // Bounds what waits between two current() calls: past it, one scan is cheaper.
    static constexpr std::size_t max_pending = 1 << 16;

    std::string root_;
    std::unique_ptr<EventSource> source_;
    ProcessTable table_;
    bool scanned_ = false;

    mutable std::mutex mu_; // guards what follows, and calls of source_
    std::vector<ProcessEvent> pending_;
    bool lost_ = false;
    bool last_lost_ = false;
    Counters counters_;
};

// A tracker for `procfs_root`: with the kernel's events where they can be
// had and `use_events` is set; else scanning, with the reason in `why_not`.
std::unique_ptr<ProcessTracker> track_processes(const std::string &procfs_root, bool use_events, std::string &why_not);

} // namespace turtlefinder::procfs
