// SPDX-License-Identifier: Apache-2.0
// Settings of the node service (`turtlefinder serve`): where it listens and
// the limits that keep hostile or slow clients from exhausting it. Each one is
// a command-line flag and a key of the configuration file's "serve" object.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace turtlefinder::serve {

inline constexpr const char *default_socket = "/run/turtlefinder/turtlefinder.sock";

struct Settings {
    std::string socket = default_socket; // unix socket; "" when only TCP or inherited sockets are wanted
    std::string socket_group; // group owning the socket (mode 0660); "": the service's own
    std::vector<std::string> listen; // TCP "ADDR:PORT", "[ADDR]:PORT" or "PORT" (loopback)
    std::chrono::milliseconds discovery_period{5000};
    std::int64_t threads = 2; // serving threads (discovery has its own)
    std::int64_t max_connections = 512;
    std::int64_t max_header_bytes = 8192;
    std::chrono::milliseconds header_timeout{10000}; // the whole request head must arrive within
    std::chrono::milliseconds idle_timeout{30000}; // keep-alive wait for the next request; write stall
    std::int64_t max_sse_subscribers = 256;
    std::int64_t sse_queue = 1024; // events a subscriber may lag behind before it is dropped
    std::int64_t event_buffer = 4096; // recent events kept for Last-Event-ID resumption
    std::chrono::milliseconds keepalive{15000}; // SSE comment interval
};

// One numeric setting: its config key, its flag, its range.
struct Limit {
    const char *key; // in the "serve" object
    const char *flag; // "--max-connections"
    const char *unit; // "ms" or "" (a count)
    std::int64_t min, max;
    std::int64_t get(const Settings &s) const;
    void set(Settings &s, std::int64_t value) const;
};

const std::vector<Limit> &limits();

// Applies a configuration file's "serve" object (JSON text, as
// FileSettings::serve) to `settings`. Throws std::runtime_error naming the
// file and the key ("FILE: "serve.max_connections": expected ...") on an
// unknown key, a wrong type or a value out of range; changes nothing then.
void apply_config(const std::string &file, const std::string &serve_json, Settings &settings);

// Parses a flag's value for `limit`; an error message on a bad one.
std::optional<std::string> parse_limit(const Limit &limit, const std::string &text, Settings &settings);

} // namespace turtlefinder::serve
