// SPDX-License-Identifier: Apache-2.0
// A small Docker Engine API client: HTTP/1.1 over a unix stream socket.
//
// - Every call is bounded by Options::timeout (connect + write + read of the
//   whole answer). The event stream is bounded until its headers are in,
//   then runs until it fails, the callback stops it, or cancel().
// - Idle keep-alive connections are reused; a reused connection the engine
//   closed meanwhile is retried once on a fresh one.
// - The API version is negotiated, never pinned, in one round trip: GET
//   /_ping (unversioned) gives the engine's API-Version; min(that,
//   max_api_version) is used. Never /version: podman runs helper programs
//   to answer it. Versioned calls are prefixed with "/v1.NN" once negotiated.
// - Answers are capped (Options::max_body, max_event): an engine that sends
//   endless or oversized data gives Error(-EPROTO), never a hang.
// - Thread safety: every member may be called from any thread concurrently;
//   cancel() makes each running and future call throw Error(-ECANCELED)
//   promptly. Destroy the client only after its calls have returned.
// Errors are thrown as Error (decode.hpp) with a negative errno code.
// Convenience code, not the plugin ABI: same-toolchain C++ with no ABI
// promise; a plugin that links it is rebuilt with each turtlefinder release.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

#include <turtlefinder/clients/docker/decode.hpp>

namespace turtlefinder::clients::docker {

// The highest API version this client speaks.
inline constexpr ApiVersion max_api_version{1, 52};

struct Options {
    std::string socket_path; // filesystem path of the unix socket (may be /proc/PID/root/...)
    std::chrono::milliseconds timeout{2000};
    std::size_t max_body = 64u << 20; // bytes of one answer body
    std::size_t max_event = 1u << 20; // bytes of one event object
    std::size_t max_idle_connections = 2;
};

struct Response {
    unsigned status = 0;
    std::string body;
    std::string content_type;
};

// What GET /_ping told us.
struct Ping {
    std::optional<ApiVersion> api_version; // "API-Version" header
    std::string libpod_api_version; // "Libpod-Api-Version" header: podman when set
    std::string server; // "Server" header: "Docker/20.10.24+dfsg1 (linux)", "Libpod/4.3.1 (linux)"
    bool is_podman() const { return !libpod_api_version.empty(); }
};

// The version in a Server header ("Docker/20.10.24+dfsg1 (linux)" → "20.10.24+dfsg1"); "" if none.
std::string product_version(std::string_view server);

class Client {
public:
    explicit Client(Options options);
    ~Client();
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    const Options &options() const noexcept { return options_; }

    // GET /_ping; throws -EPROTO unless it answers 200 with an API-Version header.
    Ping ping();
    // ping(), then fixes the API version used by versioned calls. The result
    // has api_version (= min_api_version: /_ping tells no minimum) and the
    // product version from the Server header ("Docker/20.10.24 (linux)").
    VersionInfo negotiate();
    // The negotiated version; nullopt before negotiate() succeeded.
    std::optional<ApiVersion> api_version() const;

    // One GET. `target` is path + query ("/containers/json?all=1"); when
    // `versioned`, it is prefixed with the negotiated "/vX.Y" (negotiating
    // first if needed). Any HTTP status is returned, not thrown.
    Response get(std::string_view target, bool versioned = true);
    // get() that expects 200 and a JSON body; else throws -EPROTO.
    std::string get_json(std::string_view target, bool versioned = true);

    // Convenience decoders over get_json().
    Info info();
    std::vector<ContainerSummary> containers(std::string_view filters_json = {});
    // nullopt on 404 (no such container).
    std::optional<ContainerDetails> inspect(std::string_view id);

    // GET /events (versioned) with `filters_json` (a JSON object, may be empty).
    // Calls on_subscribed() once the 200 headers are in, then on_event() per
    // event object, in order. Returns normally only when a callback returned
    // false; the stream ending or failing throws (-EPIPE when the engine
    // closed it, -EPROTO for bad data), cancel() throws -ECANCELED.
    void events(std::string_view filters_json, const std::function<bool()> &on_subscribed,
                const std::function<bool(const Event &)> &on_event);

    // Makes every running and future call throw Error(-ECANCELED). Irreversible.
    void cancel();
    bool cancelled() const noexcept;

private:
    struct Impl;
    Options options_;
    std::unique_ptr<Impl> impl_;
};

// Percent-encodes `text` for use in a query string.
std::string url_encode(std::string_view text);

} // namespace turtlefinder::clients::docker
