// SPDX-License-Identifier: Apache-2.0
// Rendering discoveries for people (tree) and programs (JSON).
#pragma once

#include <chrono>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <turtlefinder/finder.hpp>
#include <turtlefinder/model.hpp>

namespace turtlefinder::cli {

inline constexpr const char *json_schema = "turtlefinder/v1";

struct Style {
    bool color = false;
    std::size_t width = 0; // 0: unlimited
};

// Replaces invalid UTF-8 with U+FFFD so any engine-supplied bytes make valid JSON/text.
std::string valid_utf8(std::string_view in);
// Replaces control characters for terminal output.
std::string printable(std::string_view in);

// A time as RFC 3339 in UTC with milliseconds ("2026-11-30T10:52:10.123Z").
std::string utc_time(std::chrono::system_clock::time_point t);
// One line on stderr for each engine that is not online (nothing for those that are).
void warn_not_online(std::ostream &err, const std::vector<std::shared_ptr<const Engine>> &engines);

// Names an engine in a stream, where there is no engine array to index:
// "PID:TYPE:API", also the `key` of each engine in JSON.
std::string engine_key(const Engine &e);

// One line on stderr for each process a detector claimed whose sockets gave no engine.
void warn_candidates(std::ostream &err, const std::vector<Candidate> &candidates);
// The candidates in JSON ({"pid", "process", "plugin", "sockets", "reason"}).
std::string candidates_json(const std::vector<Candidate> &candidates);

void print_tree(std::ostream &out, const std::vector<std::shared_ptr<const Engine>> &engines,
                const std::vector<Container> &containers, const Style &style);
void print_json(std::ostream &out, const std::vector<std::shared_ptr<const Engine>> &engines,
                const std::vector<Container> &containers, const std::vector<Candidate> &candidates = {});
void print_engines(std::ostream &out, const std::vector<std::shared_ptr<const Engine>> &engines, bool json,
                   const std::vector<Candidate> &candidates = {});
void print_event(std::ostream &out, const Event &event, bool json);
// Loaded and refused plugins: {"schema", "plugins": [{"file", "name", "version",
// "description", "kinds", "claims", "loaded", "builtin", "reason"}]}.
void print_plugins_json(std::ostream &out, const std::vector<PluginStatus> &plugins);

} // namespace turtlefinder::cli
