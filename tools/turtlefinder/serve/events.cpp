// SPDX-License-Identifier: Apache-2.0
#include "events.hpp"

#include <chrono>
#include <charconv>
#include <sstream>

#include "output.hpp"

namespace turtlefinder::serve {

std::string event_json(const Event &event) {
    std::ostringstream out;
    cli::print_event(out, event, true);
    std::string text = out.str();
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

namespace {

// Ids go on from a service's restart rather than starting at 1 again, so a
// client that saw ids of an earlier run is not resumed with a later run's
// events of the same number: they begin at the start time in microseconds.
std::uint64_t first_id() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

// An event id as we write them (a number); false for anything else. Not an
// optional: GCC's sanitizer builds warn of it as maybe uninitialized.
bool parse_id(const std::string &text, std::uint64_t &n) {
    n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

} // namespace

EventHub::EventHub(Finder &finder, std::size_t buffer, std::size_t max_subscribers, std::function<void()> changed)
    : finder_(finder),
      buffer_(buffer),
      max_subscribers_(max_subscribers),
      changed_(std::move(changed)),
      last_id_(first_id()) {
    finder_handle_ = finder_.subscribe([this](const Event &e) { on_event(e); });
}

EventHub::~EventHub() { finder_.unsubscribe(finder_handle_); }

void EventHub::on_event(const Event &event) {
    std::string data = event_json(event);
    std::vector<std::function<void()>> wake;
    {
        std::lock_guard lock(mu_);
        ring_.emplace_back(++last_id_, std::move(data));
        while (ring_.size() > buffer_) ring_.pop_front();
        for (auto &[handle, s] : subscribers_) wake.push_back(s.wake);
    }
    if (changed_) changed_();
    for (auto &w : wake) w();
}

EventHub::Opened EventHub::open(const std::optional<std::string> &last_event_id, std::function<void()> wake) {
    Opened opened;
    {
        std::lock_guard lock(mu_);
        if (subscribers_.size() >= max_subscribers_) return opened;
        opened.accepted = true;
        opened.handle = next_handle_++;
        std::uint64_t id = 0;
        const bool given = last_event_id && parse_id(*last_event_id, id);
        // Buffered: every event after it is still in the ring.
        std::uint64_t oldest = ring_.empty() ? last_id_ + 1 : ring_.front().first;
        if (given && id <= last_id_ && id + 1 >= oldest) {
            opened.resumed = true;
            subscribers_[opened.handle] = {id, std::move(wake)};
            return opened;
        }
        // Registered now, so the events told from here on are kept for it;
        // the snapshot below sets where it starts.
        subscribers_[opened.handle] = {last_id_, std::move(wake)};
    }
    // The state comes within subscribe(), under the Finder's delivery, when
    // no event of our own subscription can run: the last id read there is
    // the one the state follows. A state without engines calls nothing: it
    // follows the id read before (an event between the two is then told
    // again; applying it again changes nothing).
    std::uint64_t before = last_id();
    std::optional<std::uint64_t> at;
    std::vector<std::string> state;
    int h = finder_.subscribe(
        [&](const Event &e) {
            if (!e.initial) return;
            if (!at) at = last_id();
            state.push_back(event_json(e));
        },
        Finder::Replay::state);
    finder_.unsubscribe(h);
    std::uint64_t follows = at.value_or(before);
    for (std::size_t k = 0; k < state.size(); ++k) {
        std::string id = std::to_string(follows);
        // Only a client that got the whole state may resume after it.
        if (k + 1 < state.size()) id += "." + std::to_string(k + 1);
        opened.initial.push_back({std::move(id), std::move(state[k])});
    }
    std::lock_guard lock(mu_);
    subscribers_[opened.handle].after = follows;
    return opened;
}

std::optional<std::vector<StreamEvent>> EventHub::pull(int handle, std::size_t max) {
    std::lock_guard lock(mu_);
    auto s = subscribers_.find(handle);
    if (s == subscribers_.end()) return std::nullopt;
    std::uint64_t after = s->second.after;
    std::vector<StreamEvent> out;
    if (after >= last_id_) return out;
    if (last_id_ - after > max) return std::nullopt;
    std::uint64_t oldest = ring_.empty() ? last_id_ + 1 : ring_.front().first;
    if (after + 1 < oldest) return std::nullopt;
    for (auto it = ring_.begin() + static_cast<std::ptrdiff_t>(after + 1 - oldest); it != ring_.end(); ++it)
        out.push_back({std::to_string(it->first), it->second});
    s->second.after = last_id_;
    return out;
}

void EventHub::close(int handle) {
    std::lock_guard lock(mu_);
    subscribers_.erase(handle);
}

std::size_t EventHub::subscribers() const {
    std::lock_guard lock(mu_);
    return subscribers_.size();
}

std::uint64_t EventHub::last_id() const {
    std::lock_guard lock(mu_);
    return last_id_;
}

} // namespace turtlefinder::serve
