// SPDX-License-Identifier: Apache-2.0
// `turtlefinder serve` read by the clients operators put in front of it: a
// real Prometheus scraping /metrics over TCP, and a real browser (headless
// Chromium) showing the live page — over a lab with Docker and a
// docker-in-docker inside it.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>

#include "lab.hpp"
#include "nested.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace lab = turtlefinder::lab;
namespace json = boost::json;

using tftest::cli;

using tftest::slurp;

// A TCP port free on loopback right now.
int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
        ::close(fd);
        throw lab::Error("no free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

// GET url with curl; the body, or "" on any failure.
std::string http_get(const std::string &url, const std::vector<std::string> &extra = {}) {
    std::vector<std::string> args = {"curl", "-sS", "--fail", "--max-time", "30"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(url);
    auto r = lab::run(args, {}, 60s);
    return r.ok() ? r.out : "";
}

// The first capture of `pattern` in the file at `path`, once it shows.
std::string wait_in_log(const std::string &path, const std::string &pattern, const std::string &what) {
    std::smatch m;
    std::string text;
    bool found = tftest::eventually(
        [&] {
            text = slurp(path);
            return std::regex_search(text, m, std::regex(pattern));
        },
        60s, 50ms);
    if (!found) throw lab::Error(what + " did not start: " + text);
    return m[1];
}

// A page's DevTools connection: evaluates JavaScript in it.
class DevTools {
public:
    explicit DevTools(const std::string &ws_url) : ws_(ioc_) {
        std::smatch m;
        if (!std::regex_match(ws_url, m, std::regex(R"(ws://([^:/]+):(\d+)(/.*))")))
            throw lab::Error("not a DevTools url: " + ws_url);
        boost::asio::ip::tcp::resolver resolver(ioc_);
        boost::beast::get_lowest_layer(ws_).connect(resolver.resolve(m[1].str(), m[2].str()));
        ws_.handshake(m[1].str() + ":" + m[2].str(), m[3].str());
    }
    ~DevTools() {
        boost::system::error_code ignored;
        ws_.close(boost::beast::websocket::close_code::normal, ignored);
    }

    // The value of `expression` (a string expression).
    std::string eval(const std::string &expression) {
        json::object params{{"expression", expression}, {"returnByValue", true}};
        json::object call{{"id", ++id_}, {"method", "Runtime.evaluate"}, {"params", std::move(params)}};
        ws_.write(boost::asio::buffer(json::serialize(call)));
        while (true) {
            boost::beast::flat_buffer buffer;
            ws_.read(buffer);
            auto reply = json::parse(boost::beast::buffers_to_string(buffer.data()));
            if (!reply.is_object() || !reply.as_object().contains("id") || reply.at("id").as_int64() != id_) continue;
            auto &value = reply.at("result").at("result");
            if (!value.as_object().contains("value") || !value.at("value").is_string())
                throw lab::Error("evaluation failed: " + json::serialize(reply));
            return std::string(value.at("value").as_string());
        }
    }

private:
    boost::asio::io_context ioc_;
    boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
    std::int64_t id_ = 0;
};

class ServeClients : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0 || !lab::which("dockerd")) return;
        lab_ = new lab::Lab("clients");
        dockerd_ = new lab::Dockerd(*lab_);
        dockerd_->import_busybox();
        dockerd_->run_container({"--name", "tf-clients-web"});
        dind_ = new lab::NestedDockerd(*lab_, lab::docker_api(*lab_, *dockerd_), "tf-clients-dind");
        dind_->run_busybox("tf-clients-inner");
        std::string log = lab_->path("serve.log");
        service_ =
            new lab::Process(lab::SpawnOptions{{cli(), "serve", "--socket", lab_->path("serve.sock"), "--listen",
                                                "127.0.0.1:0", "--discovery-period", "1000", "--online-wait", "5000"},
                                               {},
                                               log,
                                               {}});
        address_ = wait_in_log(log, R"(listening on tcp:(\S+))", "turtlefinder serve");
        bool ready = tftest::eventually([] { return !http_get("http://" + address_ + "/readyz").empty(); }, 60s, 100ms);
        if (!ready) throw lab::Error("turtlefinder serve never became ready: " + slurp(log));
    }
    static void TearDownTestSuite() {
        delete service_;
        delete dind_;
        delete dockerd_;
        delete lab_;
    }
    void SetUp() override {
        TF_REQUIRE_ROOT();
        if (lab_ == nullptr) TF_SKIP_OR_FAIL("dockerd is not installed");
    }

    // Running containers of our outer and inner Docker, as the engines say.
    static std::size_t running(const std::string &where) {
        auto ids = where == "outer" ? dockerd_->docker_ok({"ps", "-q"}) : dind_->docker_ok({"ps", "-q"});
        std::istringstream in(ids);
        std::size_t n = 0;
        for (std::string id; in >> id;) ++n;
        return n;
    }

    static inline lab::Lab *lab_ = nullptr;
    static inline lab::Dockerd *dockerd_ = nullptr;
    static inline lab::NestedDockerd *dind_ = nullptr;
    static inline lab::Process *service_ = nullptr;
    static inline std::string address_; // the service's ADDR:PORT
};

