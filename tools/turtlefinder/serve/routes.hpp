// SPDX-License-Identifier: Apache-2.0
// What answers a request: the route table's types and the routing of a
// request head to a route or an error reply. Free of sockets, so tests and
// the fuzz target run it on bytes.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http.hpp>

namespace turtlefinder::serve {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;

struct Reply {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers; // more headers
};

// A JSON error: {"error": MESSAGE, "status": STATUS}.
Reply error_reply(unsigned status, std::string_view message);

// Handlers call `done` exactly once, from any thread.
using Done = std::function<void(Reply)>;

struct Route {
    std::string path; // exact, without a query
    enum class Kind {
        reply, // handler answers with one Reply
        events, // a Server-Sent Events stream, run by the connection
    };
    Kind kind = Kind::reply;
    std::function<void(const Request &, Done)> handler; // for Kind::reply
};

// The route for a request head, or the error reply: 400 for a target that is
// not a path, 404 for an unknown path, 405 for a method other than GET/HEAD.
struct Routed {
    const Route *route = nullptr;
    std::optional<Reply> error;
};
Routed route(const std::vector<Route> &routes, http::verb method, std::string_view target);

// A parser for one request head, with the service's limits: the head at most
// `max_header_bytes`, no body (the service is read-only).
void limit_parser(http::request_parser<http::string_body> &parser, std::int64_t max_header_bytes);

// The answer to a request that could not be read: 431 (head too large), 413
// (a body), 400 (not HTTP); nullopt when the connection just ends (closed by
// the client, timed out, cancelled), with nothing to answer.
std::optional<Reply> read_error_reply(const boost::system::error_code &ec);

// The path of a request target ("/v1/events?x" → "/v1/events"); nullopt
// when it is not an origin-form path.
std::optional<std::string_view> target_path(std::string_view target);

} // namespace turtlefinder::serve
