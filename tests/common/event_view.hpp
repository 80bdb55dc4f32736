// SPDX-License-Identifier: Apache-2.0
// What a JSON document (`turtlefinder --json`, /v1/containers) or a stream of
// events (`--watch --json` lines, /v1/events) says about a test's own
// engines, in one comparable form: replaying a stream must give what a
// document of the same moment says.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>

#include <boost/json.hpp>

namespace tftest {

struct EventView {
    std::map<std::string, std::string> engines; // key → "prefix|parent key"
    std::map<std::pair<std::string, std::string>, std::string> containers; // (engine key, id) → "pid|paused|prefix"
    bool operator==(const EventView &) const = default;
};

// Which engines the test looks at (an engine object of a document or event).
using EngineFilter = std::function<bool(const boost::json::object &engine)>;

// One line per engine and container, for failure messages.
std::string describe(const EventView &view);
// A document with "engines" and, optionally, "containers".
EventView document_view(const boost::json::value &doc, const EngineFilter &mine);
// Applies one event to `view`.
void apply_event(EventView &view, const boost::json::value &event, const EngineFilter &mine);
// Applies every JSON line of `lines`, skipping what is not a JSON object.
EventView replay_lines(const std::string &lines, const EngineFilter &mine);

} // namespace tftest
