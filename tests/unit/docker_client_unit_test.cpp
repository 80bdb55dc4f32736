// SPDX-License-Identifier: Apache-2.0
// Docker API client: decoders and the event-stream splitter on crafted input,
// and the HTTP layer against a scripted in-process server (a TEST DOUBLE:
// it plays an engine byte for byte, including broken ones).
#include <turtlefinder/clients/docker/client.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include <boost/json.hpp>

#include "testing.hpp"

namespace docker = turtlefinder::clients::docker;
using namespace std::chrono_literals;

namespace {

template <typename F>
int error_code_of(F &&f) {
    try {
        f();
    } catch (const docker::Error &e) {
        return e.code();
    }
    return 0;
}

// ---- decoders -------------------------------------------------------------

TEST(DockerDecode, ApiVersion) {
    EXPECT_EQ(docker::parse_api_version("1.41"), (docker::ApiVersion{1, 41}));
    EXPECT_EQ(docker::parse_api_version("1.52")->str(), "1.52");
    for (const char *bad : {"", "1", "1.", ".41", "1.41.2", "v1.41", "1.-4", "1.4a", " 1.41", "99999999.1"})
        EXPECT_FALSE(docker::parse_api_version(bad)) << bad;
    EXPECT_LT((docker::ApiVersion{1, 41}), (docker::ApiVersion{1, 52}));
    EXPECT_LT((docker::ApiVersion{1, 9}), (docker::ApiVersion{1, 10})); // numeric, not lexical
}

TEST(DockerDecode, Version) {
    auto v = docker::decode_version(
        R"({"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64"})");
    EXPECT_EQ(v.version, "20.10.24+dfsg1");
    EXPECT_EQ(v.api_version, (docker::ApiVersion{1, 41}));
    EXPECT_EQ(v.min_api_version, (docker::ApiVersion{1, 12}));
    EXPECT_EQ(v.os, "linux");
    auto old = docker::decode_version(R"({"Version":"1.0","ApiVersion":"1.20"})");
    EXPECT_EQ(old.min_api_version, old.api_version);
    for (const char *bad : {"", "OK", "[]", "{}", R"({"ApiVersion":1.41})", R"({"ApiVersion":"x"})",
                            R"({"ApiVersion":"1.41","MinAPIVersion":"zz"})", R"({"ApiVersion":"1.41")",
                            R"({"ApiVersion":"1.41","Version":7})"})
        EXPECT_EQ(error_code_of([&] { docker::decode_version(bad); }), -EPROTO) << bad;
}

TEST(DockerDecode, Info) {
    auto i = docker::decode_info(R"({"ID":"ABCD:EFGH","Name":"host","Containers":3})");
    EXPECT_EQ(i.id, "ABCD:EFGH");
    EXPECT_EQ(i.name, "host");
    EXPECT_EQ(error_code_of([] { docker::decode_info(R"({"ID":42})"); }), -EPROTO);
    EXPECT_EQ(error_code_of([] { docker::decode_info("\x01\x02garbage"); }), -EPROTO);
}

TEST(DockerDecode, ContainerList) {
    auto list = docker::decode_container_list(
        R"([{"Id":"abc","Names":["/web"],"State":"running","Labels":{"a":"b","c":""}},
            {"Id":"def","Names":null,"State":"paused","Labels":null}])");
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0].id, "abc");
    EXPECT_EQ(list[0].name, "web");
    EXPECT_EQ(list[0].state, "running");
    EXPECT_EQ(list[0].labels, (docker::Labels{{"a", "b"}, {"c", ""}}));
    EXPECT_EQ(list[1].name, "");
    EXPECT_TRUE(list[1].labels.empty());
    EXPECT_TRUE(docker::decode_container_list("[]").empty());
    for (const char *bad : {"{}", "[1]", R"([{"Names":["/x"]}])", R"([{"Id":"a","Names":"/x"}])",
                            R"([{"Id":"a","Labels":{"k":1}}])", R"([{"Id":"a"})"})
        EXPECT_EQ(error_code_of([&] { docker::decode_container_list(bad); }), -EPROTO) << bad;
}

