// SPDX-License-Identifier: Apache-2.0
// `turtlefinder serve` as operators and programs use it: a real service
// process over a lab's real Docker on a real containerd (native and CRI),
// asked by curl (Debian's) over its unix socket and TCP, and by the CLI.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "containerd.hpp"
#include "cri_admin.hpp"
#include "event_view.hpp"
#include "lab.hpp"
#include "nested.hpp"
#include "systemd.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace lab = turtlefinder::lab;
namespace json = boost::json;

using tftest::cli;

std::string env_or_empty(const char *name) {
    const char *v = std::getenv(name);
    return v != nullptr ? v : "";
}

using tftest::slurp;

struct Answer {
    int status = 0;
    std::string body;
};

// curl's answer: `where` is "--unix-socket PATH" or a TCP base URL.
Answer curl(const std::vector<std::string> &how, const std::string &url, const std::vector<std::string> &extra = {}) {
    std::vector<std::string> args = {"curl", "-sS", "--max-time", "60", "-w", "\n%{http_code}"};
    args.insert(args.end(), how.begin(), how.end());
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(url);
    auto r = lab::run(args, {}, 90s);
    Answer a;
    auto nl = r.out.rfind('\n');
    if (nl == std::string::npos) return a;
    a.status = std::atoi(r.out.c_str() + nl + 1);
    a.body = r.out.substr(0, nl);
    return a;
}

// A `turtlefinder serve` child; its endpoints read from its log.
class Service {
public:
    Service(const lab::Lab &lab, const std::string &name, std::vector<std::string> extra = {}) {
        socket_ = lab.path(name + ".sock");
        log_ = lab.path(name + ".log");
        std::vector<std::string> args = {cli(),           "serve",       "--socket",           socket_,
                                         "--listen",      "127.0.0.1:0", "--discovery-period", "1000",
                                         "--online-wait", "5000"};
        args.insert(args.end(), extra.begin(), extra.end());
        process_ = lab::Process(lab::SpawnOptions{args, {}, log_, {}});
        bool up = tftest::eventually([&] { return slurp(log_).find("listening on tcp:") != std::string::npos; }, 30s);
        if (!up) throw lab::Error("serve did not start: " + slurp(log_));
        std::string log = slurp(log_);
        auto at = log.find("listening on tcp:") + std::string("listening on tcp:").size();
        url_ = "http://" + log.substr(at, log.find('\n', at) - at);
    }
    const std::string &socket() const { return socket_; }
    std::vector<std::string> unix_socket() const { return {"--unix-socket", socket_}; }
    const std::string &tcp_url() const { return url_; }
    lab::Process &process() { return process_; }
    std::string log() const { return slurp(log_); }

    Answer get(const std::string &path) const { return curl(unix_socket(), "http://localhost" + path); }
    bool ready() const { return get("/readyz").status == 200; }

private:
    std::string socket_, log_, url_;
    lab::Process process_;
};

// A raw connection to a unix socket, for what curl will not send.
class Raw {
public:
    explicit Raw(const std::string &path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (::connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
            throw std::runtime_error("connect " + path + ": " + std::strerror(errno));
        timeval tv{30, 0}; // a hang guard, not a goal
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~Raw() { ::close(fd_); }
    bool send(const std::string &data) {
        return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == ssize_t(data.size());
    }
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
    // Everything until the server closes (or the guard).
    std::string read_all(bool *closed = nullptr) {
        std::string out;
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                if (closed) *closed = n == 0 || errno == ECONNRESET;
                return out;
            }
            out.append(buf, static_cast<std::size_t>(n));
        }
    }

private:
    int fd_ = -1;
};

// One SSE event: its id and data.
struct Sse {
    std::string id;
    json::value data;
};

std::vector<Sse> parse_stream(const std::string &text) {
    std::vector<Sse> out;
    std::istringstream in(text);
    Sse current;
    std::string data;
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) {
            if (!data.empty()) {
                boost::system::error_code ec;
                current.data = json::parse(data, ec);
                if (!ec) out.push_back(current);
            }
            current = {};
            data.clear();
        } else if (line.rfind("id: ", 0) == 0) {
            current.id = line.substr(4);
        } else if (line.rfind("data: ", 0) == 0) {
            data += line.substr(6);
        }
    }
    return out;
}

