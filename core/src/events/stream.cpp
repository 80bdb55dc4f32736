// SPDX-License-Identifier: Apache-2.0
#include "events/stream.hpp"

#include <algorithm>
#include <chrono>
#include <exception>

#include "log.hpp"

namespace turtlefinder::events {

void Stream::deliver(Event event) {
    if (event.time == std::chrono::system_clock::time_point{}) event.time = std::chrono::system_clock::now();
    delivering_ = std::this_thread::get_id();
    for (auto &[id, cb] : subscribers_)
        if (std::find(dropped_.begin(), dropped_.end(), id) == dropped_.end()) tell(cb, event);
    delivering_ = std::thread::id{};
    for (int id : dropped_) subscribers_.erase(id);
    dropped_.clear();
}

void Stream::notify(Event event) {
    auto held = hold();
    deliver(std::move(event));
}

int Stream::add(Callback callback) {
    int id = next_++;
    subscribers_.emplace(id, std::move(callback));
    return id;
}

void Stream::remove(int handle) {
    if (delivering_.load() == std::this_thread::get_id()) { // from a callback being told
        dropped_.push_back(handle);
        return;
    }
    auto held = hold();
    subscribers_.erase(handle);
}

void Stream::tell(const Callback &callback, const Event &event) {
    try {
        callback(event);
    } catch (const std::exception &e) {
        log().warn("a subscriber threw: {}", e.what());
    }
}

} // namespace turtlefinder::events