TEST(DockerDecode, ContainerInspect) {
    auto c = docker::decode_container_inspect(
        R"({"Id":"abc","Name":"/web","State":{"Status":"paused","Running":true,"Paused":true,"Pid":4242},
            "Config":{"Labels":{"a":"b"}}})");
    EXPECT_EQ(c.id, "abc");
    EXPECT_EQ(c.name, "web");
    EXPECT_EQ(c.pid, 4242);
    EXPECT_TRUE(c.running);
    EXPECT_TRUE(c.paused);
    EXPECT_EQ(c.status, "paused");
    EXPECT_EQ(c.labels.at("a"), "b");
    auto exited = docker::decode_container_inspect(R"({"Id":"x","State":{"Running":false,"Pid":0}})");
    EXPECT_FALSE(exited.running);
    EXPECT_EQ(exited.pid, 0);
    for (const char *bad :
         {R"({"Id":"x"})", R"({"Id":"x","State":{"Pid":-1}})", R"({"Id":"x","State":{"Pid":"1"}})",
          R"({"Id":"x","State":{"Pid":99999999999}})", R"({"Id":"x","State":{"Running":"yes"}})", R"({"State":{}})"})
        EXPECT_EQ(error_code_of([&] { docker::decode_container_inspect(bad); }), -EPROTO) << bad;
}

TEST(DockerDecode, Event) {
    auto e = docker::decode_event(std::string_view(
        R"({"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"web"}},"time":1})"));
    EXPECT_EQ(e.type, "container");
    EXPECT_EQ(e.action, "start");
    EXPECT_EQ(e.id, "abc");
    EXPECT_EQ(e.attributes.at("name"), "web");
    auto legacy = docker::decode_event(std::string_view(R"({"status":"die","id":"def"})"));
    EXPECT_EQ(legacy.action, "die");
    EXPECT_EQ(legacy.id, "def");
    EXPECT_EQ(error_code_of([] { docker::decode_event(std::string_view("[1,2]")); }), -EPROTO);
}

TEST(DockerDecode, UrlEncode) {
    EXPECT_EQ(docker::url_encode(R"({"a":["b c"]})"), "%7B%22a%22%3A%5B%22b%20c%22%5D%7D");
    EXPECT_EQ(docker::url_encode("abc-_.~09"), "abc-_.~09");
}

// ---- the event-stream splitter ---------------------------------------------

std::vector<std::string> split_all(docker::JsonStreamSplitter &s, const std::vector<std::string> &feeds) {
    std::vector<std::string> out;
    for (const auto &f : feeds)
        s.feed(f, [&](boost::json::value &&v) {
            out.push_back(boost::json::serialize(v));
            return true;
        });
    return out;
}

TEST(DockerSplitter, OneObjectPerFeedAndSeveralPerFeed) {
    docker::JsonStreamSplitter s;
    auto got = split_all(s, {"{\"a\":1}\n", "{\"b\":2}\n{\"c\":3}\n{\"d\":4}", "\n"});
    EXPECT_EQ(got, (std::vector<std::string>{R"({"a":1})", R"({"b":2})", R"({"c":3})", R"({"d":4})"}));
    EXPECT_TRUE(s.idle());
}

TEST(DockerSplitter, ObjectSplitAtEveryByte) {
    const std::string stream = "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"x\\\"y\"}}\r\n"
                               "  {\"n\":[1,2,{\"m\":\"}\"}]}\n";
    for (std::size_t cut = 1; cut < stream.size(); ++cut) {
        docker::JsonStreamSplitter s;
        auto got = split_all(s, {stream.substr(0, cut), stream.substr(cut)});
        ASSERT_EQ(got.size(), 2u) << "cut at " << cut;
        EXPECT_EQ(docker::decode_event(boost::json::parse(got[0])).id, "x\"y");
    }
    docker::JsonStreamSplitter bytewise;
    std::vector<std::string> feeds;
    for (char c : stream) feeds.emplace_back(1, c);
    EXPECT_EQ(split_all(bytewise, feeds).size(), 2u);
}

TEST(DockerSplitter, TruncatedObjectIsPending) {
    docker::JsonStreamSplitter s;
    auto got = split_all(s, {"{\"a\":1}\n{\"b\":"});
    EXPECT_EQ(got.size(), 1u);
    EXPECT_FALSE(s.idle());
}