TEST_F(ServeClients, PrometheusScrapesTheLabsContainersPerEngine) {
    if (!lab::which("prometheus")) TF_SKIP_OR_FAIL("prometheus is not installed");
    int port = free_port();
    std::string dir = lab_->mkdir("prometheus");
    std::string config = lab_->write_file("prometheus/prometheus.yml", "global:\n"
                                                                       "  scrape_interval: 1s\n"
                                                                       "scrape_configs:\n"
                                                                       "  - job_name: turtlefinder\n"
                                                                       "    static_configs:\n"
                                                                       "      - targets: ['" +
                                                                           address_ + "']\n");
    lab::Process prometheus(
        lab::SpawnOptions{{"prometheus", "--config.file=" + config, "--storage.tsdb.path=" + dir + "/data",
                           "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                          {},
                          dir + "/prometheus.log",
                          dir});
    const std::string api = "http://127.0.0.1:" + std::to_string(port) + "/api/v1/query";
    auto query = [&](const std::string &promql) {
        auto body = http_get(api, {"--data-urlencode", "query=" + promql});
        if (body.empty()) return json::array{};
        return json::parse(body).at("data").at("result").as_array();
    };
    // Two scrapes, both successful.
    bool scraped = tftest::eventually(
        [&] {
            auto r = query("sum_over_time(up{job=\"turtlefinder\"}[5m])");
            return !r.empty() && std::stod(std::string(r[0].at("value").as_array()[1].as_string())) >= 2;
        },
        120s, 200ms);
    ASSERT_TRUE(scraped) << slurp(dir + "/prometheus.log");

    // Our two Docker engines by their API path: the outer one's socket, and
    // the inner one's, reached through the dind container's root.
    std::map<std::string, std::string> series; // where → value
    auto collect = [&] {
        series.clear();
        for (auto &s : query("turtlefinder_containers{engine_type=\"docker.com\",state=\"running\"}")) {
            std::string path(s.at("metric").at("engine_api").as_string());
            std::string value(s.at("value").as_array()[1].as_string());
            if (path.ends_with(dockerd_->socket())) series["outer"] = value;
            if (path.find("/proc/" + std::to_string(dind_->pid()) + "/root/") == 0) series["inner"] = value;
        }
        return series["outer"] == std::to_string(running("outer")) &&
               series["inner"] == std::to_string(running("inner"));
    };
    EXPECT_TRUE(tftest::eventually(collect, 60s, 500ms))
        << "outer: " << series["outer"] << " (docker ps: " << running("outer") << "), inner: " << series["inner"]
        << " (docker ps: " << running("inner") << ")\n"
        << http_get("http://" + address_ + "/metrics");
    auto build = query("turtlefinder_build_info");
    ASSERT_EQ(build.size(), 1u);
    EXPECT_FALSE(build[0].at("metric").at("version").as_string().empty());
    EXPECT_FALSE(query("turtlefinder_discovery_duration_seconds_count > 0").empty());
    EXPECT_FALSE(query("turtlefinder_http_requests_total{path=\"/metrics\",code=\"200\"} > 0").empty());
    prometheus.stop();
}

TEST_F(ServeClients, ABrowserShowsTheTreeAndAContainerStartedAfterwards) {
    if (!lab::which("chromium")) TF_SKIP_OR_FAIL("chromium is not installed");
    tftest::LeakGuard leaks;
    std::string log = lab_->path("chromium.log");
    lab::Process browser(lab::SpawnOptions{{"chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                            "--remote-debugging-port=0", "--remote-allow-origins=*",
                                            "--user-data-dir=" + lab_->mkdir("chromium"), "http://" + address_ + "/"},
                                           {},
                                           log,
                                           {}});
    std::string port = wait_in_log(log, R"(DevTools listening on ws://[^:]+:(\d+)/)", "chromium");
    std::string ws;
    ASSERT_TRUE(tftest::eventually(
        [&] {
            auto list = http_get("http://127.0.0.1:" + port + "/json/list");
            if (list.empty()) return false;
            auto targets = json::parse(list);
            for (auto &target : targets.as_array())
                if (target.at("type").as_string() == "page" &&
                    std::string_view(target.at("url").as_string()).starts_with("http://" + address_))
                    ws = target.at("webSocketDebuggerUrl").as_string();
            return !ws.empty();
        },
        60s, 100ms))
        << slurp(log);
    {
        DevTools page(ws);
        // Where each container is: its name, and the name of the container
        // whose nested engine holds it ("" at the top).
        const std::string tree = R"((() => {
            const status = document.getElementById("status");
            if (!status) return JSON.stringify({connected: "loading", containers: [], engines: []});
            const within = node => (node.closest(".container") || {dataset: {}}).dataset.name || "";
            return JSON.stringify({
                connected: status.dataset.connected,
                containers: [...document.querySelectorAll(".container")].map(c => ({
                    name: c.dataset.name, state: c.dataset.state, within: within(c.parentElement)})),
                engines: [...document.querySelectorAll(".engine")].map(e => ({
                    type: e.dataset.type, state: e.dataset.state, within: within(e)}))});
        })())";
        json::value shown;
        auto shows = [&](const std::string &name, const std::string &within) {
            for (auto &c : shown.at("containers").as_array())
                if (c.at("name").as_string() == name && c.at("within").as_string() == within) return true;
            return false;
        };
        auto look = [&] {
            shown = json::parse(page.eval(tree));
            return shown.at("connected").as_string() == "true";
        };
        bool nested = tftest::eventually(
            [&] {
                return look() && shows("tf-clients-web", "") && shows(dind_->name(), "") &&
                       shows("tf-clients-inner", dind_->name());
            },
            60s, 200ms);
        EXPECT_TRUE(nested) << json::serialize(shown);
        std::cout << "[ info ] the page shows " << json::serialize(shown) << '\n';
        bool inner_engine_online = false;
        for (auto &e : shown.at("engines").as_array())
            if (e.at("within").as_string() == dind_->name() && e.at("type").as_string() == "docker.com")
                inner_engine_online = e.at("state").as_string() == "online";
        EXPECT_TRUE(inner_engine_online) << "the inner dockerd, online, under its container: "
                                         << json::serialize(shown);

        // A container started now shows up in the same page: no reload (the
        // mark set on the window stays).
        page.eval("window.tfNoReload = 'kept'; 'set'");
        auto late = dockerd_->run_container({"--name", "tf-clients-late"});
        EXPECT_TRUE(tftest::eventually([&] { return look() && shows("tf-clients-late", ""); }, 60s, 200ms))
            << json::serialize(shown);
        EXPECT_EQ(page.eval("String(window.tfNoReload)"), "kept");
        // and one that stops goes.
        dockerd_->docker_ok({"rm", "-f", late});
        EXPECT_TRUE(tftest::eventually([&] { return look() && !shows("tf-clients-late", ""); }, 60s, 200ms))
            << json::serialize(shown);
    }
    browser.stop();
    leaks.check();
}

} // namespace
