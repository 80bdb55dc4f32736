// SPDX-License-Identifier: Apache-2.0
// Plain POSIX sockets: the CLI asks once and exits, so one blocking request
// costs less than setting up an I/O context.
#include "client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <boost/json.hpp>

namespace turtlefinder::serve {

namespace json = boost::json;

namespace {

// A connected socket, or -1 (no socket file, or nobody listening: at once).
int connect_unix(const std::string &path) {
    sockaddr_un addr{};
    if (path.empty() || path.size() >= sizeof addr.sun_path) return -1;
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool send_all(int fd, const std::string &data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
    }
    return true;
}

std::string request(const std::string &target) {
    return "GET " + target + " HTTP/1.1\r\nHost: turtlefinder\r\nConnection: close\r\n\r\n";
}

// "HTTP/1.1 200 ..." up to the end of the head; nullopt when not a 200.
std::optional<std::size_t> ok_head_end(const std::string &data) {
    auto end = data.find("\r\n\r\n");
    if (end == std::string::npos) return std::nullopt;
    if (data.rfind("HTTP/1.1 200 ", 0) != 0 && data.rfind("HTTP/1.0 200 ", 0) != 0) return std::nullopt;
    return end + 4;
}

std::string str(const json::value &v, const char *key) {
    const auto *p = v.as_object().if_contains(key);
    return p != nullptr && p->is_string() ? std::string(p->get_string()) : std::string();
}

std::int64_t num(const json::value &v, const char *key) {
    const auto *p = v.as_object().if_contains(key);
    return p != nullptr && p->is_int64()    ? p->get_int64()
           : p != nullptr && p->is_uint64() ? static_cast<std::int64_t>(p->get_uint64())
                                            : 0;
}

bool flag(const json::value &v, const char *key) {
    const auto *p = v.as_object().if_contains(key);
    return p != nullptr && p->is_bool() && p->get_bool();
}

// "2026-11-30T10:52:10.123Z", as cli::utc_time writes it.
std::chrono::system_clock::time_point parse_time(const std::string &text) {
    std::tm tm{};
    int ms = 0;
    if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return {};
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return std::chrono::system_clock::from_time_t(::timegm(&tm)) + std::chrono::milliseconds(ms);
}

Engine::State state_of(const std::string &s) {
    if (s == "online") return Engine::State::online;
    if (s == "stale") return Engine::State::stale;
    return Engine::State::syncing;
}

Engine engine_of(const json::value &v) {
    Engine e;
    e.id = str(v, "id");
    e.type = str(v, "type");
    e.flavor = str(v, "flavor");
    e.version = str(v, "version");
    e.api = str(v, "api");
    e.pid = static_cast<int>(num(v, "pid"));
    e.plugin = str(v, "plugin");
    e.prefix = str(v, "prefix");
    e.state = state_of(str(v, "state"));
    e.error = str(v, "error");
    e.since = parse_time(str(v, "since"));
    return e;
}

Container container_of(const json::value &v) {
    Container c;
    c.id = str(v, "id");
    c.name = str(v, "name");
    c.type = str(v, "type");
    c.flavor = str(v, "flavor");
    c.pid = static_cast<int>(num(v, "pid"));
    c.paused = flag(v, "paused");
    c.stale = flag(v, "stale");
    if (const auto *labels = v.as_object().if_contains("labels"); labels != nullptr && labels->is_object())
        for (const auto &[k, l] : labels->get_object())
            if (l.is_string()) c.labels[std::string(k)] = std::string(l.get_string());
    return c;
}

} // namespace

std::optional<std::string> service_get(const std::string &socket, const std::string &target,
                                       std::chrono::milliseconds timeout) {
    int fd = connect_unix(socket);
    if (fd < 0) return std::nullopt;
    std::string data;
    bool ok = send_all(fd, request(target));
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[65536];
    while (ok) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            ok = false;
            break;
        }
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) ok = false;
        if (n <= 0) break;
        data.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (!ok) return std::nullopt;
    auto body = ok_head_end(data);
    if (!body) return std::nullopt;
    return data.substr(*body);
}

EventReader::EventReader(std::string socket) : socket_(std::move(socket)) {
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) stop_pipe_[0] = stop_pipe_[1] = -1;
}

EventReader::~EventReader() {
    if (fd_ >= 0) ::close(fd_);
    for (int fd : stop_pipe_)
        if (fd >= 0) ::close(fd);
}

void EventReader::stop() {
    if (stop_pipe_[1] >= 0) (void)!::write(stop_pipe_[1], "x", 1);
}

