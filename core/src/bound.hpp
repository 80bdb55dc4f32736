// SPDX-License-Identifier: Apache-2.0
// How a caller bounds a call (Finder::containers): a stop request and a
// deadline. Every wait of the call ends at the first of its own bound, the
// caller's deadline and the stop.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>

namespace turtlefinder {

struct Bound {
    using Clock = std::chrono::steady_clock;
    std::stop_token stop;
    Clock::time_point deadline = Clock::time_point::max();

    bool reached() const { return stop.stop_requested() || Clock::now() >= deadline; }

    // Waits until `done` holds, the stop, the deadline or `until`; returns `done`.
    template <typename Lock, typename Predicate>
    bool wait(std::condition_variable_any &cv, Lock &lock, Clock::time_point until, Predicate done) const {
        const auto end = std::min(until, deadline);
        // No deadline at all: wait_until would add an offset to max() and overflow.
        if (end == Clock::time_point::max()) return cv.wait(lock, stop, done);
        return cv.wait_until(lock, stop, end, done);
    }
};

// A mutex whose waiters give up at their Bound: one discovery at a time, and
// a stopped caller does not wait for another's. Lockable like std::mutex.
class BoundedMutex {
public:
    void lock() {
        std::unique_lock guard(mu_);
        free_.wait(guard, [&] { return !held_; });
        held_ = true;
    }
    // False when the bound came first (the mutex is then not held).
    bool lock(const Bound &bound) {
        std::unique_lock guard(mu_);
        if (!bound.wait(free_, guard, Bound::Clock::time_point::max(), [&] { return !held_; })) return false;
        held_ = true;
        return true;
    }
    void unlock() {
        {
            std::lock_guard guard(mu_);
            held_ = false;
        }
        free_.notify_all();
    }

private:
    std::mutex mu_;
    std::condition_variable_any free_;
    bool held_ = false;
};

} // namespace turtlefinder
