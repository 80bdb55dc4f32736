// SPDX-License-Identifier: Apache-2.0
// The service's event stream: one Finder subscription numbers every change
// and keeps the recent ones, so that any number of SSE clients read the same
// events with the same ids, and one that reconnects with the id it saw last
// resumes where it left off while that id is still buffered.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <turtlefinder/finder.hpp>

namespace turtlefinder::serve {

struct StreamEvent {
    std::string id; // "N", or "N.k" for all but the last event of a snapshot
    std::string data; // the event as `--watch --json` prints it (one line, no newline)
};

class EventHub {
public:
    // `changed` is called (under the Finder's delivery) for every change.
    EventHub(Finder &finder, std::size_t buffer, std::size_t max_subscribers, std::function<void()> changed);
    ~EventHub(); // unsubscribes
    EventHub(const EventHub &) = delete;
    EventHub &operator=(const EventHub &) = delete;

    struct Opened {
        bool accepted = false; // false: max_subscribers reached
        int handle = 0; // for pull() and close()
        bool resumed = false; // Last-Event-ID still buffered: no snapshot
        std::vector<StreamEvent> initial; // the state as initial events, unless resumed
    };
    // A new subscriber. With `last_event_id` ("N") of an event still
    // buffered it continues after that event; otherwise it starts with the
    // current state (Finder::Replay::state), then continues after it.
    // `wake` is called (from any thread, briefly) when events are due.
    Opened open(const std::optional<std::string> &last_event_id, std::function<void()> wake);
    // The events due to the subscriber, at most `max`; nullopt when it fell
    // behind further than `max` or than the buffer holds (drop it).
    std::optional<std::vector<StreamEvent>> pull(int handle, std::size_t max);
    void close(int handle);
    std::size_t subscribers() const;
    std::uint64_t last_id() const;

private:
    void on_event(const Event &event);

    Finder &finder_;
    const std::size_t buffer_;
    const std::size_t max_subscribers_;
    std::function<void()> changed_;
    int finder_handle_ = 0;

    struct Subscriber {
        std::uint64_t after; // the last event id it has
        std::function<void()> wake;
    };
    mutable std::mutex mu_;
    std::uint64_t last_id_; // of the newest event
    std::deque<std::pair<std::uint64_t, std::string>> ring_; // ids last_id_-size+1 .. last_id_
    std::map<int, Subscriber> subscribers_;
    int next_handle_ = 1;
};

// The event as `turtlefinder --watch --json` prints it, without the newline.
std::string event_json(const Event &event);

} // namespace turtlefinder::serve
