// SPDX-License-Identifier: Apache-2.0
#include <turtlefinder/clients/docker/client.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <mutex>
#include <set>
#include <vector>

// GCC 12 with sanitizers reports a false -Wmaybe-uninitialized inside
// Beast's parser (boost::optional content length); keep -Werror builds green.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::system::error_code;
using clock_type = std::chrono::steady_clock;

namespace turtlefinder::clients::docker {

namespace {

constexpr std::size_t header_limit = 64u << 10;

// One HTTP connection with its own io_context, driven by the calling thread:
// a call runs the context until its operation completes or its deadline
// passes, so no background thread exists and every wait is bounded.
struct Connection {
    asio::io_context ioc{1};
    asio::local::stream_protocol::socket socket{ioc};
    beast::flat_buffer buffer;
    bool reused = false; // served an exchange before: the engine may have closed it meanwhile
};

bool is_disconnect(const error_code &ec) {
    return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == http::error::end_of_stream;
}

int errno_of(const error_code &ec) {
    if (ec == asio::error::eof || ec == http::error::end_of_stream || ec == http::error::partial_message)
        return -EPROTO; // the engine hung up in the middle of (or instead of) an answer
    if (ec.category() == boost::system::system_category() || ec.category() == boost::system::generic_category())
        return ec.value() > 0 ? -ec.value() : -EIO;
    return -EPROTO; // parser errors: not HTTP as Docker speaks it
}

} // namespace

struct Client::Impl {
    const Options &opts;
    std::atomic<bool> cancelled{false};
    std::mutex mu; // guards idle, active
    std::vector<std::unique_ptr<Connection>> idle; // keep-alive connections
    std::set<Connection *> active; // in use by a call: cancel() reaches them
    mutable std::mutex version_mu;
    std::optional<ApiVersion> version;

    explicit Impl(const Options &o) : opts(o) {}

    void check_cancelled() const {
        if (cancelled.load()) throw Error(-ECANCELED, "call cancelled");
    }

    std::unique_ptr<Connection> acquire(bool pooled) {
        std::lock_guard lock(mu);
        check_cancelled();
        std::unique_ptr<Connection> c;
        if (pooled && !idle.empty()) {
            c = std::move(idle.back());
            idle.pop_back();
        } else {
            c = std::make_unique<Connection>();
        }
        active.insert(c.get());
        return c;
    }

    void release(std::unique_ptr<Connection> c, bool reusable) {
        std::unique_lock lock(mu);
        active.erase(c.get());
        if (reusable && !cancelled.load() && c->socket.is_open() && idle.size() < opts.max_idle_connections) {
            c->reused = true;
            idle.push_back(std::move(c));
            return;
        }
        lock.unlock();
        c.reset(); // closes outside the lock
    }

    void cancel() {
        cancelled.store(true);
        std::vector<std::unique_ptr<Connection>> drop;
        std::lock_guard lock(mu);
        // Closing from inside the connection's own context is race-free; the
        // blocked caller's run loop executes it and its operation then fails.
        for (Connection *c : active)
            asio::post(c->ioc, [c] {
                error_code ignored;
                c->socket.close(ignored);
            });
        drop.swap(idle);
    }

    // Runs one asynchronous operation on `c` until it completes. With a
    // deadline, the socket is closed when it passes (the operation then
    // completes with an error) and ETIMEDOUT is reported.
    template <typename Start>
    error_code run(Connection &c, std::optional<clock_type::time_point> deadline, Start &&start) {
        bool done = false;
        error_code result;
        start([&](error_code ec, auto &&...) {
            result = ec;
            done = true;
        });
        c.ioc.restart();
        bool timed_out = false;
        while (!done) {
            std::size_t n = (deadline && !timed_out) ? c.ioc.run_one_until(*deadline) : c.ioc.run_one();
            if (n == 0 && !done) {
                if (deadline && !timed_out && clock_type::now() >= *deadline) {
                    timed_out = true;
                    error_code ignored;
                    c.socket.close(ignored);
                }
                c.ioc.restart();
            }
        }
        check_cancelled();
        if (timed_out) throw Error(-ETIMEDOUT, "no answer within " + std::to_string(opts.timeout.count()) + " ms");
        return result;
    }

