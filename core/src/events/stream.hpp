// SPDX-License-Identifier: Apache-2.0
// The Finder's subscribers and the one order in which they are told.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <turtlefinder/model.hpp>

namespace turtlefinder::events {

// Every event is delivered while the stream is held, so all subscribers hear
// the same events in the same order; a caller that must keep something in
// step with the stream (a snapshot handed to a new subscriber, an engine's
// "as told" copy) holds it for that time.
class Stream {
public:
    using Callback = std::function<void(const Event &)>;

    [[nodiscard]] std::unique_lock<std::mutex> hold() { return std::unique_lock(mu_); }

    // With the stream held: tells every subscriber, in subscription order; one
    // that throws does not stop the others. Stamps events without a time.
    void deliver(Event event);
    // Holds the stream and delivers.
    void notify(Event event);
    // With the stream held.
    int add(Callback callback);
    bool empty() const { return subscribers_.empty(); }
    // From any thread, including from a callback being told (which then is
    // not told again from then on).
    void remove(int handle);

    // Tells one callback, logging what it throws.
    static void tell(const Callback &callback, const Event &event);

private:
    std::mutex mu_;
    std::map<int, Callback> subscribers_;
    int next_ = 1;
    // A callback may unsubscribe (itself or another) while it is told: the
    // thread delivering holds the stream, so it only notes the handle, and
    // deliver() drops it once the event has been told.
    std::atomic<std::thread::id> delivering_{};
    std::vector<int> dropped_; // under mu_
};

} // namespace turtlefinder::events
