// SPDX-License-Identifier: Apache-2.0
#include "procfs/tracker.hpp"

namespace turtlefinder::procfs {

std::vector<int> touched_by(const std::vector<ProcessEvent> &events, const ProcessTable &table) {
    std::vector<int> pids;
    for (const auto &e : events) {
        switch (e.kind) {
        case ProcessEvent::Kind::fork:
        case ProcessEvent::Kind::exec:
        case ProcessEvent::Kind::comm:
            if (e.leader()) pids.push_back(e.tgid);
            break;
        case ProcessEvent::Kind::exit:
            if (!e.leader()) break;
            pids.push_back(e.tgid);
            if (const auto *p = table.find(e.tgid)) pids.insert(pids.end(), p->children.begin(), p->children.end());
            break;
        case ProcessEvent::Kind::other:
        case ProcessEvent::Kind::ack: break;
        }
    }
    return pids;
}

ProcessTracker::ProcessTracker(std::string procfs_root, std::unique_ptr<EventSource> source)
    : root_(std::move(procfs_root)), source_(std::move(source)) {}

ProcessTracker::~ProcessTracker() = default;

void ProcessTracker::receive(std::vector<ProcessEvent> *seen) {
    if (!source_) return;
    std::lock_guard lock(mu_);
    std::size_t before = pending_.size();
    auto received = source_->receive(pending_);
    counters_.events += pending_.size() - before;
    if (seen != nullptr)
        seen->insert(seen->end(), pending_.begin() + static_cast<std::ptrdiff_t>(before), pending_.end());
    last_lost_ = received.lost;
    // Once lost, the next current() scans: what waits is of no use then.
    if (received.lost || pending_.size() > max_pending) lost_ = true;
    if (lost_) pending_.clear();
}

bool ProcessTracker::lost() const {
    std::lock_guard lock(mu_);
    return last_lost_;
}

const ProcessTable &ProcessTracker::current() {
    std::vector<ProcessEvent> events;
    bool rescan = !scanned_ || !source_;
    if (source_) {
        receive();
        std::lock_guard lock(mu_);
        events.swap(pending_);
        rescan |= lost_;
        lost_ = false;
    }
    // Events arriving from here on wait for the next call: a process they
    // name is read again then, whatever this call read of it.
    if (rescan) {
        table_ = ProcessTable::scan(root_);
        scanned_ = true;
        std::lock_guard lock(mu_);
        ++counters_.scans;
        return table_;
    }
    if (events.empty()) return table_;
    auto pids = touched_by(events, table_);
    {
        std::lock_guard lock(mu_);
        counters_.rereads += pids.size();
    }
    if (!pids.empty()) table_.reread(std::move(pids));
    return table_;
}

ProcessTracker::Counters ProcessTracker::counters() const {
    std::lock_guard lock(mu_);
    return counters_;
}

std::unique_ptr<ProcessTracker> track_processes(const std::string &procfs_root, bool use_events, std::string &why_not) {
    std::unique_ptr<EventSource> source;
    if (use_events)
        source = open_connector(procfs_root, why_not);
    else
        why_not = "process events are turned off";
    return std::make_unique<ProcessTracker>(procfs_root, std::move(source));
}

} // namespace turtlefinder::procfs