// `curl -N` on /v1/events into a file.
class Subscriber {
public:
    Subscriber(const lab::Lab &lab, const std::string &socket, const std::string &name,
               const std::string &last_event_id = {}) {
        path_ = lab.path(name + ".sse");
        std::vector<std::string> args = {"curl", "-sS", "-N", "--unix-socket", socket};
        if (!last_event_id.empty()) args.insert(args.end(), {"-H", "Last-Event-ID: " + last_event_id});
        args.push_back("http://localhost/v1/events");
        process_ = lab::Process(lab::SpawnOptions{args, {}, path_, {}});
    }
    std::vector<Sse> events() const { return parse_stream(slurp(path_)); }
    std::string text() const { return slurp(path_); }
    void stop() { process_.stop(2s); }
    lab::Process &process() { return process_; }

private:
    std::string path_;
    lab::Process process_;
};

class Serve : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0 || !lab::which("dockerd") || !lab::which("containerd") || !lab::which("curl") ||
            !lab::which("podman") || !lab::which("systemd-socket-activate"))
            return;
        lab_ = new lab::Lab("serve");
        containerd_ = new lab::Containerd(*lab_);
        lab::DockerdConfig dc;
        dc.containerd_socket = containerd_->socket();
        dockerd_ = new lab::Dockerd(*lab_, dc);
        dockerd_->import_busybox();
        dockerd_->run_container({"--name", "steady", "--label", "com.docker.compose.project=shop"});
        containerd_->import_busybox("tfns");
        containerd_->run_task("tfns", "t1");
        containerd_->import_pause();
        containerd_->import_busybox("k8s.io");
        cri_ = new lab::CriAdmin(containerd_->socket());
        auto pod = cri_->run_pod("serve-pod", "testns", "uid-serve-1");
        auto c = cri_->create_container(pod, "sleeper", lab::Containerd::busybox_image, {"sleep", "infinity"});
        cri_->start_container(c);
        // KinD-like: containerd (native and CRI) inside a container of that Docker.
        nested_ = new lab::NestedContainerd(*lab_, lab::docker_api(*lab_, *dockerd_), "tf-kind");
        nested_->import_images("tfns");
        nested_->run_task("tfns", "inner");
        // podman behind systemd-socket-activate: the service activates it (and
        // its watch keeps it from idling out).
        podman_ = new lab::SocketActivate(lab::SocketActivate::podman(*lab_, lab_->path("pm/podman.sock"), 600));
        service_ = new Service(*lab_, "tf");
    }
    static void TearDownTestSuite() {
        delete service_;
        delete podman_;
        delete nested_;
        delete cri_;
        delete dockerd_;
        delete containerd_;
        delete lab_;
    }
    void SetUp() override {
        TF_REQUIRE_ROOT();
        if (lab_ == nullptr) TF_SKIP_OR_FAIL("dockerd, containerd or curl is not installed");
        ASSERT_TRUE(tftest::eventually([] { return service_->ready(); }, 30s)) << service_->log();
    }

    static bool mine(const std::string &api) {
        return api.ends_with(dockerd_->socket()) || api.ends_with(containerd_->socket()) || api == nested_->socket() ||
               api.ends_with(podman_->socket());
    }
    static bool ours(const json::object &engine) { return mine(std::string(engine.at("api").as_string())); }
    // Docker, containerd and its CRI, the nested containerd and its CRI, the activated podman.
    static constexpr int our_engines = 6;
    // The service's containers, once its view holds all our engines online.
    static json::value service_containers() {
        json::value doc;
        tftest::eventually(
            [&] {
                auto a = service_->get("/v1/containers");
                if (a.status != 200) return false;
                doc = json::parse(a.body);
                int online = 0;
                for (auto &e : doc.at("engines").as_array())
                    if (mine(std::string(e.at("api").as_string())) && e.at("state").as_string() == "online") ++online;
                return online == our_engines;
            },
            60s);
        return doc;
    }

    static inline lab::Lab *lab_ = nullptr;
    static inline lab::Containerd *containerd_ = nullptr;
    static inline lab::Dockerd *dockerd_ = nullptr;
    static inline lab::CriAdmin *cri_ = nullptr;
    static inline lab::NestedContainerd *nested_ = nullptr;
    static inline lab::SocketActivate *podman_ = nullptr;
    static inline Service *service_ = nullptr;
};

