// SPDX-License-Identifier: Apache-2.0
// Connections are served asynchronously on a few threads, each connection on
// its own strand: a slow or silent client holds a socket and a timer, never a
// thread. Every wait on a client is bounded (header, idle and write
// timeouts), every resource counted (connections, SSE subscribers, each
// subscriber's backlog).
#include "service.hpp"

#include <grp.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "discoverer.hpp"
#include "events.hpp"
#include "metrics.hpp"
#include "output.hpp"
#include "page.hpp"

namespace turtlefinder::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
using Protocol = asio::generic::stream_protocol;
using Acceptor = asio::basic_socket_acceptor<Protocol>;
using Stream = beast::basic_stream<Protocol, asio::any_io_executor, beast::unlimited_rate_policy>;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void fail(const std::string &what, int err) {
    throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(err)));
}

// "PORT" (loopback), "ADDR:PORT" or "[ADDR]:PORT".
asio::ip::tcp::endpoint tcp_endpoint(const std::string &text) {
    std::string addr = "127.0.0.1", port = text;
    if (auto colon = text.rfind(':'); colon != std::string::npos) {
        addr = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']') addr = addr.substr(1, addr.size() - 2);
    }
    char *end = nullptr;
    long n = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || n < 0 || n > 65535)
        throw std::runtime_error("--listen " + text + ": expected [ADDR:]PORT with a port from 0 to 65535");
    boost::system::error_code ec;
    auto address = asio::ip::make_address(addr, ec);
    if (ec) throw std::runtime_error("--listen " + text + ": \"" + addr + "\" is not an IP address");
    return {address, static_cast<unsigned short>(n)};
}

// Sockets systemd passed (LISTEN_PID, LISTEN_FDS: fds from 3).
std::vector<int> inherited_sockets() {
    const char *pid = std::getenv("LISTEN_PID"), *fds = std::getenv("LISTEN_FDS");
    if (pid == nullptr || fds == nullptr || std::to_string(::getpid()) != pid) return {};
    int n = std::atoi(fds);
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    std::vector<int> out;
    for (int fd = 3; fd < 3 + n; ++fd) {
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        out.push_back(fd);
    }
    return out;
}

http::response<http::string_body> make_response(const Reply &reply, unsigned version, bool head, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(reply.status), version};
    res.set(http::field::server, std::string("turtlefinder/") + turtlefinder::version());
    res.set(http::field::content_type, reply.content_type);
    res.set(http::field::cache_control, "no-store");
    for (const auto &[k, v] : reply.headers) res.set(k, v);
    res.keep_alive(keep_alive);
    res.body() = reply.body;
    res.prepare_payload();
    if (head) res.body().clear(); // Content-Length stays the GET's
    return res;
}

} // namespace

class Session;

struct Service::Impl {
    Finder &finder;
    Settings settings;
    std::unique_ptr<ServiceCounters> counters; // /metrics: requests by route, subscribers (outlives the sessions)
    asio::io_context ioc;
    std::vector<std::unique_ptr<Acceptor>> acceptors;
    std::vector<std::string> endpoints;
    // The unix socket file created: removed at the end, also when a later
    // listener cannot be opened.
    struct SocketFile {
        std::string path;
        ~SocketFile() {
            if (!path.empty()) ::unlink(path.c_str());
        }
    } socket_file;
    asio::signal_set signals{ioc, SIGTERM, SIGINT};
    std::unique_ptr<asio::posix::stream_descriptor> inotify;
    std::array<char, 4096> inotify_buffer{};
    Discoverer discoverer;
    EventHub hub;
    std::vector<Route> routes;
    std::atomic<bool> draining{false};
    std::atomic<std::int64_t> connections{0};

    std::mutex sessions_mu;
    std::map<Session *, std::weak_ptr<Session>> sessions;
    // Takes event stream clients' states (EventHub::open) off the serving
    // threads. Last: joined before anything a session uses goes.
    asio::thread_pool snapshots{1};

    Impl(Finder &f, Settings s)
        : finder(f),
          settings(std::move(s)),
          discoverer(finder, settings.discovery_period),
          hub(finder, static_cast<std::size_t>(settings.event_buffer),
              static_cast<std::size_t>(settings.max_sse_subscribers), [this] { discoverer.changed(); }) {
        add_routes();
        open_listeners();
        watch_plugin_dirs();
    }

