// SPDX-License-Identifier: Apache-2.0
// The node service in-process: its settings, its routing, and a Service on a
// Finder without engines, asked over its unix socket, stopped, and leaving
// no thread or fd behind. A plugin file dropped into a plugin directory is
// picked up while it runs.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/json.hpp>
#include <turtlefinder/finder.hpp>

#include "routes.hpp"
#include "service.hpp"
#include "settings.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace serve = turtlefinder::serve;
namespace json = boost::json;
namespace fs = std::filesystem;

std::string write(const tftest::TempDir &dir, const std::string &name, const std::string &text) {
    std::string path = dir.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
}

// The error load_config + apply_config give for a file, or "".
std::string config_error(const std::string &text, serve::Settings &settings) {
    tftest::TempDir dir;
    std::string path = write(dir, "tf.json", text);
    try {
        turtlefinder::Options options;
        auto file = turtlefinder::load_config(path, options);
        if (!file.serve.empty()) serve::apply_config(path, file.serve, settings);
    } catch (const std::runtime_error &e) {
        std::string what = e.what();
        EXPECT_EQ(what.rfind(path, 0), 0u) << "the message names the file: " << what;
        return what;
    }
    return {};
}

TEST(ServeSettings, TheConfigFilesServeObject) {
    serve::Settings s;
    EXPECT_EQ(config_error(R"({"serve": {"socket": "/tmp/x.sock", "listen": ["9120"], "max_connections": 7,
                                         "idle_timeout_ms": 1500, "socket_group": "adm"}})",
                           s),
              "");
    EXPECT_EQ(s.socket, "/tmp/x.sock");
    EXPECT_EQ(s.listen, std::vector<std::string>{"9120"});
    EXPECT_EQ(s.max_connections, 7);
    EXPECT_EQ(s.idle_timeout, 1500ms);
    EXPECT_EQ(s.socket_group, "adm");

    serve::Settings unchanged;
    auto e = config_error(R"({"serve": {"max_connections": 3, "max_conections": 7}})", unchanged);
    EXPECT_NE(e.find("\"serve.max_conections\": unknown key"), std::string::npos) << e;
    EXPECT_EQ(unchanged.max_connections, serve::Settings{}.max_connections) << "a bad object changes nothing";
    e = config_error(R"({"serve": {"header_timeout_ms": 0}})", unchanged);
    EXPECT_NE(e.find("\"serve.header_timeout_ms\": expected an integer from 100"), std::string::npos) << e;
    e = config_error(R"({"serve": {"threads": "two"}})", unchanged);
    EXPECT_NE(e.find("\"serve.threads\": expected an integer"), std::string::npos) << e;
    e = config_error(R"({"serve": {"socket": "relative.sock"}})", unchanged);
    EXPECT_NE(e.find("\"serve.socket\": expected an absolute path"), std::string::npos) << e;
    e = config_error(R"({"serve": {"listen": [9120]}})", unchanged);
    EXPECT_NE(e.find("\"serve.listen\": expected an array"), std::string::npos) << e;
    e = config_error(R"({"serve": 3})", unchanged);
    EXPECT_NE(e.find("\"serve\": expected an object"), std::string::npos) << e;
}

TEST(ServeSettings, FlagValues) {
    serve::Settings s;
    const auto &limits = serve::limits();
    auto max_connections = std::find_if(
        limits.begin(), limits.end(), [](const serve::Limit &l) { return std::string(l.flag) == "--max-connections"; });
    ASSERT_NE(max_connections, limits.end());
    EXPECT_FALSE(serve::parse_limit(*max_connections, "12", s));
    EXPECT_EQ(s.max_connections, 12);
    for (const char *bad : {"", "0", "many", "12x", "99999999999999999999"}) {
        auto error = serve::parse_limit(*max_connections, bad, s);
        ASSERT_TRUE(error) << bad;
        EXPECT_NE(error->find("--max-connections takes an integer from 1"), std::string::npos) << *error;
    }
    EXPECT_EQ(s.max_connections, 12);
}

TEST(ServeRoutes, PathsMethodsAndErrors) {
    std::vector<serve::Route> routes = {{"/healthz", serve::Route::Kind::reply, {}},
                                        {"/v1/events", serve::Route::Kind::events, {}}};
    namespace http = boost::beast::http;
    auto r = serve::route(routes, http::verb::get, "/healthz?verbose=1");
    ASSERT_NE(r.route, nullptr);
    EXPECT_EQ(r.route->path, "/healthz");
    EXPECT_NE(serve::route(routes, http::verb::head, "/v1/events").route, nullptr);
    auto post = serve::route(routes, http::verb::post, "/healthz");
    ASSERT_TRUE(post.error);
    EXPECT_EQ(post.error->status, 405u);
    EXPECT_EQ(post.error->headers.at(0).second, "GET, HEAD");
    auto missing = serve::route(routes, http::verb::get, "/nope");
    ASSERT_TRUE(missing.error);
    EXPECT_EQ(missing.error->status, 404u);
    EXPECT_EQ(json::parse(missing.error->body).at("error").as_string(), "no such resource: /nope");
    auto bad = serve::route(routes, http::verb::get, "http://elsewhere/healthz");
    ASSERT_TRUE(bad.error);
    EXPECT_EQ(bad.error->status, 400u);
    // Any bytes in a path still make valid JSON.
    auto odd = serve::route(routes, http::verb::get, "/\xff\xfe");
    ASSERT_TRUE(odd.error);
    boost::system::error_code ec;
    json::parse(odd.error->body, ec);
    EXPECT_FALSE(ec) << odd.error->body;
}