TEST(DockerSplitter, GarbageIsAnError) {
    for (const char *bad : {"HTTP/1.1 200 OK\r\n", "[1,2]", "42\n", "{\"a\":1}}", "{\"a\" 1}", "\x01\x02\x03"}) {
        docker::JsonStreamSplitter s;
        EXPECT_EQ(error_code_of([&] { split_all(s, {bad}); }), -EPROTO) << bad;
        // and stays failed
        EXPECT_EQ(error_code_of([&] { split_all(s, {"{}"}); }), -EPROTO) << bad;
    }
}

TEST(DockerSplitter, OversizedObjectIsAnError) {
    docker::JsonStreamSplitter s(100);
    EXPECT_EQ(split_all(s, {"{\"a\":\"" + std::string(80, 'x') + "\"}"}).size(), 1u);
    // An object that never ends must fail once it passes the cap, whatever the feed size.
    int code = error_code_of([&] { split_all(s, {"{\"a\":\"", std::string(60, 'x'), std::string(60, 'x')}); });
    EXPECT_EQ(code, -EPROTO);
    docker::JsonStreamSplitter whole(100);
    EXPECT_EQ(error_code_of([&] { split_all(whole, {"{\"a\":\"" + std::string(200, 'x') + "\"}"}); }), -EPROTO);
}

TEST(DockerSplitter, ConsumerCanStop) {
    docker::JsonStreamSplitter s;
    int n = 0;
    bool more = s.feed("{}{}{}", [&](boost::json::value &&) { return ++n < 2; });
    EXPECT_FALSE(more);
    EXPECT_EQ(n, 2);
}

// ---- HTTP layer against a scripted server (test double) ----------------------

// TEST DOUBLE: listens on a unix socket in a temp dir; for each connection,
// reads one request at a time and answers with `respond(request_line)`.
// An empty answer closes the connection; a "<hold>" part keeps it open
// silently from there on, a "<close>" part hangs up.
class ScriptedEngine {
public:
    using Responder = std::function<std::vector<std::string>(const std::string &request_line)>;

    explicit ScriptedEngine(Responder respond, const std::string &dir_suffix = "") : respond_(std::move(respond)) {
        char templ[] = "/tmp/tf-ut-XXXXXX";
        dir_ = ::mkdtemp(templ);
        std::string d = dir_ + dir_suffix;
        std::filesystem::create_directories(d);
        path_ = d + "/e.sock";
        listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        // bind through the directory (the path may exceed sun_path on purpose)
        int dfd = ::open(d.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::string via = "/proc/self/fd/" + std::to_string(dfd) + "/e.sock";
        std::strcpy(a.sun_path, via.c_str());
        if (::bind(listen_fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0)
            ADD_FAILURE() << "bind/listen: " << std::strerror(errno);
        ::close(dfd);
        thread_ = std::thread([this] { accept_loop(); });
    }
    ~ScriptedEngine() {
        stop_ = true;
        ::shutdown(listen_fd_, SHUT_RDWR);
        thread_.join();
        for (auto &t : conns_) t.join();
        ::close(listen_fd_);
        std::filesystem::remove_all(dir_);
    }
    const std::string &path() const { return path_; }
    int connections() const { return connections_.load(); }
    std::vector<std::string> requests() {
        std::lock_guard l(mu_);
        return requests_;
    }

private:
    void accept_loop() {
        while (!stop_) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) return;
            ++connections_;
            conns_.emplace_back([this, fd] { serve(fd); });
        }
    }
    void serve(int fd) {
        std::string buf;
        char tmp[4096];
        while (!stop_) {
            auto end = buf.find("\r\n\r\n");
            if (end == std::string::npos) {
                timeval tv{0, 100000};
                ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
                if (n == 0) break;
                if (n < 0) continue;
                buf.append(tmp, static_cast<std::size_t>(n));
                continue;
            }
            std::string line = buf.substr(0, buf.find("\r\n"));
            buf.erase(0, end + 4);
            {
                std::lock_guard l(mu_);
                requests_.push_back(line);
            }
            auto parts = respond_(line);
            if (parts.empty()) break;
            bool hold = false, hang_up = false;
            for (const auto &p : parts) {
                if (p == "<hold>" || p == "<close>") {
                    hold = p == "<hold>";
                    hang_up = !hold;
                    break;
                }
                ::send(fd, p.data(), p.size(), MSG_NOSIGNAL);
            }
            if (hang_up) break;
            if (hold) {
                while (!stop_) std::this_thread::sleep_for(10ms);
            }
        }
        ::close(fd);
    }