    void connect(Connection &c, clock_type::time_point deadline) {
        const std::string &path = opts.socket_path;
        if (path.empty()) throw Error(-EINVAL, "empty socket path");
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); // never leak into the host's children
        if (fd < 0) throw Error(-errno, "socket(): " + std::string(std::strerror(errno)));
        error_code ec;
        c.socket.assign(asio::local::stream_protocol(), fd, ec);
        if (ec) {
            ::close(fd);
            throw Error(errno_of(ec), "socket: " + ec.message());
        }
        // sun_path holds 107 bytes; longer paths (deep /proc/PID/root/...)
        // are reached through an O_PATH handle on their directory.
        std::string target = path;
        int dirfd = -1;
        if (path.size() >= sizeof(sockaddr_un::sun_path)) {
            auto slash = path.rfind('/');
            std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
            dirfd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (dirfd < 0) throw Error(-errno, "'" + path + "': " + std::strerror(errno));
            target = "/proc/self/fd/" + std::to_string(dirfd) + "/" + path.substr(slash + 1);
            if (target.size() >= sizeof(sockaddr_un::sun_path)) {
                ::close(dirfd);
                throw Error(-ENAMETOOLONG, "'" + path + "': socket name too long");
            }
        }
        asio::local::stream_protocol::endpoint endpoint(target);
        error_code result;
        try {
            result = run(c, deadline, [&](auto handler) { c.socket.async_connect(endpoint, handler); });
        } catch (...) {
            if (dirfd >= 0) ::close(dirfd);
            throw;
        }
        if (dirfd >= 0) ::close(dirfd);
        if (result) throw Error(errno_of(result), "connect '" + path + "': " + result.message());
    }

    static http::request<http::empty_body> make_request(std::string_view target) {
        http::request<http::empty_body> req{http::verb::get, beast::string_view(target.data(), target.size()), 11};
        req.set(http::field::host, "docker"); // required by HTTP/1.1; the engine ignores it
        req.set(http::field::user_agent, "turtlefinder");
        req.keep_alive(true);
        return req;
    }

    // One request/answer on a connection; throws on transport errors.
    // `stale` is set (and nothing thrown) when a reused connection turned
    // out closed before any answer byte: the caller retries once, fresh.
    Response exchange(Connection &c, std::string_view target, clock_type::time_point deadline, Ping *ping,
                      bool &reusable, bool &stale) {
        stale = false;
        reusable = false;
        if (!c.socket.is_open()) connect(c, deadline);
        auto req = make_request(target);
        error_code ec = run(c, deadline, [&](auto handler) { http::async_write(c.socket, req, handler); });
        if (ec) {
            if (c.reused && is_disconnect(ec)) {
                stale = true;
                return {};
            }
            throw Error(errno_of(ec), "sending " + std::string(target) + ": " + ec.message());
        }
        http::response_parser<http::string_body> parser;
        parser.header_limit(header_limit);
        parser.body_limit(opts.max_body);
        ec = run(c, deadline, [&](auto handler) { http::async_read(c.socket, c.buffer, parser, handler); });
        if (ec) {
            if (c.reused && !parser.got_some() && is_disconnect(ec)) {
                stale = true;
                return {};
            }
            if (ec == http::error::body_limit)
                throw Error(-EPROTO,
                            std::string(target) + ": answer larger than " + std::to_string(opts.max_body) + " bytes");
            throw Error(errno_of(ec), "reading " + std::string(target) + ": " + ec.message());
        }
        auto &msg = parser.get();
        Response out;
        out.status = msg.result_int();
        out.content_type = std::string(msg[http::field::content_type]);
        out.body = std::move(msg.body());
        if (ping != nullptr) {
            auto api = msg.find("API-Version");
            if (api != msg.end()) ping->api_version = parse_api_version(std::string_view(api->value()));
            ping->libpod_api_version = std::string(msg["Libpod-Api-Version"]);
            ping->server = std::string(msg[http::field::server]);
        }
        reusable = msg.keep_alive();
        return out;
    }

    Response request(std::string_view target, Ping *ping) {
        auto deadline = clock_type::now() + opts.timeout;
        for (int attempt = 0;; ++attempt) {
            auto c = acquire(attempt == 0);
            bool reusable = false, stale = false;
            Response r;
            try {
                r = exchange(*c, target, deadline, ping, reusable, stale);
            } catch (...) {
                release(std::move(c), false);
                throw;
            }
            release(std::move(c), reusable && !stale);
            if (!stale) return r;
            // A kept-alive connection the engine closed meanwhile: once more, fresh.
            if (attempt > 0) throw Error(-EPROTO, std::string(target) + ": connection closed without answer");
        }
    }
};

Client::Client(Options options) : options_(std::move(options)), impl_(std::make_unique<Impl>(options_)) {}
Client::~Client() = default;

void Client::cancel() { impl_->cancel(); }
bool Client::cancelled() const noexcept { return impl_->cancelled.load(); }

std::optional<ApiVersion> Client::api_version() const {
    std::lock_guard lock(impl_->version_mu);
    return impl_->version;
}

Ping Client::ping() {
    Ping p;
    Response r = impl_->request("/_ping", &p);
    if (r.status != 200) throw Error(-EPROTO, "/_ping answered HTTP " + std::to_string(r.status));
    if (!p.api_version) throw Error(-EPROTO, "/_ping answer has no valid API-Version header");
    return p;
}

