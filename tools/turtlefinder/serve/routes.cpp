// SPDX-License-Identifier: Apache-2.0
#include "routes.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/json.hpp>

#include "output.hpp"

namespace turtlefinder::serve {

Reply error_reply(unsigned status, std::string_view message) {
    boost::json::object o;
    o["error"] = cli::valid_utf8(message); // a path a client sent may be any bytes
    o["status"] = status;
    Reply r;
    r.status = status;
    r.body = boost::json::serialize(o) + "\n";
    return r;
}

void limit_parser(http::request_parser<http::string_body> &parser, std::int64_t max_header_bytes) {
    parser.header_limit(static_cast<std::uint32_t>(max_header_bytes));
    parser.body_limit(0);
}

std::optional<Reply> read_error_reply(const boost::system::error_code &ec) {
    namespace asio = boost::asio;
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == boost::beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset || ec == asio::error::eof ||
        ec == asio::error::bad_descriptor)
        return std::nullopt;
    if (ec == http::error::header_limit) return error_reply(431, "request header too large");
    if (ec == http::error::body_limit) return error_reply(413, "a request has no body here");
    return error_reply(400, "bad request: " + ec.message());
}

std::optional<std::string_view> target_path(std::string_view target) {
    if (target.empty() || target[0] != '/') return std::nullopt;
    auto end = target.find_first_of("?#");
    return target.substr(0, end);
}

Routed route(const std::vector<Route> &routes, http::verb method, std::string_view target) {
    Routed r;
    auto path = target_path(target);
    if (!path) {
        r.error = error_reply(400, "the request target is not a path");
        return r;
    }
    const Route *found = nullptr;
    for (const auto &candidate : routes)
        if (candidate.path == *path) found = &candidate;
    if (found == nullptr) {
        r.error = error_reply(404, "no such resource: " + std::string(*path));
        return r;
    }
    if (method != http::verb::get && method != http::verb::head) {
        r.error = error_reply(405, "read-only: only GET and HEAD are served");
        r.error->headers.emplace_back("Allow", "GET, HEAD");
        return r;
    }
    r.route = found;
    return r;
}

} // namespace turtlefinder::serve