TEST_F(Serve, EachEndpointAnswersOverTheUnixSocketAndTcp) {
    for (const auto &how : {service_->unix_socket(), std::vector<std::string>{}}) {
        std::string base = how.empty() ? service_->tcp_url() : "http://localhost";
        SCOPED_TRACE(how.empty() ? "tcp " + base : "unix socket");
        auto health = curl(how, base + "/healthz");
        EXPECT_EQ(health.status, 200);
        EXPECT_EQ(json::parse(health.body).at("status").as_string(), "ok");
        EXPECT_EQ(curl(how, base + "/readyz").status, 200);
        for (const char *path : {"/v1/containers", "/v1/engines"}) {
            auto a = curl(how, base + path);
            ASSERT_EQ(a.status, 200) << path << a.body;
            EXPECT_EQ(tftest::schema_errors(a.body), "") << path;
            auto doc = json::parse(a.body);
            EXPECT_EQ(doc.at("schema").as_string(), "turtlefinder/v1");
            EXPECT_TRUE(doc.at("service").at("discovered").is_string()) << a.body;
            EXPECT_TRUE(doc.at("engines").is_array());
        }
        auto plugins = curl(how, base + "/v1/plugins");
        ASSERT_EQ(plugins.status, 200);
        EXPECT_EQ(tftest::schema_errors(plugins.body), "");
        std::set<std::string> loaded;
        auto plugins_doc = json::parse(plugins.body);
        for (auto &p : plugins_doc.at("plugins").as_array())
            if (p.at("loaded").as_bool()) loaded.insert(std::string(p.at("name").as_string()));
        EXPECT_TRUE(loaded.contains("moby") && loaded.contains("containerd")) << plugins.body;
        // Unknown paths and methods: JSON errors.
        auto missing = curl(how, base + "/v2/nothing");
        EXPECT_EQ(missing.status, 404);
        EXPECT_EQ(json::parse(missing.body).at("status").as_int64(), 404);
        auto post = curl(how, base + "/v1/containers", {"-X", "POST"});
        EXPECT_EQ(post.status, 405);
        EXPECT_EQ(json::parse(post.body).at("status").as_int64(), 405);
        auto head = lab::run([&] {
            std::vector<std::string> a = {"curl", "-sS", "-I", "--max-time", "30"};
            a.insert(a.end(), how.begin(), how.end());
            a.push_back(base + "/v1/containers");
            return a;
        }());
        EXPECT_NE(head.out.find("200 OK"), std::string::npos) << head.out;
        // An event stream answers with the state at once.
        auto sse = lab::run([&] {
            std::vector<std::string> a = {"curl", "-sS", "-N", "--max-time", "3"};
            a.insert(a.end(), how.begin(), how.end());
            a.push_back(base + "/v1/events");
            return a;
        }());
        // (Changes may follow at once: other engines on this host come and go.)
        auto events = parse_stream(sse.out);
        ASSERT_FALSE(events.empty()) << sse.out;
        EXPECT_TRUE(events.front().data.at("initial").as_bool()) << sse.out;
        bool live = false;
        for (auto &e : events) {
            EXPECT_FALSE(e.id.empty());
            if (!e.data.at("initial").as_bool()) live = true;
            EXPECT_TRUE(!live || !e.data.at("initial").as_bool()) << "the state comes first\n" << sse.out;
        }
    }
}

TEST_F(Serve, ContainersEqualTheCliOneShot) {
    service_containers();
    // A one-shot on this loaded machine may miss an engine whose probe timed
    // out (it warns and lists it as a candidate): asked until it has them all.
    json::value own;
    lab::RunResult r;
    ASSERT_TRUE(tftest::eventually(
        [&] {
            r = lab::run({cli(), "--json", "--no-service", "--online-wait", "5000"}, {}, 60s);
            if (r.exit_code != 0) return false;
            own = json::parse(r.out);
            return tftest::document_view(own, ours).engines.size() == std::size_t(our_engines);
        },
        120s, 1s))
        << r.out << r.err;
    auto served = service_containers();
    EXPECT_FALSE(own.as_object().contains("service"));
    tftest::EventView a = tftest::document_view(served, ours), b = tftest::document_view(own, ours);
    EXPECT_EQ(a, b) << "service:\n" << describe(a) << "CLI:\n" << describe(b);
    EXPECT_EQ(a.engines.size(), std::size_t(our_engines)) << describe(a);
    // steady, tfns/t1, the pod and its container, the engine container, the nested task
    EXPECT_GE(a.containers.size(), 6u) << describe(a);
    bool nested = false;
    for (auto &[key, place] : a.engines) nested = nested || place.starts_with("tf-kind|");
    EXPECT_TRUE(nested) << "the nested engines sit in their container\n" << describe(a);
}

