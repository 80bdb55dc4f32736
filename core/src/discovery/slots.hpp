// SPDX-License-Identifier: Apache-2.0
// Bounds the engine round-trips (probes) running at once across all calls.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <mutex>

namespace turtlefinder::discovery {

class Slots {
public:
    explicit Slots(unsigned n) : free_(std::max(1u, n)) {}
    void acquire() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return free_ > 0; });
        --free_;
    }
    void release() {
        {
            std::lock_guard lock(mu_);
            ++free_;
        }
        cv_.notify_one();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    unsigned free_;
};

} // namespace turtlefinder::discovery