    // THE route table: one line per path.
    void add_routes() {
        routes.push_back({"/healthz", Route::Kind::reply, [](const Request &, Done done) {
                              done({200, "application/json", "{\"status\":\"ok\"}\n", {}});
                          }});
        routes.push_back(
            {"/readyz", Route::Kind::reply, [this](const Request &, Done done) {
                 auto s = discoverer.latest();
                 if (!s) return done(error_reply(503, "the first discovery has not finished yet"));
                 done({200,
                       "application/json",
                       fmt::format("{{\"status\":\"ready\",\"discovered\":\"{}\"}}\n", cli::utc_time(s->time)),
                       {}});
             }});
        routes.push_back({"/v1/containers", Route::Kind::reply, [this](const Request &, Done done) {
                              discoverer.fresh([done](std::shared_ptr<const Snapshot> s) {
                                  if (!s) return done(error_reply(503, "no discovery has finished"));
                                  done({200, "application/json", s->containers_json, {}});
                              });
                          }});
        routes.push_back({"/v1/engines", Route::Kind::reply, [this](const Request &, Done done) {
                              discoverer.fresh([done](std::shared_ptr<const Snapshot> s) {
                                  if (!s) return done(error_reply(503, "no discovery has finished"));
                                  done({200, "application/json", s->engines_json, {}});
                              });
                          }});
        routes.push_back({"/v1/plugins", Route::Kind::reply, [this](const Request &, Done done) {
                              std::ostringstream out;
                              cli::print_plugins_json(out, finder.plugins());
                              done({200, "application/json", out.str(), {}});
                          }});
        routes.push_back({"/v1/events", Route::Kind::events, {}});
        routes.push_back(
            {"/metrics", Route::Kind::reply, [this](const Request &, Done done) {
                 discoverer.fresh([this, done](std::shared_ptr<const Snapshot> s) {
                     MetricsInput in;
                     if (s) {
                         in.engines = s->engines;
                         in.containers = s->containers;
                         in.candidates = s->candidates;
                     }
                     in.plugins = finder.plugins();
                     in.stats = finder.stats();
                     done({200, std::string(metrics_content_type), render_metrics(in, counters.get()), {}});
                 });
             }});
        routes.push_back({"/", Route::Kind::reply, [](const Request &, Done done) {
                              done({200, std::string(live_page_content_type), std::string(live_page()), {}});
                          }});
        std::set<std::string> paths;
        for (const auto &r : routes) paths.insert(r.path);
        counters = std::make_unique<ServiceCounters>(std::move(paths));
    }

    void add_acceptor(std::unique_ptr<Acceptor> acceptor, std::string name) {
        acceptors.push_back(std::move(acceptor));
        endpoints.push_back(std::move(name));
    }

