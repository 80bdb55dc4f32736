// SPDX-License-Identifier: Apache-2.0
#include <turtlefinder/clients/docker/decode.hpp>

#include <boost/json.hpp>

#include <cerrno>
#include <charconv>
#include <string_view>

namespace json = boost::json;

namespace turtlefinder::clients::docker {

Error::Error(int code, const std::string &message) : std::runtime_error(message), code_(code < 0 ? code : -code) {}

std::string ApiVersion::str() const { return std::to_string(major) + "." + std::to_string(minor); }

namespace {

[[noreturn]] void bad(const std::string &what) { throw Error(-EPROTO, "not a Docker API answer: " + what); }

json::value parse(std::string_view text, const char *what) {
    json::error_code ec;
    json::parse_options opt;
    opt.max_depth = 64;
    json::value v = json::parse(json::string_view(text.data(), text.size()), ec, {}, opt);
    if (ec) bad(std::string(what) + ": invalid JSON (" + ec.message() + ")");
    return v;
}

const json::object &as_object(const json::value &v, const char *what) {
    if (!v.is_object()) bad(std::string(what) + ": expected a JSON object");
    return v.get_object();
}

// Optional string member: absent or null gives "", another type is an error.
std::string str(const json::object &o, std::string_view key, const char *what) {
    auto it = o.find(json::string_view(key.data(), key.size()));
    if (it == o.end() || it->value().is_null()) return {};
    if (!it->value().is_string()) bad(std::string(what) + ": \"" + std::string(key) + "\" is not a string");
    const auto &s = it->value().get_string();
    return {s.data(), s.size()};
}

const json::object *obj(const json::object &o, std::string_view key, const char *what) {
    auto it = o.find(json::string_view(key.data(), key.size()));
    if (it == o.end() || it->value().is_null()) return nullptr;
    if (!it->value().is_object()) bad(std::string(what) + ": \"" + std::string(key) + "\" is not an object");
    return &it->value().get_object();
}

bool boolean(const json::object &o, std::string_view key, const char *what) {
    auto it = o.find(json::string_view(key.data(), key.size()));
    if (it == o.end() || it->value().is_null()) return false;
    if (!it->value().is_bool()) bad(std::string(what) + ": \"" + std::string(key) + "\" is not a boolean");
    return it->value().get_bool();
}

int integer(const json::object &o, std::string_view key, const char *what) {
    auto it = o.find(json::string_view(key.data(), key.size()));
    if (it == o.end() || it->value().is_null()) return 0;
    const json::value &v = it->value();
    std::int64_t n = 0;
    if (v.is_int64())
        n = v.get_int64();
    else if (v.is_uint64() && v.get_uint64() <= 0x7fffffffu)
        n = static_cast<std::int64_t>(v.get_uint64());
    else
        bad(std::string(what) + ": \"" + std::string(key) + "\" is not an integer");
    if (n < 0 || n > 0x7fffffff) bad(std::string(what) + ": \"" + std::string(key) + "\" out of range");
    return static_cast<int>(n);
}

Labels labels(const json::object *o, const char *what) {
    Labels out;
    if (o == nullptr) return out;
    for (const auto &kv : *o) {
        if (!kv.value().is_string()) bad(std::string(what) + ": label value is not a string");
        const auto &v = kv.value().get_string();
        out.emplace(std::string(kv.key().data(), kv.key().size()), std::string(v.data(), v.size()));
    }
    return out;
}

std::string strip_slash(std::string name) {
    if (!name.empty() && name.front() == '/') name.erase(0, 1);
    return name;
}

} // namespace

std::optional<ApiVersion> parse_api_version(std::string_view text) {
    auto dot = text.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 >= text.size()) return std::nullopt;
    ApiVersion v;
    auto parse_part = [](std::string_view part, int &out) {
        if (part.size() > 6) return false;
        for (char c : part)
            if (c < '0' || c > '9') return false;
        auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), out);
        return ec == std::errc() && p == part.data() + part.size();
    };
    if (!parse_part(text.substr(0, dot), v.major) || !parse_part(text.substr(dot + 1), v.minor)) return std::nullopt;
    return v;
}

VersionInfo decode_version(std::string_view text) {
    const char *what = "/version";
    json::value v = parse(text, what);
    const json::object &o = as_object(v, what);
    VersionInfo out;
    out.version = str(o, "Version", what);
    auto api = parse_api_version(str(o, "ApiVersion", what));
    if (!api) bad("/version: missing or malformed \"ApiVersion\"");
    out.api_version = *api;
    std::string min = str(o, "MinAPIVersion", what);
    if (min.empty()) {
        out.min_api_version = *api;
    } else {
        auto m = parse_api_version(min);
        if (!m) bad("/version: malformed \"MinAPIVersion\"");
        out.min_api_version = *m;
    }
    out.os = str(o, "Os", what);
    out.arch = str(o, "Arch", what);
    return out;
}

Info decode_info(std::string_view text) {
    const char *what = "/info";
    json::value v = parse(text, what);
    const json::object &o = as_object(v, what);
    Info out;
    out.id = str(o, "ID", what);
    out.name = str(o, "Name", what);
    return out;
}