TEST_F(Serve, TheCliPrintsTheSameWithAndWithoutTheService) {
    service_containers();
    for (std::vector<std::string> command : {std::vector<std::string>{}, std::vector<std::string>{"engines"}}) {
        auto via = command, own = command;
        via.insert(via.begin(), cli());
        own.insert(own.begin(), cli());
        via.insert(via.end(), {"--json", "--service-socket", service_->socket()});
        own.insert(own.end(), {"--json", "--no-service", "--online-wait", "5000"});
        // (Asked again while a probe on this loaded machine missed one of our engines.)
        lab::RunResult ro;
        json::value dov;
        ASSERT_TRUE(tftest::eventually(
            [&] {
                ro = lab::run(own, {}, 60s);
                if (ro.exit_code != 0) return false;
                dov = json::parse(ro.out);
                return tftest::document_view(dov, ours).engines.size() == std::size_t(our_engines);
            },
            120s, 1s))
            << ro.out << ro.err;
        auto rv = lab::run(via, {}, 60s);
        ASSERT_EQ(rv.exit_code, 0) << rv.err;
        auto dv = json::parse(rv.out);
        EXPECT_TRUE(dv.as_object().contains("service")) << "the service's view is marked";
        EXPECT_FALSE(dov.as_object().contains("service"));
        EXPECT_EQ(tftest::document_view(dv, ours), tftest::document_view(dov, ours)) << rv.out << "\n" << ro.out;
    }
    // The tree, too: the lines of our engines and containers.
    auto tv = lab::run({cli(), "--service-socket", service_->socket()}, {{"NO_COLOR", "1"}}, 60s);
    auto to = lab::run({cli(), "--no-service", "--online-wait", "5000"}, {{"NO_COLOR", "1"}}, 60s);
    ASSERT_EQ(tv.exit_code, 0) << tv.err;
    for (const auto &needle : {dockerd_->socket(), containerd_->socket(), std::string("steady"), std::string("tfns/t1"),
                               std::string("pod testns/serve-pod")}) {
        EXPECT_NE(tv.out.find(needle), std::string::npos) << needle << "\n" << tv.out;
        EXPECT_NE(to.out.find(needle), std::string::npos) << needle << "\n" << to.out;
    }
    // No service there: the CLI discovers by itself, at once.
    auto none = lab::run({cli(), "--json", "--service-socket", lab_->path("nothing.sock"), "--online-wait", "0"});
    ASSERT_EQ(none.exit_code, 0) << none.err;
    EXPECT_FALSE(json::parse(none.out).as_object().contains("service"));
}

TEST_F(Serve, EventsFollowAContainersLifeInOrderAndResumeWithLastEventId) {
    service_containers();
    Subscriber steady(*lab_, service_->socket(), "steady");
    Subscriber dropped(*lab_, service_->socket(), "dropped");
    auto has_initial = [](const Subscriber &s) {
        auto events = s.events();
        return !events.empty();
    };
    ASSERT_TRUE(tftest::eventually([&] { return has_initial(steady) && has_initial(dropped); }, 20s));
    // The dropping client goes away after the state, remembering its last id.
    dropped.stop();
    std::string last_id = dropped.events().back().id;

    auto id = dockerd_->run_container({"--name", "lifecycle"});
    dockerd_->docker_ok({"pause", id});
    dockerd_->docker_ok({"unpause", id});
    dockerd_->docker_ok({"rm", "-f", id});

    auto kinds_for = [&](const std::vector<Sse> &events) {
        std::vector<std::string> kinds;
        for (auto &e : events)
            if (e.data.as_object().contains("container") && e.data.at("container").at("id").as_string() == id)
                kinds.emplace_back(e.data.at("event").as_string());
        return kinds;
    };
    const std::vector<std::string> life = {"started", "paused", "unpaused", "exited"};
    ASSERT_TRUE(tftest::eventually([&] { return kinds_for(steady.events()) == life; }, 30s)) << steady.text();

    // Reconnecting with the last id it saw: exactly what came after it, no state again.
    Subscriber resumed(*lab_, service_->socket(), "resumed", last_id);
    ASSERT_TRUE(tftest::eventually([&] { return kinds_for(resumed.events()) == life; }, 30s)) << resumed.text();
    for (auto &e : resumed.events()) EXPECT_FALSE(e.data.at("initial").as_bool()) << "resumed, not a snapshot";
    auto all = steady.events();
    std::string lines; // every event as one JSON line: the --watch --json objects
    for (auto &e : all) lines += json::serialize(e.data) + "\n";
    EXPECT_EQ(tftest::schema_errors(lines), "");
    std::vector<std::string> after;
    bool past = false;
    for (auto &e : all) {
        if (past) after.push_back(e.id);
        if (e.id == last_id) past = true;
    }
    std::vector<std::string> got;
    for (auto &e : resumed.events()) got.push_back(e.id);
    // The steady client may have more by now; the resumed one has the same from the start.
    ASSERT_LE(got.size(), after.size() + 8);
    for (std::size_t i = 0; i < std::min(got.size(), after.size()); ++i) EXPECT_EQ(got[i], after[i]);

    // An id no longer (or never) buffered: a fresh snapshot.
    Subscriber unknown(*lab_, service_->socket(), "unknown", "12");
    ASSERT_TRUE(tftest::eventually([&] { return !unknown.events().empty(); }, 20s));
    EXPECT_TRUE(unknown.events().front().data.at("initial").as_bool());

    // Replaying the stream rebuilds what /v1/containers shows.
    ASSERT_TRUE(tftest::eventually(
        [&] {
            tftest::EventView replayed;
            for (auto &e : steady.events()) tftest::apply_event(replayed, e.data, ours);
            return replayed == tftest::document_view(json::parse(service_->get("/v1/containers").body), ours);
        },
        20s))
        << steady.text();
    steady.stop();
    resumed.stop();
    unknown.stop();
}