    void open_unix_socket(const std::string &path) {
        namespace fs = std::filesystem;
        if (path.size() >= sizeof(sockaddr_un::sun_path))
            throw std::runtime_error(fmt::format("--socket {}: longer than a unix socket path may be", path));
        std::error_code ec;
        auto dir = fs::path(path).parent_path();
        if (!dir.empty() && !fs::exists(dir, ec)) {
            fs::create_directories(dir, ec);
            if (ec)
                throw std::runtime_error(
                    fmt::format("--socket {}: cannot create {}: {}", path, dir.string(), ec.message()));
        }
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0) {
            if (!S_ISSOCK(st.st_mode))
                throw std::runtime_error(fmt::format("--socket {}: exists and is not a socket", path));
            // A socket someone still answers on belongs to a running service.
            asio::local::stream_protocol::socket probe(ioc);
            boost::system::error_code cec;
            probe.connect(asio::local::stream_protocol::endpoint(path), cec);
            if (!cec) throw std::runtime_error(fmt::format("--socket {}: a service already listens there", path));
            ::unlink(path.c_str());
        }
        auto acceptor = std::make_unique<Acceptor>(ioc);
        acceptor->open(Protocol(AF_UNIX, 0));
        boost::system::error_code bec;
        acceptor->bind(Protocol::endpoint(asio::local::stream_protocol::endpoint(path)), bec);
        if (bec) throw std::runtime_error(fmt::format("--socket {}: cannot bind: {}", path, bec.message()));
        socket_file.path = path;
        if (!settings.socket_group.empty()) {
            struct group *g = ::getgrnam(settings.socket_group.c_str());
            if (g == nullptr)
                throw std::runtime_error(fmt::format("--socket-group {}: no such group", settings.socket_group));
            if (::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0)
                fail("--socket-group " + settings.socket_group + ": cannot give " + path + " to it", errno);
        }
        if (::chmod(path.c_str(), 0660) != 0) fail("--socket " + path + ": chmod", errno);
        acceptor->listen(asio::socket_base::max_listen_connections);
        add_acceptor(std::move(acceptor), "unix:" + path);
    }

    void open_tcp(const std::string &text) {
        auto ep = tcp_endpoint(text);
        auto acceptor = std::make_unique<Acceptor>(ioc);
        acceptor->open(Protocol(ep.address().is_v6() ? AF_INET6 : AF_INET, IPPROTO_TCP));
        acceptor->set_option(asio::socket_base::reuse_address(true));
        boost::system::error_code ec;
        acceptor->bind(Protocol::endpoint(ep), ec);
        if (ec) throw std::runtime_error(fmt::format("--listen {}: cannot bind: {}", text, ec.message()));
        acceptor->listen(asio::socket_base::max_listen_connections);
        // The port the kernel chose for port 0.
        auto bound = acceptor->local_endpoint();
        asio::ip::tcp::endpoint actual;
        std::memcpy(actual.data(), bound.data(), std::min<std::size_t>(bound.size(), sizeof(sockaddr_in6)));
        actual.resize(bound.size());
        add_acceptor(std::move(acceptor), fmt::format("tcp:{}", (std::ostringstream() << actual).str()));
    }

    void open_listeners() {
        auto fds = inherited_sockets();
        for (int fd : fds) {
            int domain = 0;
            socklen_t len = sizeof domain;
            if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
                fail(fmt::format("socket activation: fd {}", fd), errno);
            auto acceptor = std::make_unique<Acceptor>(ioc);
            acceptor->assign(Protocol(domain, 0), fd);
            add_acceptor(std::move(acceptor), fmt::format("fd:{}", fd));
        }
        if (fds.empty() && !settings.socket.empty()) open_unix_socket(settings.socket);
        for (const auto &l : settings.listen) open_tcp(l);
        if (acceptors.empty())
            throw std::runtime_error("nothing to listen on (no --socket, --listen or systemd socket)");
    }

    // A plugin file put into a plugin directory is loaded without a restart.
    void watch_plugin_dirs() {
        int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd < 0) {
            std::cerr << "turtlefinder: serve: plugin directories are not watched: " << std::strerror(errno) << '\n';
            return;
        }
        for (const auto &dir : finder.plugin_directories())
            ::inotify_add_watch(fd, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO); // a missing one is skipped
        inotify = std::make_unique<asio::posix::stream_descriptor>(ioc, fd);
        read_inotify();
    }

    void read_inotify() {
        inotify->async_read_some(asio::buffer(inotify_buffer), [this](boost::system::error_code ec, std::size_t n) {
            if (ec) return;
            bool plugin = false;
            for (std::size_t at = 0; at + sizeof(inotify_event) <= n;) {
                const auto *e = reinterpret_cast<const inotify_event *>(inotify_buffer.data() + at);
                std::string_view name(e->len > 0 ? e->name : "");
                name = name.substr(0, name.find('\0'));
                if (name.ends_with(".so")) plugin = true;
                at += sizeof(inotify_event) + e->len;
            }
            if (plugin) discoverer.reload_plugins();
            read_inotify();
        });
    }

    void accept(Acceptor &acceptor);
    void drain();
};

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(Service::Impl &svc, Protocol::socket socket)
        : svc_(svc), stream_(std::move(socket)), tick_(stream_.get_executor()) {
        ++svc_.connections;
    }
    ~Session() {
        if (hub_handle_ != 0) {
            svc_.hub.close(hub_handle_);
            svc_.counters->subscriber_removed();
        }
        --svc_.connections;
        std::lock_guard lock(svc_.sessions_mu);
        svc_.sessions.erase(this);
    }

    void start() {
        {
            std::lock_guard lock(svc_.sessions_mu);
            svc_.sessions[this] = weak_from_this();
        }
        asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
    }

    asio::any_io_executor executor() { return stream_.get_executor(); }

    // The drain: an idle connection is closed, a response under way ends
    // its connection, an event stream ends. [on the strand]
    void shutdown() {
        if (state_ == State::reading || state_ == State::streaming) close();
    }

