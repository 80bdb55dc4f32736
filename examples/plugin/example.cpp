// SPDX-License-Identifier: Apache-2.0
// An out-of-tree turtlefinder plugin, built against the installed SDK alone.
//
// It finds "exampled", a made-up engine speaking a tiny line protocol on a
// unix socket:
//   -> PING        <- EXAMPLED <version>
//   -> LIST        <- <id> <pid> <name>   (one line per container)  then  "."
// turtlefinder hands the plugin each listening socket of an `exampled`
// process; the plugin keeps those that answer PING like exampled.
#include <turtlefinder/plugin.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <sstream>

namespace {

using namespace turtlefinder::sdk;
using Clock = std::chrono::steady_clock;

// One request/response exchange on a fresh connection, bounded by `timeout`
// and abandoned promptly once `cancelled` is set.
class Exchange {
public:
    Exchange(const std::string &path, std::chrono::milliseconds timeout, const std::atomic<bool> &cancelled)
        : deadline_(Clock::now() + timeout), cancelled_(cancelled) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path.size() >= sizeof addr.sun_path) throw Error(-ENAMETOOLONG, "socket path too long: " + path);
        path.copy(addr.sun_path, path.size());
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd_ < 0) throw Error(-errno, "socket: " + std::string(std::strerror(errno)));
        if (::connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 && errno != EINPROGRESS &&
            errno != EAGAIN) {
            int code = errno;
            ::close(fd_); // no destructor runs for a constructor that throws
            throw Error(-code, "connect " + path + ": " + std::strerror(code));
        }
    }
    ~Exchange() { ::close(fd_); }
    Exchange(const Exchange &) = delete;
    Exchange &operator=(const Exchange &) = delete;

    void send(const std::string &line) {
        std::string out = line + "\n";
        for (std::size_t done = 0; done < out.size();) {
            wait(POLLOUT);
            ssize_t n = ::send(fd_, out.data() + done, out.size() - done, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN) throw Error(-errno, std::string("send: ") + std::strerror(errno));
            if (n > 0) done += static_cast<std::size_t>(n);
        }
    }

    std::string line() {
        while (true) {
            if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string l = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                return l;
            }
            if (buffer_.size() > 64 * 1024) throw Error(-EPROTO, "line too long: not exampled");
            wait(POLLIN);
            char chunk[4096];
            ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n == 0) throw Error(-EPROTO, "connection closed mid-answer");
            if (n < 0 && errno != EAGAIN) throw Error(-errno, std::string("recv: ") + std::strerror(errno));
            if (n > 0) buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }

private:
    // Polls in short slices so that cancel() takes effect without waiting for the deadline.
    void wait(short events) {
        while (true) {
            if (cancelled_) throw Error(-ECANCELED, "cancelled");
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
            if (left <= 0) throw Error(-ETIMEDOUT, "exampled did not answer in time");
            pollfd p{fd_, events, 0};
            int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
            if (rc > 0) return;
            if (rc < 0 && errno != EINTR) throw Error(-errno, std::string("poll: ") + std::strerror(errno));
        }
    }

    int fd_ = -1;
    std::string buffer_;
    Clock::time_point deadline_;
    const std::atomic<bool> &cancelled_;
};

class ExampledClient final : public EngineClient {
public:
    ExampledClient(EngineInfo info, std::chrono::milliseconds timeout)
        : EngineClient(std::move(info)), timeout_(timeout) {}

    void list(const std::function<bool(const Container &)> &emit) override {
        Exchange x(info().api, timeout_, cancelled_);
        x.send("LIST");
        for (std::string l = x.line(); l != "."; l = x.line()) {
            std::istringstream in(l);
            Container c;
            if (!(in >> c.id >> c.pid >> c.name)) throw Error(-EPROTO, "bad LIST line: " + l);
            if (!emit(c)) return;
        }
    }

    std::optional<Container> inspect(const std::string &id) override {
        std::optional<Container> found;
        list([&](const Container &c) {
            if (c.id == id) found = c;
            return !found;
        });
        return found;
    }

    // No event stream: the default watch() says so and turtlefinder relists.
    void cancel() override { cancelled_ = true; }

private:
    std::chrono::milliseconds timeout_;
    std::atomic<bool> cancelled_{false};
};

struct ExamplePlugin {
    static constexpr const char *name = "example";
    static constexpr const char *version = "1.0.0";
    static constexpr const char *description = "finds exampled engines (SDK example)";
    static constexpr std::array<const char *, 1> process_names{"exampled"};

    static Engines probe(const ProbeRequest &request) {
        static const std::atomic<bool> never{false};
        Engines engines;
        for (const auto &path : request.api_paths) {
            try {
                Exchange x(path, request.timeout, never);
                x.send("PING");
                std::string answer = x.line();
                if (answer.rfind("EXAMPLED ", 0) != 0) { // some other protocol: not our API
                    request.report(path, -EPROTO, "answers PING with something else than EXAMPLED");
                    continue;
                }
                engines.push_back(std::make_unique<ExampledClient>(
                    EngineInfo{"example.org/exampled", "example.org/exampled", "exampled@" + path, answer.substr(9),
                               path, request.pid},
                    request.timeout));
                request.report(path, 0, "exampled");
            } catch (const Error &e) {
                log(TF_LOG_DEBUG, path + ": " + e.what());
                request.report(path, e.code(), e.what()); // why it gave no engine, for the user
            }
        }
        return engines;
    }
};

} // namespace

TF_PLUGIN(ExamplePlugin)
