// SPDX-License-Identifier: Apache-2.0
#include "discovery/trigger.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "log.hpp"

namespace turtlefinder::discovery {

using Clock = std::chrono::steady_clock;

Trigger::Trigger(procfs::ProcessTracker &tracker, Hooks hooks)
    : tracker_(tracker), hooks_(std::move(hooks)), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Trigger::~Trigger() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    wake();
    if (thread_.joinable()) thread_.join();
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Trigger::start() {
    std::lock_guard lock(mu_);
    if (running_ || stop_ || wake_fd_ < 0 || tracker_.fd() < 0) return;
    if (thread_.joinable()) thread_.join(); // one that ended when nobody listened
    running_ = true;
    thread_ = std::thread([this] { run(); });
}

void Trigger::wake() {
    if (wake_fd_ < 0) return;
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

std::uint64_t Trigger::discoveries() const {
    std::lock_guard lock(mu_);
    return discoveries_;
}

void Trigger::run() {
    std::vector<procfs::ProcessEvent> seen;
    auto due = Clock::time_point::max(); // of the next discovery (max: none)
    auto next_young_poll = Clock::now();
    while (true) {
        {
            std::lock_guard lock(mu_);
            if (stop_ || !hooks_.wanted()) {
                running_ = false;
                young_.clear();
                again_.clear();
                return;
            }
        }
        auto now = Clock::now();
        auto wait = std::chrono::milliseconds(1000); // looks at `wanted` now and then anyway
        if (due != Clock::time_point::max())
            wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(due - now));
        if (!young_.empty()) wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(next_young_poll - now));
        pollfd fds[2] = {{tracker_.fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        ::poll(fds, 2, static_cast<int>(std::max<std::int64_t>(0, wait.count())));
        if ((fds[1].revents & POLLIN) != 0) {
            std::uint64_t count;
            [[maybe_unused]] auto n = ::read(wake_fd_, &count, sizeof count);
        }

        seen.clear();
        tracker_.receive(&seen);
        bool now_due = react(seen);
        // Lost events may have held an engine's exec: the rescan tells.
        now_due |= tracker_.lost();
        now = Clock::now();
        if (!young_.empty() && now >= next_young_poll) {
            now_due |= poll_young();
            next_young_poll = now + young_poll;
        }
        if (now_due && due == Clock::time_point::max()) due = now + debounce;
        if (Clock::now() >= due) {
            due = Clock::time_point::max();
            std::vector<procfs::ProcessKey> again(again_.begin(), again_.end());
            again_.clear();
            try {
                hooks_.discover(again);
            } catch (const std::exception &e) {
                log().warn("a discovery after process events failed: {}", e.what());
            }
            std::lock_guard lock(mu_);
            ++discoveries_;
        }
    }
}

bool Trigger::react(const std::vector<procfs::ProcessEvent> &events) {
    using Kind = procfs::ProcessEvent::Kind;
    bool discover = false;
    for (const auto &e : events) {
        if (!e.leader()) continue;
        switch (e.kind) {
        case Kind::exec: adopt(e.tgid); break;
        case Kind::comm:
            if (hooks_.claimed(e.comm)) adopt(e.tgid);
            break;
        case Kind::exit:
            if (hooks_.engine(e.tgid)) discover = true;
            break;
        default: break;
        }
    }
    return discover;
}

void Trigger::adopt(int pid) {
    auto p = procfs::read_process(tracker_.root(), pid);
    if (!p || p->state == 'Z' || !hooks_.claimed(p->name)) return;
    young_.insert_or_assign(procfs::ProcessKey{pid, p->starttime}, Young{Clock::now() + young_for, {}, {}});
}

bool Trigger::poll_young() {
    bool discover = false;
    const auto now = Clock::now();
    for (auto it = young_.begin(); it != young_.end();) {
        const auto &key = it->first;
        auto &young = it->second;
        auto p = procfs::read_process(tracker_.root(), key.pid);
        if (now > young.until || !p || p->starttime != key.starttime || p->state == 'Z' || hooks_.engine(key.pid)) {
            it = young_.erase(it);
            continue;
        }
        // Only a new listening socket is worth a discovery: one the engine's
        // API may be behind.
        auto held = procfs::socket_inodes(tracker_.root(), key.pid);
        if (held == young.held) {
            ++it;
            continue;
        }
        young.held = std::move(held);
        std::vector<std::uint64_t> listening;
        if (!young.held.empty())
            for (const auto &s : procfs::listening_unix_sockets(tracker_.root(), key.pid))
                if (std::binary_search(young.held.begin(), young.held.end(), s.inode)) listening.push_back(s.inode);
        std::sort(listening.begin(), listening.end());
        if (!listening.empty() && listening != young.listening) {
            young.listening = std::move(listening);
            again_.insert(key);
            discover = true;
        }
        ++it;
    }
    return discover;
}

} // namespace turtlefinder::discovery