// "Docker/20.10.24+dfsg1 (linux)", "Libpod/4.3.1 (linux)" → the version.
std::string product_version(std::string_view server) {
    auto slash = server.find('/');
    if (slash == std::string_view::npos) return {};
    auto rest = server.substr(slash + 1);
    return std::string(rest.substr(0, rest.find(' ')));
}

VersionInfo Client::negotiate() {
    // /_ping alone: /version costs more (podman runs helper programs for it)
    // and says nothing more the client needs. An engine whose minimum is
    // above max_api_version refuses the first versioned call with its reason.
    Ping p = ping();
    VersionInfo v;
    v.api_version = *p.api_version;
    v.min_api_version = v.api_version;
    v.version = product_version(p.server);
    ApiVersion use = std::min(v.api_version, max_api_version);
    std::lock_guard lock(impl_->version_mu);
    impl_->version = use;
    return v;
}

Response Client::get(std::string_view target, bool versioned) {
    if (target.empty() || target.front() != '/') throw Error(-EINVAL, "target must start with '/'");
    if (!versioned) return impl_->request(target, nullptr);
    auto v = api_version();
    if (!v) {
        negotiate();
        v = api_version();
    }
    return impl_->request("/v" + v->str() + std::string(target), nullptr);
}

std::string Client::get_json(std::string_view target, bool versioned) {
    Response r = get(target, versioned);
    if (r.status != 200) {
        std::string detail = r.body.substr(0, 200);
        throw Error(-EPROTO, std::string(target) + " answered HTTP " + std::to_string(r.status) +
                                 (detail.empty() ? "" : ": " + detail));
    }
    return std::move(r.body);
}

Info Client::info() { return decode_info(get_json("/info")); }

std::vector<ContainerSummary> Client::containers(std::string_view filters_json) {
    std::string target = "/containers/json";
    if (!filters_json.empty()) target += "?filters=" + url_encode(filters_json);
    return decode_container_list(get_json(target));
}

std::optional<ContainerDetails> Client::inspect(std::string_view id) {
    if (id.empty()) throw Error(-EINVAL, "inspect: empty id");
    Response r = get("/containers/" + url_encode(id) + "/json");
    if (r.status == 404) return std::nullopt;
    if (r.status != 200) throw Error(-EPROTO, "inspect answered HTTP " + std::to_string(r.status));
    return decode_container_inspect(r.body);
}

void Client::events(std::string_view filters_json, const std::function<bool()> &on_subscribed,
                    const std::function<bool(const Event &)> &on_event) {
    auto v = api_version();
    if (!v) {
        negotiate();
        v = api_version();
    }
    std::string target = "/v" + v->str() + "/events";
    if (!filters_json.empty()) target += "?filters=" + url_encode(filters_json);

    Impl &s = *impl_;
    auto deadline = clock_type::now() + options_.timeout;
    auto c = s.acquire(false); // a stream owns its connection
    struct Releaser {
        Impl &s;
        std::unique_ptr<Connection> &c;
        ~Releaser() { s.release(std::move(c), false); }
    } releaser{s, c};

    s.connect(*c, deadline);
    auto req = Impl::make_request(target);
    error_code ec = s.run(*c, deadline, [&](auto handler) { http::async_write(c->socket, req, handler); });
    if (ec) throw Error(errno_of(ec), "sending /events: " + ec.message());

    http::response_parser<http::buffer_body> parser;
    parser.header_limit(header_limit);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max()); // endless by design; objects are capped
    ec = s.run(*c, deadline, [&](auto handler) { http::async_read_header(c->socket, c->buffer, parser, handler); });
    if (ec) throw Error(errno_of(ec), "reading /events headers: " + ec.message());
    unsigned status = parser.get().result_int();
    if (status != 200) throw Error(-EPROTO, "/events answered HTTP " + std::to_string(status));
    if (!on_subscribed()) return;

    JsonStreamSplitter splitter(options_.max_event);
    std::vector<char> chunk(16u << 10);
    bool go_on = true;
    while (go_on) {
        if (parser.is_done()) throw Error(-EPIPE, "event stream ended by the engine");
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        ec = s.run(*c, std::nullopt,
                   [&](auto handler) { http::async_read_some(c->socket, c->buffer, parser, handler); });
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
            if (is_disconnect(ec)) throw Error(-EPIPE, "event stream closed by the engine");
            throw Error(errno_of(ec), "reading /events: " + ec.message());
        }
        std::size_t got = chunk.size() - parser.get().body().size;
        go_on = splitter.feed(std::string_view(chunk.data(), got),
                              [&](boost::json::value &&obj) { return on_event(decode_event(obj)); });
    }
}

std::string url_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size() * 3);
    for (unsigned char ch : text) {
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '_' || ch == '.' || ch == '~') {
            out += static_cast<char>(ch);
        } else {
            out += '%';
            out += hex[ch >> 4];
            out += hex[ch & 15];
        }
    }
    return out;
}

} // namespace turtlefinder::clients::docker