    Responder respond_;
    std::string dir_, path_;
    int listen_fd_ = -1;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    std::thread thread_;
    std::vector<std::thread> conns_;
    std::mutex mu_;
    std::vector<std::string> requests_;
};

std::string http_ok(const std::string &body, const std::string &extra_headers = "") {
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra_headers +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

ScriptedEngine::Responder docker_like(const std::string &api, const std::string &min_api, bool close_each = false) {
    return [=](const std::string &line) -> std::vector<std::string> {
        std::string conn = close_each ? "Connection: close\r\n" : "";
        if (line.rfind("GET /_ping ", 0) == 0)
            return {"HTTP/1.1 200 OK\r\nAPI-Version: " + api + "\r\nServer: Docker/99.0 (linux)\r\n" + conn +
                    "Content-Length: 2\r\n\r\nOK"};
        if (line.rfind("GET /version ", 0) == 0)
            return {http_ok(R"({"Version":"99.0","ApiVersion":")" + api + R"(","MinAPIVersion":")" + min_api + "\"}",
                            conn)};
        if (line.find("/info ") != std::string::npos) return {http_ok(R"({"ID":"XYZ"})", conn)};
        return {"HTTP/1.1 404 Not Found\r\n" + conn + "Content-Length: 0\r\n\r\n"};
    };
}

docker::Options opts(const std::string &path, std::chrono::milliseconds timeout = 1000ms) {
    docker::Options o;
    o.socket_path = path;
    o.timeout = timeout;
    return o;
}

TEST(DockerClientHttp, NegotiatesDownToTheEngineAndCapsAtClientMax) {
    tftest::LeakGuard guard;
    {
        ScriptedEngine old_engine(docker_like("1.41", "1.12"));
        docker::Client c(opts(old_engine.path()));
        EXPECT_EQ(c.negotiate().version, "99.0");
        EXPECT_EQ(c.api_version(), (docker::ApiVersion{1, 41}));
        // One round trip: /_ping, never /version (podman runs programs for it).
        EXPECT_EQ(old_engine.requests(), (std::vector<std::string>{"GET /_ping HTTP/1.1"}));
        EXPECT_EQ(c.info().id, "XYZ");
        auto reqs = old_engine.requests();
        ASSERT_FALSE(reqs.empty());
        EXPECT_EQ(reqs.back(), "GET /v1.41/info HTTP/1.1");
        // keep-alive: ping and info went over one connection
        EXPECT_EQ(old_engine.connections(), 1);
    }
    {
        ScriptedEngine new_engine(docker_like("1.60", "1.44"));
        docker::Client c(opts(new_engine.path()));
        c.info(); // negotiates on first versioned call
        EXPECT_EQ(c.api_version(), docker::max_api_version);
        EXPECT_EQ(new_engine.requests().back(), "GET /v1.52/info HTTP/1.1");
    }
    {
        // /_ping tells no minimum: the client speaks its highest version,
        // and an engine that wants more says so on the first versioned call.
        ScriptedEngine too_new(docker_like("1.70", "1.60"));
        docker::Client c(opts(too_new.path()));
        c.negotiate();
        EXPECT_EQ(c.api_version(), docker::max_api_version);
    }
    guard.check();
}