std::vector<ContainerSummary> decode_container_list(std::string_view text) {
    const char *what = "/containers/json";
    json::value v = parse(text, what);
    if (!v.is_array()) bad("/containers/json: expected a JSON array");
    std::vector<ContainerSummary> out;
    out.reserve(v.get_array().size());
    for (const json::value &e : v.get_array()) {
        const json::object &o = as_object(e, what);
        ContainerSummary c;
        c.id = str(o, "Id", what);
        if (c.id.empty()) bad("/containers/json: container without \"Id\"");
        if (auto it = o.find("Names"); it != o.end() && !it->value().is_null()) {
            if (!it->value().is_array()) bad("/containers/json: \"Names\" is not an array");
            const auto &names = it->value().get_array();
            if (!names.empty()) {
                if (!names[0].is_string()) bad("/containers/json: name is not a string");
                c.name = strip_slash(std::string(names[0].get_string().c_str(), names[0].get_string().size()));
            }
        }
        c.state = str(o, "State", what);
        c.labels = labels(obj(o, "Labels", what), what);
        out.push_back(std::move(c));
    }
    return out;
}

ContainerDetails decode_container_inspect(std::string_view text) {
    const char *what = "/containers/{id}/json";
    json::value v = parse(text, what);
    const json::object &o = as_object(v, what);
    ContainerDetails out;
    out.id = str(o, "Id", what);
    if (out.id.empty()) bad("/containers/{id}/json: missing \"Id\"");
    out.name = strip_slash(str(o, "Name", what));
    const json::object *state = obj(o, "State", what);
    if (state == nullptr) bad("/containers/{id}/json: missing \"State\"");
    out.pid = integer(*state, "Pid", what);
    out.running = boolean(*state, "Running", what);
    out.paused = boolean(*state, "Paused", what);
    out.status = str(*state, "Status", what);
    if (const json::object *config = obj(o, "Config", what)) out.labels = labels(obj(*config, "Labels", what), what);
    return out;
}

Event decode_event(const json::value &v) {
    const char *what = "/events";
    const json::object &o = as_object(v, what);
    Event out;
    out.type = str(o, "Type", what);
    out.action = str(o, "Action", what);
    if (out.action.empty()) out.action = str(o, "status", what); // pre-1.22 field
    if (const json::object *actor = obj(o, "Actor", what)) {
        out.id = str(*actor, "ID", what);
        out.attributes = labels(obj(*actor, "Attributes", what), what);
    }
    if (out.id.empty()) out.id = str(o, "id", what);
    return out;
}

Event decode_event(std::string_view text) { return decode_event(parse(text, "/events")); }

struct JsonStreamSplitter::Impl {
    std::size_t max;
    // Finds where each object ends and rejects bad JSON as soon as it comes.
    json::stream_parser parser;
    // The current object's bytes. The value delivered is parsed from these in
    // one go: Boost.JSON (1.81) may round a long decimal number differently
    // when it arrives split across writes, and how read()s cut the stream
    // must not change what is delivered.
    std::string object;
    bool failed = false;

    static json::parse_options options() {
        json::parse_options opt;
        opt.max_depth = 64;
        return opt;
    }
    explicit Impl(std::size_t m) : max(m), parser({}, options()) {}
};

JsonStreamSplitter::JsonStreamSplitter(std::size_t max_object_bytes)
    : impl_(std::make_unique<Impl>(max_object_bytes)) {}
JsonStreamSplitter::~JsonStreamSplitter() = default;

bool JsonStreamSplitter::idle() const noexcept { return impl_->object.empty() && !impl_->failed; }

bool JsonStreamSplitter::feed(std::string_view bytes, const std::function<bool(json::value &&)> &on_object) {
    Impl &s = *impl_;
    if (s.failed) throw Error(-EPROTO, "event stream: earlier data was invalid");
    auto fail = [&](const std::string &why) -> bool {
        s.failed = true;
        throw Error(-EPROTO, "event stream: " + why);
    };
    while (!bytes.empty()) {
        if (s.object.empty()) { // between objects: skip separators
            std::size_t i = 0;
            while (i < bytes.size() && (bytes[i] == ' ' || bytes[i] == '\n' || bytes[i] == '\r' || bytes[i] == '\t'))
                ++i;
            bytes.remove_prefix(i);
            if (bytes.empty()) break;
            if (bytes.front() != '{') return fail("expected a JSON object");
        }
        json::error_code ec;
        std::size_t n = s.parser.write_some(bytes.data(), bytes.size(), ec);
        if (ec) return fail("invalid JSON (" + ec.message() + ")");
        std::size_t counted = n;
        if (s.parser.done()) // write_some also consumed the whitespace after the object: not part of it
            while (counted > 0 && std::string_view(" \t\r\n").find(bytes[counted - 1]) != std::string_view::npos)
                --counted;
        if (s.object.size() + counted > s.max)
            return fail("event object larger than " + std::to_string(s.max) + " bytes");
        s.object.append(bytes.data(), counted);
        bytes.remove_prefix(n);
        if (s.parser.done()) {
            s.parser.reset();
            json::value v = json::parse(s.object, ec, {}, Impl::options());
            s.object.clear();
            if (ec) return fail("invalid JSON (" + ec.message() + ")");
            if (!on_object(std::move(v))) return false;
        }
    }
    return true;
}

} // namespace turtlefinder::clients::docker
