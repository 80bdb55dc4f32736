// SPDX-License-Identifier: Apache-2.0
// GET /metrics: what a Finder knows and what the service counts, in the
// Prometheus text exposition format (version 0.0.4).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <turtlefinder/finder.hpp>
#include <turtlefinder/model.hpp>

namespace turtlefinder::serve {

inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

// What the HTTP server counts about itself; the server feeds it, /metrics
// reads it. Thread-safe.
class ServiceCounters {
public:
    // `routes` are the paths requests are counted under; any other path is
    // counted as "other", so that clients cannot grow the series without bound.
    explicit ServiceCounters(std::set<std::string> routes);

    // One answered request: its path and HTTP status code.
    void request(std::string_view path, unsigned code);
    void subscriber_added();
    void subscriber_removed();

    // (path, code) → requests.
    std::map<std::pair<std::string, unsigned>, std::uint64_t> requests() const;
    std::uint64_t subscribers() const;

private:
    const std::set<std::string> routes_;
    mutable std::mutex mu_;
    std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_; // under mu_
    std::uint64_t subscribers_ = 0; // under mu_
};

// What one rendering shows: the Finder's view as of its last discovery.
struct MetricsInput {
    std::vector<std::shared_ptr<const Engine>> engines;
    std::vector<Container> containers;
    std::vector<PluginStatus> plugins;
    std::vector<Candidate> candidates;
    Stats stats;
};

// The Finder's engines, plugins, candidates and counters, with `containers`
// (what its last containers() returned: rendering starts no discovery).
MetricsInput metrics_input(Finder &finder, std::vector<Container> containers);

// The exposition: every family with its HELP and TYPE lines.
std::string render_metrics(const MetricsInput &input, const ServiceCounters *service);

// Escapes a label value (backslash, double quote, line feed) after making it
// valid UTF-8.
std::string escape_label_value(std::string_view value);

} // namespace turtlefinder::serve