private:
    enum class State { reading, handling, writing, streaming, closed };

    void close() {
        if (state_ == State::closed) return;
        state_ = State::closed;
        tick_.cancel();
        boost::system::error_code ignored;
        stream_.socket().shutdown(Protocol::socket::shutdown_both, ignored);
        stream_.close();
    }

    void read() {
        if (svc_.draining) return close();
        state_ = State::reading;
        parser_.emplace();
        limit_parser(*parser_, svc_.settings.max_header_bytes);
        // The whole head must come within the timeout, however it trickles
        // in; on a kept-alive connection the wait for it is the idle timeout.
        stream_.expires_after(first_ ? svc_.settings.header_timeout : svc_.settings.idle_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (state_ == State::closed) return;
        first_ = false;
        if (ec) {
            if (auto reply = read_error_reply(ec)) return reply_and_close(*reply);
            return close();
        }
        const Request &req = parser_->get();
        path_ = std::string(target_path(req.target()).value_or(""));
        head_ = req.method() == http::verb::head;
        version_ = req.version();
        keep_alive_ = req.keep_alive();
        auto routed = route(svc_.routes, req.method(), req.target());
        if (routed.error) return respond(*routed.error);
        if (routed.route->kind == Route::Kind::events) return start_events(req);
        state_ = State::handling;
        stream_.expires_never(); // the client waits for us now
        auto guard = asio::make_work_guard(stream_.get_executor());
        routed.route->handler(req, [self = shared_from_this(), guard](Reply reply) mutable {
            asio::post(self->stream_.get_executor(),
                       [self, reply = std::move(reply), guard = std::move(guard)]() mutable { self->respond(reply); });
        });
    }

    void reply_and_close(const Reply &reply) {
        keep_alive_ = false;
        head_ = false;
        respond(reply);
    }

    void respond(const Reply &reply) {
        if (state_ == State::closed) return;
        svc_.counters->request(path_, reply.status);
        path_.clear();
        state_ = State::writing;
        bool keep = keep_alive_ && !svc_.draining;
        response_ = make_response(reply, version_, head_, keep);
        stream_.expires_after(svc_.settings.idle_timeout); // a client that does not read is cut off
        http::async_write(stream_, response_, [self = shared_from_this(), keep](beast::error_code ec, std::size_t) {
            if (ec || !keep) return self->close();
            self->read();
        });
    }

    // ---- Server-Sent Events ----

    // The state is taken on the snapshot thread: it waits for a discovery
    // under way, which must never hold a serving thread.
    void start_events(const Request &req) {
        std::optional<std::string> last;
        if (auto it = req.find("Last-Event-ID"); it != req.end()) last = std::string(it->value());
        state_ = State::handling;
        stream_.expires_never();
        auto guard = asio::make_work_guard(stream_.get_executor());
        asio::post(svc_.snapshots, [self = shared_from_this(), last, guard]() mutable {
            std::weak_ptr<Session> weak = self;
            auto opened = self->svc_.hub.open(last, [weak] {
                if (auto s = weak.lock()) s->wake();
            });
            asio::post(self->stream_.get_executor(),
                       [self, opened = std::move(opened), guard = std::move(guard)]() mutable {
                           self->stream_events(std::move(opened));
                       });
        });
    }

    void stream_events(EventHub::Opened opened) {
        if (opened.accepted) hub_handle_ = opened.handle; // closed with the session
        if (state_ == State::closed) return;
        if (svc_.draining) return close();
        if (!opened.accepted) {
            keep_alive_ = false;
            return respond(error_reply(503, "too many event stream subscribers"));
        }
        svc_.counters->request(path_, 200);
        svc_.counters->subscriber_added();
        state_ = State::streaming;
        stream_.expires_never(); // bounded by the write stall check and the subscriber's backlog
        out_ = fmt::format("HTTP/1.1 200 OK\r\nServer: turtlefinder/{}\r\nContent-Type: text/event-stream\r\n"
                           "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                           turtlefinder::version());
        if (head_) {
            flush();
            return;
        }
        out_ += "retry: 1000\n\n";
        for (const auto &e : opened.initial) append(e);
        last_write_ = Clock::now();
        pull();
        watch_for_hangup();
        schedule_tick();
    }

    void append(const StreamEvent &e) { out_ += fmt::format("id: {}\ndata: {}\n\n", e.id, e.data); }

    // [any thread] Events are due: pull them on the strand (once per burst).
    void wake() {
        if (woken_.exchange(true)) return;
        asio::post(stream_.get_executor(), [self = shared_from_this()] {
            self->woken_ = false;
            self->pull();
        });
    }

    // Only while nothing is being written: a slow reader's backlog stays in
    // the hub, where it is bounded.
    void pull() {
        if (state_ != State::streaming || writing_) return;
        auto events = svc_.hub.pull(hub_handle_, static_cast<std::size_t>(svc_.settings.sse_queue));
        if (!events) {
            out_ += ": dropped: this reader fell too far behind\n\n";
            end_after_flush_ = true;
        } else {
            for (const auto &e : *events) append(e);
        }
        flush();
    }

    void flush() {
        if (writing_ || out_.empty() || state_ == State::closed) return;
        writing_ = true;
        sending_.swap(out_);
        out_.clear();
        write_started_ = Clock::now();
        asio::async_write(stream_, asio::buffer(sending_),
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->writing_ = false;
                              self->sending_.clear();
                              self->last_write_ = Clock::now();
                              if (ec || self->head_ || self->end_after_flush_) return self->close();
                              self->pull();
                          });
    }

    // A client that hangs up (or half-closes) ends its stream.
    void watch_for_hangup() {
        stream_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec) return self->close();
            self->watch_for_hangup();
        });
    }

    void schedule_tick() {
        auto period = std::min(svc_.settings.keepalive, svc_.settings.idle_timeout) / 2;
        tick_.expires_after(period);
        tick_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (ec || self->state_ != State::streaming) return;
            auto now = Clock::now();
            if (self->writing_ && now - self->write_started_ > self->svc_.settings.idle_timeout) return self->close();
            if (!self->writing_ && now - self->last_write_ >= self->svc_.settings.keepalive) {
                self->out_ += ": keep-alive\n\n";
                self->flush();
            }
            self->schedule_tick();
        });
    }

    Service::Impl &svc_;
    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    http::response<http::string_body> response_;
    State state_ = State::reading;
    bool first_ = true;
    std::string path_; // of the request being answered ("" before one was read)
    bool head_ = false;
    bool keep_alive_ = false;
    unsigned version_ = 11;
    // event stream
    int hub_handle_ = 0;
    std::atomic<bool> woken_{false};
    bool writing_ = false;
    bool end_after_flush_ = false;
    std::string out_, sending_;
    std::array<char, 512> discard_{};
    Clock::time_point write_started_, last_write_;
    asio::steady_timer tick_;
};