// GET over a unix socket with Connection: close: the whole answer, or what
// came until `until` did.
std::string get(const std::string &socket, const std::string &path, const std::string &until = {}) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
    timeval tv{30, 0}; // a hang guard
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) {
        std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
        char buf[4096];
        for (ssize_t n;
             (until.empty() || out.find(until) == std::string::npos) && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
            out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

turtlefinder::Options no_plugins() {
    turtlefinder::Options o;
    o.default_plugin_dirs = false;
    o.online_wait = 0ms;
    return o;
}

TEST(ServeInProcess, AnswersStopsAndLeavesNothingBehind) {
    tftest::TempDir dir("tf-serve-");
    std::string socket = dir.path() + "/run/tf.sock"; // its directory is created
    tftest::LeakGuard guard;
    {
        turtlefinder::Finder finder(no_plugins());
        serve::Settings settings;
        settings.socket = socket;
        settings.listen = {"127.0.0.1:0"};
        settings.keepalive = 200ms;
        serve::Service service(finder, settings);
        ASSERT_EQ(service.endpoints().size(), 2u);
        EXPECT_EQ(service.endpoints()[0], "unix:" + socket);
        EXPECT_EQ(fs::status(socket).permissions() & fs::perms::all,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::group_write);
        std::thread runner([&] { service.run(); });
        EXPECT_NE(get(socket, "/healthz").find("200 OK"), std::string::npos);
        EXPECT_TRUE(tftest::eventually([&] { return get(socket, "/readyz").find("200 OK") != std::string::npos; }));
        auto containers = get(socket, "/v1/containers");
        auto body = json::parse(containers.substr(containers.find("\r\n\r\n") + 4));
        EXPECT_EQ(body.at("containers").as_array().size(), 0u);
        EXPECT_TRUE(body.at("service").at("discovered").is_string());
        // No engines: the stream has no state to tell, and keeps alive.
        auto stream = get(socket, "/v1/events", ": keep-alive\n\n");
        EXPECT_NE(stream.find("text/event-stream"), std::string::npos) << stream;
        EXPECT_NE(stream.find(": keep-alive\n\n"), std::string::npos) << stream;
        service.stop();
        runner.join();
    }
    EXPECT_FALSE(fs::exists(socket));
    guard.check();
}

TEST(ServeInProcess, APluginFileDroppedIntoAPluginDirectoryIsTakenIn) {
    TF_REQUIRE_ROOT(); // plugin files must be root's to be loaded as root
    std::string built;
    // Split by hand: clang 14's views::split does not build with libstdc++ 12 (ASan stage).
    const char *path = std::getenv("TURTLEFINDER_PLUGIN_PATH");
    for (std::string_view rest = path != nullptr ? path : ""; !rest.empty();) {
        auto colon = rest.find(':');
        std::string d(rest.substr(0, colon));
        if (fs::exists(d + "/moby.so")) built = d + "/moby.so";
        rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
    if (built.empty()) TF_SKIP_OR_FAIL("no built moby.so on TURTLEFINDER_PLUGIN_PATH");
    tftest::TempDir plugins("tf-plugins-");
    fs::permissions(plugins.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                        fs::perms::others_read | fs::perms::others_exec);
    tftest::TempDir dir("tf-serve-");
    std::string socket = dir.path() + "/tf.sock";
    // The plugin's library stays mapped (as every loaded plugin's), but no
    // thread or fd of it or of the service outlives them.
    tftest::LeakGuard guard;
    {
        auto options = no_plugins();
        options.plugin_dirs = {plugins.path()};
        turtlefinder::Finder finder(options);
        serve::Settings settings;
        settings.socket = socket;
        serve::Service service(finder, settings);
        std::thread runner([&] { service.run(); });
        auto loaded = [&] {
            auto answer = get(socket, "/v1/plugins");
            auto at = answer.find("\r\n\r\n");
            if (at == std::string::npos) return false;
            auto doc = json::parse(answer.substr(at + 4));
            // Taken in: loaded, or deferred until a process of its engine runs (none does here).
            for (auto &p : doc.at("plugins").as_array())
                if (p.at("name").as_string() == "moby" && (p.at("loaded").as_bool() || p.at("deferred").as_bool()))
                    return true;
            return false;
        };
        EXPECT_FALSE(loaded());
        // Copied beside, then renamed in: the directory never holds half a file.
        fs::copy_file(built, plugins.path() + "/.moby.so.tmp");
        fs::permissions(plugins.path() + "/.moby.so.tmp", fs::perms::owner_read | fs::perms::owner_write |
                                                              fs::perms::group_read | fs::perms::others_read);
        fs::rename(plugins.path() + "/.moby.so.tmp", plugins.path() + "/moby.so");
        EXPECT_TRUE(tftest::eventually(loaded, 20s));
        service.stop();
        runner.join();
    }
    guard.check();
}

} // namespace