TEST(DockerClientHttp, ReconnectsWhenTheEngineClosedTheKeptConnection) {
    tftest::LeakGuard guard;
    {
        // Says nothing about closing, but hangs up after each answer.
        ScriptedEngine engine([](const std::string &line) -> std::vector<std::string> {
            static thread_local int served = 0;
            if (served++ > 0) return {};
            return docker_like("1.41", "1.12")(line);
        });
        docker::Client c(opts(engine.path()));
        EXPECT_NO_THROW(c.ping());
        EXPECT_NO_THROW(c.ping());
        EXPECT_NO_THROW(c.negotiate());
        EXPECT_GE(engine.connections(), 2);
    }
    {
        ScriptedEngine closing(docker_like("1.41", "1.12", true));
        docker::Client c(opts(closing.path()));
        EXPECT_NO_THROW(c.negotiate());
        EXPECT_NO_THROW(c.info());
        EXPECT_EQ(closing.connections(), 2);
    }
    guard.check();
}

TEST(DockerClientHttp, PingMustLookLikeDocker) {
    tftest::LeakGuard guard;
    {
        ScriptedEngine no_header([](const std::string &) -> std::vector<std::string> { return {http_ok("OK")}; });
        docker::Client c(opts(no_header.path()));
        EXPECT_EQ(error_code_of([&] { c.ping(); }), -EPROTO);
    }
    {
        ScriptedEngine podman([](const std::string &) -> std::vector<std::string> {
            return {"HTTP/1.1 200 OK\r\nAPI-Version: 1.41\r\nLibpod-Api-Version: 4.3.1\r\nContent-Length: 2\r\n\r\nOK"};
        });
        docker::Client c(opts(podman.path()));
        auto p = c.ping();
        EXPECT_TRUE(p.is_podman());
        EXPECT_EQ(p.libpod_api_version, "4.3.1");
    }
    {
        ScriptedEngine error500([](const std::string &) -> std::vector<std::string> {
            return {"HTTP/1.1 500 Internal Server Error\r\nAPI-Version: 1.41\r\nContent-Length: 0\r\n\r\n"};
        });
        docker::Client c(opts(error500.path()));
        EXPECT_EQ(error_code_of([&] { c.ping(); }), -EPROTO);
    }
    {
        ScriptedEngine truncated([](const std::string &) -> std::vector<std::string> {
            return {"HTTP/1.1 200 OK\r\nAPI-Version: 1.41\r\nContent-Length: 100\r\n\r\nOK", "<close>"};
        });
        docker::Client c(opts(truncated.path()));
        EXPECT_EQ(error_code_of([&] { c.ping(); }), -EPROTO);
    }
    guard.check();
}

TEST(DockerClientHttp, OversizedBodyIsRefused) {
    tftest::LeakGuard guard;
    {
        ScriptedEngine big([](const std::string &) -> std::vector<std::string> {
            return {"HTTP/1.1 200 OK\r\nAPI-Version: 1.41\r\nContent-Length: 2000000\r\n\r\n",
                    std::string(2000000, ' ')};
        });
        auto o = opts(big.path());
        o.max_body = 1u << 20;
        docker::Client c(o);
        EXPECT_EQ(error_code_of([&] { c.get("/containers/json", false); }), -EPROTO);
    }
    guard.check();
}

TEST(DockerClientHttp, SilentEngineTimesOut) {
    tftest::LeakGuard guard;
    {
        ScriptedEngine silent([](const std::string &) -> std::vector<std::string> { return {"<hold>"}; });
        docker::Client c(opts(silent.path(), 300ms));
        auto t0 = std::chrono::steady_clock::now();
        EXPECT_EQ(error_code_of([&] { c.ping(); }), -ETIMEDOUT);
        EXPECT_LT(std::chrono::steady_clock::now() - t0, tftest::hang_guard);
    }
    guard.check();
}

TEST(DockerClientHttp, ConnectErrorsCarryErrno) {
    tftest::LeakGuard guard;
    char templ[] = "/tmp/tf-ut-XXXXXX";
    std::string dir = ::mkdtemp(templ);
    EXPECT_EQ(error_code_of([&] { docker::Client(opts(dir + "/absent.sock")).ping(); }), -ENOENT);
    // a socket file nobody listens on any more
    {
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, (dir + "/dead.sock").c_str());
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
        ::close(fd);
    }
    EXPECT_EQ(error_code_of([&] { docker::Client(opts(dir + "/dead.sock")).ping(); }), -ECONNREFUSED);
    EXPECT_EQ(error_code_of([&] { docker::Client(opts("")).ping(); }), -EINVAL);
    std::filesystem::remove_all(dir);
    guard.check();
}