void Service::Impl::accept(Acceptor &acceptor) {
    acceptor.async_accept(
        asio::make_strand(ioc), [this, &acceptor](boost::system::error_code ec, Protocol::socket socket) {
            if (ec == asio::error::operation_aborted || draining) return;
            if (!ec) {
                if (connections >= settings.max_connections) {
                    // Told briefly, then closed; never queued.
                    counters->request("", 503);
                    auto stream = std::make_shared<Stream>(std::move(socket));
                    auto res = std::make_shared<http::response<http::string_body>>(
                        make_response(error_reply(503, "too many connections"), 11, false, false));
                    stream->expires_after(std::chrono::seconds(1));
                    http::async_write(*stream, *res, [stream, res](beast::error_code, std::size_t) {
                        boost::system::error_code ignored;
                        stream->socket().shutdown(Protocol::socket::shutdown_both, ignored);
                        stream->close();
                    });
                } else {
                    std::make_shared<Session>(*this, std::move(socket))->start();
                }
            } else {
                // Out of fds, say: not again at once, in a loop.
                std::cerr << "turtlefinder: serve: accept: " << ec.message() << '\n';
                auto pause = std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(100));
                pause->async_wait([this, &acceptor, pause](boost::system::error_code) {
                    if (!draining) accept(acceptor);
                });
                return;
            }
            accept(acceptor);
        });
}

void Service::Impl::drain() {
    if (draining.exchange(true)) return;
    boost::system::error_code ignored;
    for (auto &a : acceptors) a->close(ignored);
    signals.cancel(ignored);
    if (inotify) inotify->close(ignored);
    std::vector<std::shared_ptr<Session>> live;
    {
        std::lock_guard lock(sessions_mu);
        for (auto &[p, weak] : sessions)
            if (auto s = weak.lock()) live.push_back(std::move(s));
    }
    for (auto &s : live) asio::post(s->executor(), [s] { s->shutdown(); });
}

Service::Service(Finder &finder, Settings settings) : impl_(std::make_unique<Impl>(finder, std::move(settings))) {}

Service::~Service() { impl_->discoverer.stop(); }

void Service::run() {
    auto &s = *impl_;
    for (auto &a : s.acceptors) s.accept(*a);
    s.signals.async_wait([&s](boost::system::error_code ec, int) {
        if (!ec) s.drain();
    });
    for (const auto &e : s.endpoints) std::cerr << "turtlefinder: serve: listening on " << e << '\n';
    std::vector<std::thread> threads;
    for (std::int64_t i = 1; i < s.settings.threads; ++i) threads.emplace_back([&s] { s.ioc.run(); });
    s.ioc.run();
    for (auto &t : threads) t.join();
    s.snapshots.join();
}

void Service::stop() {
    asio::post(impl_->ioc, [this] { impl_->drain(); });
}

std::vector<std::string> Service::endpoints() const { return impl_->endpoints; }

const std::vector<Route> &Service::routes() const { return impl_->routes; }

} // namespace turtlefinder::serve