bool EventReader::open(std::chrono::milliseconds timeout) {
    fd_ = connect_unix(socket_);
    if (fd_ < 0) return false;
    if (!send_all(fd_, request("/v1/events"))) return false;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (data_.find("\r\n\r\n") == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd_, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data_.append(buf, static_cast<std::size_t>(n));
    }
    auto body = ok_head_end(data_);
    if (!body) return false;
    data_.erase(0, *body);
    return true;
}

void EventReader::run(const std::function<void(const std::string &)> &on_event) {
    std::string event_data;
    char buf[65536];
    for (;;) {
        // Lines of "field: value"; an empty line ends an event.
        std::size_t at = 0;
        for (auto nl = data_.find('\n', at); nl != std::string::npos; nl = data_.find('\n', at)) {
            std::string line = data_.substr(at, nl - at);
            at = nl + 1;
            if (line.empty()) {
                if (!event_data.empty()) on_event(event_data);
                event_data.clear();
            } else if (line.rfind("data:", 0) == 0) {
                std::string value = line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
                event_data += (event_data.empty() ? "" : "\n") + value;
            }
        }
        data_.erase(0, at);
        pollfd p[2] = {{fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (p[1].revents != 0) return;
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data_.append(buf, static_cast<std::size_t>(n));
    }
}

View parse_view(const std::string &document) {
    View view;
    json::value doc = json::parse(document);
    const auto &o = doc.as_object();
    std::vector<std::shared_ptr<Engine>> engines;
    std::vector<std::int64_t> parents;
    if (const auto *es = o.if_contains("engines"))
        for (const auto &e : es->as_array()) {
            engines.push_back(std::make_shared<Engine>(engine_of(e)));
            const auto *p = e.as_object().if_contains("parent");
            parents.push_back(p != nullptr && p->is_int64() ? p->get_int64() : -1);
        }
    for (std::size_t i = 0; i < engines.size(); ++i)
        if (parents[i] >= 0 && static_cast<std::size_t>(parents[i]) < engines.size())
            engines[i]->parent = engines[static_cast<std::size_t>(parents[i])];
    for (const auto &e : engines) view.engines.push_back(e);
    if (const auto *cs = o.if_contains("containers"))
        for (const auto &c : cs->as_array()) {
            Container container = container_of(c);
            const auto *e = c.as_object().if_contains("engine");
            if (e != nullptr && e->is_int64() && e->get_int64() >= 0 &&
                static_cast<std::size_t>(e->get_int64()) < engines.size())
                container.engine = engines[static_cast<std::size_t>(e->get_int64())];
            view.containers.push_back(std::move(container));
        }
    if (const auto *cs = o.if_contains("candidates"))
        for (const auto &c : cs->as_array()) {
            Candidate candidate;
            candidate.pid = static_cast<int>(num(c, "pid"));
            candidate.process = str(c, "process");
            candidate.plugin = str(c, "plugin");
            candidate.reason = str(c, "reason");
            if (const auto *s = c.as_object().if_contains("sockets"); s != nullptr && s->is_array())
                for (const auto &path : s->get_array())
                    if (path.is_string()) candidate.sockets.emplace_back(path.get_string());
            view.candidates.push_back(std::move(candidate));
        }
    return view;
}

Event parse_event(const std::string &text, std::map<std::string, std::shared_ptr<const Engine>> &engines) {
    json::value v = json::parse(text);
    Event event{};
    std::string kind = str(v, "event");
    for (auto k : {EventKind::engine_found, EventKind::engine_lost, EventKind::started, EventKind::exited,
                   EventKind::paused, EventKind::unpaused, EventKind::engine_changed})
        if (kind == to_string(k)) event.kind = k;
    event.time = parse_time(str(v, "time"));
    event.initial = flag(v, "initial");
    if (const auto *e = v.as_object().if_contains("engine"); e != nullptr && e->is_object()) {
        auto engine = std::make_shared<Engine>(engine_of(*e));
        std::string parent = str(*e, "parent");
        if (auto p = engines.find(parent); !parent.empty() && p != engines.end()) engine->parent = p->second;
        std::string key = str(*e, "key");
        if (event.kind == EventKind::engine_lost)
            engines.erase(key);
        else
            engines[key] = engine;
        event.engine = engine;
    }
    if (const auto *c = v.as_object().if_contains("container"); c != nullptr && c->is_object()) {
        event.container = container_of(*c);
        std::string key = str(*c, "engine");
        if (auto e = engines.find(key); e != engines.end()) event.container.engine = e->second;
        if (!event.engine) event.engine = event.container.engine;
    }
    return event;
}

} // namespace turtlefinder::serve
