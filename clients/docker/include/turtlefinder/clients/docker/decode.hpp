// SPDX-License-Identifier: Apache-2.0
// Pure decoders for Docker Engine API bodies: JSON text in, plain structs out.
// No I/O, no global state, so they can be unit-tested and fuzzed on their own.
// Every decoder throws turtlefinder::clients::docker::Error with -EPROTO when
// the text is not what a Docker-compatible engine sends.
// Convenience code, not the plugin ABI: same-toolchain C++ with no ABI
// promise; a plugin that links it is rebuilt with each turtlefinder release.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

namespace turtlefinder::clients::docker {

// A failed call or decode. code() is a negative errno: -ETIMEDOUT, -ECONNREFUSED,
// -ENOENT (socket path gone), -EPROTO (not the Docker API), -ECANCELED, -EMSGSIZE
// is never used: oversized answers are -EPROTO too.
class Error : public std::runtime_error {
public:
    Error(int code, const std::string &message);
    int code() const noexcept { return code_; }

private:
    int code_;
};

// "1.41" as numbers; ordered so that min()/comparisons work.
struct ApiVersion {
    int major = 0;
    int minor = 0;
    friend auto operator<=>(const ApiVersion &, const ApiVersion &) = default;
    std::string str() const; // "1.41"
};

// Parses "MAJOR.MINOR" (both decimal, no sign, no extra text); nullopt otherwise.
std::optional<ApiVersion> parse_api_version(std::string_view text);

// GET /version
struct VersionInfo {
    std::string version; // "Version", engine product version ("20.10.24+dfsg1")
    ApiVersion api_version; // "ApiVersion", highest API the engine speaks
    ApiVersion min_api_version; // "MinAPIVersion"; equals api_version when absent
    std::string os;
    std::string arch;
};
VersionInfo decode_version(std::string_view json);

// GET /info (only what identifies the engine)
struct Info {
    std::string id; // "ID"
    std::string name; // "Name" (host name)
};
Info decode_info(std::string_view json);

using Labels = std::map<std::string, std::string>;

// One element of GET /containers/json
struct ContainerSummary {
    std::string id;
    std::string name; // first of "Names", without the leading '/'
    std::string state; // "running", "paused", "exited", ...
    Labels labels;
};
std::vector<ContainerSummary> decode_container_list(std::string_view json);

// GET /containers/{id}/json
struct ContainerDetails {
    std::string id;
    std::string name; // without the leading '/'
    int pid = 0; // State.Pid; 0 when not running
    bool running = false;
    bool paused = false;
    std::string status; // State.Status
    Labels labels; // Config.Labels
};
ContainerDetails decode_container_inspect(std::string_view json);

// One object of the GET /events stream.
struct Event {
    std::string type; // "Type": "container", "network", ...
    std::string action; // "Action": "start", "die", "exec_start: sh", ...
    std::string id; // Actor.ID (or the legacy "id")
    Labels attributes; // Actor.Attributes
};
Event decode_event(const boost::json::value &object);
Event decode_event(std::string_view json);

// Splits a byte stream that carries JSON objects back to back (optionally
// separated by whitespace/newlines) into whole objects, however the bytes
// were cut into chunks: an object may span many feeds and one feed may hold
// several objects. An object larger than `max_object_bytes`, or bytes that
// are not JSON objects, make feed() throw Error(-EPROTO); the splitter is
// then unusable.
class JsonStreamSplitter {
public:
    explicit JsonStreamSplitter(std::size_t max_object_bytes = 1u << 20);
    ~JsonStreamSplitter();
    JsonStreamSplitter(const JsonStreamSplitter &) = delete;
    JsonStreamSplitter &operator=(const JsonStreamSplitter &) = delete;

    // Calls `on_object` for each object completed by `bytes`. If it returns
    // false, feeding stops and feed() returns false (the rest is dropped).
    bool feed(std::string_view bytes, const std::function<bool(boost::json::value &&)> &on_object);
    // True when no partial object is pending (a clean point to end the stream).
    bool idle() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace turtlefinder::clients::docker
