// SPDX-License-Identifier: Apache-2.0
// The node service's request handling: the bytes a client sends, read as the
// service reads them (its parser with its limits, fed in pieces of the
// sizes the first byte picks), then routed by the service's routing. Every
// input must end in a route for GET/HEAD or in an error reply, never in a
// crash, an answer larger than its limit allows, or invalid JSON.
#include "fuzz_support.hpp"

#include <string>
#include <vector>

#include <boost/json.hpp>

#include "routes.hpp"

namespace serve = turtlefinder::serve;
namespace http = boost::beast::http;

namespace {

constexpr std::int64_t max_header_bytes = 1024;

const std::vector<serve::Route> &routes() {
    static const std::vector<serve::Route> table = {
        {"/healthz", serve::Route::Kind::reply, {}},       {"/readyz", serve::Route::Kind::reply, {}},
        {"/v1/containers", serve::Route::Kind::reply, {}}, {"/v1/engines", serve::Route::Kind::reply, {}},
        {"/v1/plugins", serve::Route::Kind::reply, {}},    {"/v1/events", serve::Route::Kind::events, {}},
    };
    return table;
}

void check_reply(const serve::Reply &reply) {
    TF_FUZZ_ASSERT(reply.status >= 400 && reply.status < 600);
    boost::system::error_code ec;
    auto doc = boost::json::parse(reply.body, ec);
    TF_FUZZ_ASSERT(!ec && doc.is_object());
    TF_FUZZ_ASSERT(doc.as_object().at("status").as_int64() == reply.status);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t piece = 1 + data[0] % 64; // how the bytes trickle in
    std::string_view input(reinterpret_cast<const char *>(data) + 1, size - 1);

    http::request_parser<http::string_body> parser;
    serve::limit_parser(parser, max_header_bytes);
    boost::system::error_code ec;
    std::string buffer; // what was read and not consumed yet, as a flat_buffer holds it
    std::size_t fed = 0;
    while (!parser.is_header_done() && !ec) {
        if (fed < input.size()) {
            std::size_t n = std::min(piece, input.size() - fed);
            buffer.append(input.substr(fed, n));
            fed += n;
        } else {
            // The client closed before a whole head; with nothing read yet,
            // Beast's read says end_of_stream (put_eof asserts it got some).
            if (parser.got_some())
                parser.put_eof(ec);
            else
                ec = http::error::end_of_stream;
            if (!ec) ec = http::error::partial_message;
            break;
        }
        std::size_t used = parser.put(boost::asio::buffer(buffer), ec);
        if (ec == http::error::need_more) ec = {};
        buffer.erase(0, used);
        // Beast (1.74) bounds the request line and the header fields by the
        // limit each (it does not count the line against the fields' limit).
        TF_FUZZ_ASSERT(fed - buffer.size() <= 2 * static_cast<std::size_t>(max_header_bytes) + 1 || ec);
    }
    if (ec) {
        if (auto reply = serve::read_error_reply(ec)) check_reply(*reply);
        return 0;
    }
    const auto &req = parser.get();
    auto routed = serve::route(routes(), req.method(), req.target());
    if (routed.error) {
        check_reply(*routed.error);
    } else {
        TF_FUZZ_ASSERT(routed.route != nullptr);
        TF_FUZZ_ASSERT(req.method() == http::verb::get || req.method() == http::verb::head);
        auto path = serve::target_path(req.target());
        TF_FUZZ_ASSERT(path && *path == routed.route->path);
    }
    return 0;
}