TEST(DockerClientHttp, SocketPathLongerThanSunPath) {
    tftest::LeakGuard guard;
    {
        ScriptedEngine deep(docker_like("1.41", "1.12"), "/" + std::string(60, 'a') + "/" + std::string(60, 'b'));
        ASSERT_GT(deep.path().size(), sizeof(sockaddr_un::sun_path));
        docker::Client c(opts(deep.path()));
        EXPECT_NO_THROW(c.negotiate());
    }
    guard.check();
}

std::string chunk(const std::string &data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return size + data + "\r\n";
}

TEST(DockerClientHttp, EventStreamAcrossChunks) {
    tftest::LeakGuard guard;
    {
        const std::string e1 = R"({"Type":"container","Action":"start","Actor":{"ID":"c1"}})";
        const std::string e2 = R"({"Type":"container","Action":"die","Actor":{"ID":"c2"}})";
        const std::string e3 = R"({"Type":"container","Action":"pause","Actor":{"ID":"c3"}})";
        ScriptedEngine engine([&](const std::string &line) -> std::vector<std::string> {
            if (line.find("/events") == std::string::npos) return docker_like("1.41", "1.12")(line);
            return {"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                    chunk(e1.substr(0, 10)), chunk(e1.substr(10) + "\n" + e2 + "\n" + e3.substr(0, 5)),
                    chunk(e3.substr(5) + "\n"), "0\r\n\r\n"};
        });
        docker::Client c(opts(engine.path()));
        std::vector<std::string> seen;
        bool subscribed = false;
        int code = error_code_of([&] {
            c.events(R"({"type":["container"]})", [&] { return subscribed = true; },
                     [&](const docker::Event &e) {
                         seen.push_back(e.action + ":" + e.id);
                         return true;
                     });
        });
        EXPECT_EQ(code, -EPIPE); // the engine ended the stream
        EXPECT_TRUE(subscribed);
        EXPECT_EQ(seen, (std::vector<std::string>{"start:c1", "die:c2", "pause:c3"}));
        auto reqs = engine.requests();
        EXPECT_EQ(reqs.back(), "GET /v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D HTTP/1.1");
    }
    guard.check();
}

TEST(DockerClientHttp, EventStreamGarbageAndOversize) {
    tftest::LeakGuard guard;
    for (const std::string &body : {std::string("\x01\x02 not json\n"), "{\"a\":\"" + std::string(5000, 'x')}) {
        ScriptedEngine engine([&](const std::string &line) -> std::vector<std::string> {
            if (line.find("/events") == std::string::npos) return docker_like("1.41", "1.12")(line);
            return {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunk(body), "<hold>"};
        });
        auto o = opts(engine.path());
        o.max_event = 1024;
        docker::Client c(o);
        EXPECT_EQ(error_code_of([&] {
                      c.events(
                          {}, [] { return true; }, [](const docker::Event &) { return true; });
                  }),
                  -EPROTO);
    }
    guard.check();
}

TEST(DockerClientHttp, CancelEndsABlockedEventStreamPromptly) {
    tftest::LeakGuard guard;
    {
        ScriptedEngine engine([&](const std::string &line) -> std::vector<std::string> {
            if (line.find("/events") == std::string::npos) return docker_like("1.41", "1.12")(line);
            return {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "<hold>"};
        });
        docker::Client c(opts(engine.path()));
        std::atomic<bool> subscribed{false};
        std::atomic<int> code{1};
        std::thread watcher([&] {
            code = error_code_of([&] {
                c.events(
                    {}, [&] { return subscribed = true; }, [](const docker::Event &) { return true; });
            });
        });
        ASSERT_TRUE(tftest::eventually([&] { return subscribed.load(); }));
        c.cancel();
        EXPECT_TRUE(tftest::eventually([&] { return code.load() != 1; }, tftest::hang_guard));
        watcher.join();
        EXPECT_EQ(code.load(), -ECANCELED);
        // and every later call fails the same way
        EXPECT_EQ(error_code_of([&] { c.ping(); }), -ECANCELED);
    }
    guard.check();
}

} // namespace
