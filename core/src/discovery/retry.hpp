// SPDX-License-Identifier: Apache-2.0
// The growing delay before something that gave no engine is tried again: an
// engine caught while starting (no socket yet, not answering yet, a service
// slow to come) must not be ignored for the Finder's lifetime, nor hammered.
#pragma once

#include <algorithm>
#include <chrono>

namespace turtlefinder::discovery {

struct Retry {
    static constexpr std::chrono::milliseconds first{2000}, max{60000};
    std::chrono::steady_clock::time_point next;
    std::chrono::milliseconds delay{0};

    // One more fruitless try: the next one waits twice as long (up to max).
    void failed() {
        delay = std::min(delay == std::chrono::milliseconds(0) ? first : delay * 2, max);
        next = std::chrono::steady_clock::now() + delay;
    }
    bool due() const { return std::chrono::steady_clock::now() >= next; }
};

} // namespace turtlefinder::discovery