TEST_F(Serve, TheCliWatchesThroughTheService) {
    service_containers();
    std::string log = lab_->path("watch-via.log");
    lab::Process watch(
        lab::SpawnOptions{{cli(), "--watch", "--json", "--service-socket", service_->socket()}, {}, log, {}});
    auto lines = [&] {
        std::vector<json::value> out;
        std::istringstream in(slurp(log));
        for (std::string line; std::getline(in, line);) {
            boost::system::error_code ec;
            auto v = json::parse(line, ec);
            if (!ec && v.is_object()) out.push_back(std::move(v));
        }
        return out;
    };
    // The state first, as the service's stream tells it: our engines among it.
    ASSERT_TRUE(tftest::eventually(
        [&] {
            int ours = 0;
            for (auto &v : lines())
                if (v.at("initial").as_bool() && v.at("event").as_string() == "engine-found" &&
                    mine(std::string(v.at("engine").at("api").as_string())))
                    ++ours;
            return ours == our_engines;
        },
        20s))
        << slurp(log);
    auto id = dockerd_->run_container({"--name", "watched-via"});
    EXPECT_TRUE(tftest::eventually(
        [&] {
            for (auto &v : lines())
                if (v.at("event").as_string() == "started" && v.at("container").at("id").as_string() == id) return true;
            return false;
        },
        20s))
        << slurp(log);
    int status = watch.stop(10s, SIGTERM);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
    dockerd_->docker_ok({"rm", "-f", id});
}

