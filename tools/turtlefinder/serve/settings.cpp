// SPDX-License-Identifier: Apache-2.0
#include "settings.hpp"

#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace turtlefinder::serve {

namespace json = boost::json;

namespace {

using Millis = std::chrono::milliseconds Settings::*;
using Count = std::int64_t Settings::*;

struct Field {
    Limit limit;
    Millis millis = nullptr;
    Count count = nullptr;
};

const std::vector<Field> &fields() {
    static const std::vector<Field> all = {
        {{"discovery_period_ms", "--discovery-period", "ms", 100, 3600000}, &Settings::discovery_period, nullptr},
        {{"threads", "--threads", "", 1, 64}, nullptr, &Settings::threads},
        {{"max_connections", "--max-connections", "", 1, 100000}, nullptr, &Settings::max_connections},
        {{"max_header_bytes", "--max-header-bytes", "", 512, 1048576}, nullptr, &Settings::max_header_bytes},
        {{"header_timeout_ms", "--header-timeout", "ms", 100, 600000}, &Settings::header_timeout, nullptr},
        {{"idle_timeout_ms", "--idle-timeout", "ms", 100, 3600000}, &Settings::idle_timeout, nullptr},
        {{"max_sse_subscribers", "--max-sse-subscribers", "", 0, 100000}, nullptr, &Settings::max_sse_subscribers},
        {{"sse_queue", "--sse-queue", "", 1, 1000000}, nullptr, &Settings::sse_queue},
        {{"event_buffer", "--event-buffer", "", 1, 1000000}, nullptr, &Settings::event_buffer},
        {{"keepalive_ms", "--keepalive", "ms", 100, 3600000}, &Settings::keepalive, nullptr},
    };
    return all;
}

const Field &field_of(const Limit &limit) {
    for (const auto &f : fields())
        if (f.limit.key == limit.key) return f;
    throw std::logic_error("unknown serve limit");
}

std::string range_text(const Limit &l) {
    return fmt::format("an integer from {} to {}{}", l.min, l.max,
                       std::string_view(l.unit) == "ms" ? " (milliseconds)" : "");
}

} // namespace

std::int64_t Limit::get(const Settings &s) const {
    const auto &f = field_of(*this);
    return f.millis ? (s.*f.millis).count() : s.*f.count;
}

void Limit::set(Settings &s, std::int64_t value) const {
    const auto &f = field_of(*this);
    if (f.millis)
        s.*f.millis = std::chrono::milliseconds(value);
    else
        s.*f.count = value;
}

const std::vector<Limit> &limits() {
    static const std::vector<Limit> all = [] {
        std::vector<Limit> out;
        for (const auto &f : fields()) out.push_back(f.limit);
        return out;
    }();
    return all;
}

void apply_config(const std::string &file, const std::string &serve_json, Settings &settings) {
    auto fail = [&](const std::string &key, const std::string &what) {
        throw std::runtime_error(fmt::format("{}: \"serve.{}\": {}", file, key, what));
    };
    json::value root = json::parse(serve_json); // checked by load_config already
    Settings s = settings; // applied only when the whole object is good
    for (const auto &[k, v] : root.as_object()) {
        std::string key(k);
        if (key == "socket") {
            if (!v.is_string()) fail(key, "expected a string (an absolute path, or \"\" for none)");
            s.socket = std::string(v.get_string());
            if (!s.socket.empty() && s.socket[0] != '/') fail(key, "expected an absolute path, or \"\" for none");
            continue;
        }
        if (key == "socket_group") {
            if (!v.is_string()) fail(key, "expected a string (a group name)");
            s.socket_group = std::string(v.get_string());
            continue;
        }
        if (key == "listen") {
            if (!v.is_array()) fail(key, "expected an array of \"ADDR:PORT\" strings");
            s.listen.clear();
            for (const auto &item : v.get_array()) {
                if (!item.is_string()) fail(key, "expected an array of \"ADDR:PORT\" strings");
                s.listen.emplace_back(item.get_string());
            }
            continue;
        }
        auto limit = std::find_if(limits().begin(), limits().end(), [&](const Limit &l) { return key == l.key; });
        if (limit == limits().end()) {
            std::string known = "socket, socket_group, listen";
            for (const auto &l : limits()) known += std::string(", ") + l.key;
            fail(key, "unknown key (known: " + known + ")");
        }
        std::int64_t n = 0;
        if (v.is_int64())
            n = v.get_int64();
        else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(limit->max))
            n = static_cast<std::int64_t>(v.get_uint64());
        else
            fail(key, "expected " + range_text(*limit));
        if (n < limit->min || n > limit->max) fail(key, fmt::format("expected {}, got {}", range_text(*limit), n));
        limit->set(s, n);
    }
    settings = std::move(s);
}

std::optional<std::string> parse_limit(const Limit &limit, const std::string &text, Settings &settings) {
    char *end = nullptr;
    errno = 0;
    long long n = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || n < limit.min || n > limit.max)
        return fmt::format("{} takes {}", limit.flag, range_text(limit));
    limit.set(settings, n);
    return std::nullopt;
}

} // namespace turtlefinder::serve