TEST_F(Serve, HostileClientsAreCutOffByTheLimitsWhileOthersAreServed) {
    Service small(*lab_, "small",
                  {"--header-timeout", "1000", "--idle-timeout", "2000", "--max-header-bytes", "2048",
                   "--max-connections", "16", "--max-sse-subscribers", "2"});
    ASSERT_TRUE(tftest::eventually([&] { return small.ready(); }, 30s)) << small.log();
    {
        // Slow loris: a head trickled in, one byte at a time, is cut off at the header timeout.
        Raw loris(small.socket());
        std::string head = "GET /v1/containers HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        bool cut = false;
        auto start = std::chrono::steady_clock::now();
        for (std::size_t i = 0; std::chrono::steady_clock::now() - start < tftest::hang_guard; ++i) {
            if (!loris.send(std::string(1, i < head.size() ? head[i] : 'a'))) {
                cut = true;
                break;
            }
            // Meanwhile a normal client is served.
            if (i % 10 == 0) {
                EXPECT_EQ(small.get("/healthz").status, 200);
            }
            std::this_thread::sleep_for(100ms);
        }
        EXPECT_TRUE(cut) << "a trickling client was never cut off";
    }
    {
        // Oversized head: 431.
        Raw big(small.socket());
        big.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
        bool closed = false;
        EXPECT_NE(big.read_all(&closed).find(" 431 "), std::string::npos);
        EXPECT_TRUE(closed);
    }
    {
        // Garbage: 400 and closed.
        Raw garbage(small.socket());
        // A TLS hello's first bytes (NULs inside), then text: its length from the array.
        static constexpr char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n";
        garbage.send(std::string(hello, sizeof hello - 1));
        bool closed = false;
        EXPECT_NE(garbage.read_all(&closed).find(" 400 "), std::string::npos);
        EXPECT_TRUE(closed);
    }
    {
        // Half-closed: the request is answered, then the connection ends.
        Raw half(small.socket());
        half.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        half.shutdown_write();
        bool closed = false;
        auto answer = half.read_all(&closed);
        EXPECT_NE(answer.find(" 200 "), std::string::npos) << answer;
        EXPECT_TRUE(closed);
        // Silent after connecting: cut off at the header timeout.
        Raw silent(small.socket());
        EXPECT_EQ(silent.read_all(&closed), "");
        EXPECT_TRUE(closed);
    }
    {
        // Too many connections: the one over the limit is told 503 and closed
        // (a service of its own, whose idle connections outlast the test).
        Service crowded(*lab_, "crowded", {"--max-connections", "16", "--header-timeout", "60000"});
        ASSERT_TRUE(tftest::eventually([&] { return crowded.ready(); }, 30s)) << crowded.log();
        std::vector<std::unique_ptr<Raw>> idle;
        for (int i = 0; i < 16; ++i) idle.push_back(std::make_unique<Raw>(crowded.socket()));
        Raw over(crowded.socket());
        bool closed = false;
        EXPECT_NE(over.read_all(&closed).find(" 503 "), std::string::npos);
        EXPECT_TRUE(closed);
        idle.clear();
        EXPECT_TRUE(tftest::eventually([&] { return crowded.get("/healthz").status == 200; }, 10s));
    }
    {
        // Too many event stream subscribers: 503 for the third.
        Subscriber a(*lab_, small.socket(), "sa"), b(*lab_, small.socket(), "sb");
        ASSERT_TRUE(tftest::eventually([&] { return !a.events().empty() && !b.events().empty(); }, 20s));
        auto third = small.get("/v1/events");
        EXPECT_EQ(third.status, 503) << third.body;
    }
    EXPECT_EQ(small.get("/healthz").status, 200);
    EXPECT_TRUE(small.process().running());
}

TEST_F(Serve, SigtermDrainsAndExitsZero) {
    Service doomed(*lab_, "doomed");
    ASSERT_TRUE(tftest::eventually([&] { return doomed.ready(); }, 30s)) << doomed.log();
    Subscriber stream(*lab_, doomed.socket(), "doomed");
    ASSERT_TRUE(tftest::eventually([&] { return !stream.events().empty(); }, 20s));
    Raw idle(doomed.socket()); // a kept-open connection that asks nothing
    int status = doomed.process().stop(20s, SIGTERM);
    ASSERT_TRUE(WIFEXITED(status)) << "killed instead of draining: " << status << "\n" << doomed.log();
    EXPECT_EQ(WEXITSTATUS(status), 0) << doomed.log();
    EXPECT_TRUE(stream.process().wait(10s).has_value()) << "the event stream did not end";
    EXPECT_FALSE(std::filesystem::exists(doomed.socket())) << "the socket file stays behind";
}

TEST_F(Serve, SystemdSocketActivationStartsServeOnTheFirstConnection) {
    if (!lab::which("systemd-socket-activate")) {
        TF_SKIP_OR_FAIL("systemd-socket-activate is not installed");
    }
    std::string socket = lab_->path("act/tf.sock");
    lab::SocketActivate activate(*lab_, socket, {cli(), "serve", "--socket", "", "--online-wait", "5000"},
                                 {{"TURTLEFINDER_PLUGIN_PATH", env_or_empty("TURTLEFINDER_PLUGIN_PATH")}});
    EXPECT_NE(lab::comm_of(activate.pid()), "turtlefinder") << "started before the first connection";
    auto health = curl({"--unix-socket", socket}, "http://localhost/healthz");
    EXPECT_EQ(health.status, 200) << health.body;
    EXPECT_EQ(lab::comm_of(activate.pid()), "turtlefinder");
    ASSERT_TRUE(tftest::eventually(
        [&] {
            return curl({"--unix-socket", socket}, "http://localhost/readyz").status == 200;
        },
        30s));
    auto doc = json::parse(curl({"--unix-socket", socket}, "http://localhost/v1/containers").body);
    EXPECT_TRUE(doc.as_object().contains("service"));
    int status = activate.process().stop(20s, SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

} // namespace
