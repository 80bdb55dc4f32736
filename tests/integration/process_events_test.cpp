// SPDX-License-Identifier: Apache-2.0
// The process table kept current by the kernel's process events, against a
// real dockerd the lab starts: a Finder with events and one scanning on
// every call, side by side through a churn of 1,000 short-lived processes
// and a dockerd restart, end up agreeing with each other and with the
// engine; a subscribed Finder finds a dockerd started after it, and notices
// it gone, without any containers() call; a plugin deferred while no process
// of its engine ran loads once one starts.
#include <gtest/gtest.h>

#include <turtlefinder/finder.hpp>

#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "lab.hpp"
#include "testing.hpp"

extern char **environ;

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace lab = turtlefinder::lab;

tf::Options options(bool events) {
    tf::Options o;
    o.online_wait = 5s;
    o.probe_timeout = 1s;
    o.process_events = events;
    return o;
}

// What a Finder says of one dockerd: its PID and its containers.
struct View {
    int pid = 0;
    std::set<std::string> containers;
    bool operator==(const View &) const = default;
};

View view_of(tf::Finder &finder, const std::string &socket) {
    View v;
    for (const auto &c : finder.containers())
        if (c.engine && c.engine->type == "docker.com" && c.engine->api.ends_with(socket)) v.containers.insert(c.id);
    for (const auto &e : finder.engines())
        if (e->type == "docker.com" && e->api.ends_with(socket)) v.pid = e->pid;
    return v;
}

View engine_view(lab::Dockerd &dockerd) {
    View v;
    v.pid = dockerd.pid();
    std::istringstream ids(dockerd.docker_ok({"ps", "-q", "--no-trunc"}));
    for (std::string id; ids >> id;) v.containers.insert(id);
    return v;
}

std::string describe(const View &v) {
    std::string out = "pid " + std::to_string(v.pid) + ":";
    for (const auto &id : v.containers) out += " " + id.substr(0, 12);
    return out;
}

// `n` processes that exit at once (/bin/true), `threads` at a time; each is
// reaped before the next starts on its thread.
void churn_processes(int n, int threads) {
    std::atomic<int> next{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            char true_path[] = "/bin/true";
            char *argv[] = {true_path, nullptr};
            while (next++ < n) {
                pid_t pid = -1;
                if (::posix_spawn(&pid, true_path, nullptr, nullptr, argv, environ) != 0) continue;
                int status = 0;
                ::waitpid(pid, &status, 0);
            }
        });
    for (auto &t : pool) t.join();
}

class ProcessEvents : public ::testing::Test {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        if (!lab::which("dockerd")) TF_SKIP_OR_FAIL("dockerd is not installed");
        lab_ = std::make_unique<lab::Lab>("procev");
    }
    // gRPC's process-wide poller (the containerd plugin's) lives from its
    // first use until exit. Plugins load once a process of theirs runs, so a
    // test warms up with its engines running, before its leak baseline.
    static void warm_up() {
        tf::Finder finder(options(true));
        finder.containers();
    }
    std::unique_ptr<lab::Lab> lab_;
};

TEST_F(ProcessEvents, WithAndWithoutEventsAgreeThroughChurnAndARestart) {
    auto dockerd = std::make_unique<lab::Dockerd>(*lab_);
    dockerd->import_busybox();
    for (int i = 0; i < 3; ++i) dockerd->run_container({"--name", "before" + std::to_string(i)});
    warm_up();
    tftest::LeakGuard leaks;
    {
        tf::Finder with(options(true));
        tf::Finder without(options(false));
        // Subscribed: discoveries on process events run during the churn too.
        std::atomic<int> found{0};
        int handle = with.subscribe([&](const tf::Event &e) {
            if (e.kind == tf::EventKind::engine_found) ++found;
        });
        with.containers();
        without.containers();
        const auto scans_before = with.stats().process_scans;

        // Both Finders queried as fast as they go while 1,000 processes come
        // and go and dockerd is killed and started again.
        std::atomic<bool> stop{false};
        std::atomic<int> queries{0};
        std::thread reader([&] {
            while (!stop) {
                with.containers();
                without.containers();
                ++queries;
            }
        });
        std::shared_ptr<void> join_reader(nullptr, [&](void *) {
            stop = true;
            reader.join();
        });
        std::thread churn([] { churn_processes(1000, 4); });
        std::this_thread::sleep_for(200ms);
        dockerd->process().kill9();
        dockerd.reset(); // cleans up what the killed dockerd left
        lab::DockerdConfig again;
        again.dir_name = "d2";
        dockerd = std::make_unique<lab::Dockerd>(*lab_, again);
        dockerd->import_busybox();
        for (int i = 0; i < 2; ++i) dockerd->run_container({"--name", "after" + std::to_string(i)});
        churn.join();
        stop = true;
        join_reader.reset();

        const View want = engine_view(*dockerd);
        EXPECT_EQ(want.containers.size(), 2u);
        View got_with, got_without;
        bool agree = tftest::eventually(
            [&] {
                got_with = view_of(with, dockerd->socket());
                got_without = view_of(without, dockerd->socket());
                return got_with == want && got_without == want;
            },
            10s, 50ms);
        EXPECT_TRUE(agree);
        EXPECT_EQ(got_with, want) << "with events: " << describe(got_with) << "\nengine: " << describe(want);
        EXPECT_EQ(got_without, want) << "scanning: " << describe(got_without) << "\nengine: " << describe(want);
        EXPECT_GT(queries.load(), 0);
        // The scanning Finder scanned on every call; the other only when
        // events were lost (the kernel's buffer overflowing under load).
        EXPECT_GE(without.stats().process_scans, static_cast<std::uint64_t>(queries.load()));
        std::cout << "[ info ] " << queries.load()
                  << " queries during the churn; with events: " << with.stats().process_scans - scans_before
                  << " rescans, scanning: " << without.stats().process_scans << " scans\n";
        with.unsubscribe(handle);
    }
    leaks.check();
}

TEST_F(ProcessEvents, SubscribedFinderFindsANewEngineWithoutAQuery) {
    // Docker's plugin only: the dockerd's containerd, found after the leak
    // baseline, would make gRPC's process-wide poller inside it.
    auto o = options(true);
    o.disabled_plugins = {"containerd", "crio"};
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(o);
        finder.containers(); // whatever the host runs already
        std::mutex mu;
        std::map<std::string, int> found, lost; // by API
        int handle = finder.subscribe([&](const tf::Event &e) {
            if (!e.engine || e.engine->type != "docker.com") return;
            std::lock_guard lock(mu);
            if (e.kind == tf::EventKind::engine_found) ++found[e.engine->api];
            if (e.kind == tf::EventKind::engine_lost) ++lost[e.engine->api];
        });
        auto seen = [&](std::map<std::string, int> &m, const std::string &socket) {
            std::lock_guard lock(mu);
            for (const auto &[api, n] : m)
                if (api.ends_with(socket) && n > 0) return true;
            return false;
        };
        const auto discoveries = finder.stats().discoveries;

        auto dockerd = std::make_unique<lab::Dockerd>(*lab_);
        const std::string socket = dockerd->socket();
        EXPECT_TRUE(tftest::eventually([&] { return seen(found, socket); }, tftest::hang_guard))
            << "a dockerd started after subscribing was not found";
        EXPECT_GT(finder.stats().discoveries, discoveries) << "found by a discovery on process events";

        dockerd->process().kill9();
        EXPECT_TRUE(tftest::eventually([&] { return seen(lost, socket); }, tftest::hang_guard))
            << "a killed dockerd was not noticed gone";
        dockerd.reset();
        finder.unsubscribe(handle);
    }
    leaks.check(); // the connector's socket and the event thread end with the Finder
}

TEST_F(ProcessEvents, APluginDeferredAtStartLoadsForAnEngineStartedLater) {
    // With events, a discovery looks for processes that need a deferred
    // plugin among those changed since the last one: a dockerd exec'd
    // between two queries is one of them.
    auto o = options(true);
    o.disabled_plugins = {"containerd", "crio"}; // as above: no gRPC inside the baseline
    auto moby_state = [](tf::Finder &finder) {
        for (const auto &p : finder.plugins())
            if (p.name == "moby") return p.deferred ? std::string("deferred") : p.loaded ? "loaded" : "refused";
        return std::string("absent");
    };
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(o);
        finder.containers();
        if (moby_state(finder) != "deferred")
            TF_SKIP_OR_FAIL("Docker's plugin is " + moby_state(finder) +
                            " before the test's dockerd starts (a "
                            "dockerd runs on this host already?): its loading later cannot be shown");
        finder.containers(); // nothing changed: still deferred
        EXPECT_EQ(moby_state(finder), "deferred");
        lab::Dockerd dockerd(*lab_);
        const std::string socket = dockerd.socket();
        EXPECT_TRUE(
            tftest::eventually([&] { return view_of(finder, socket).pid == dockerd.pid(); }, tftest::hang_guard))
            << "a dockerd started after the Finder's first discoveries was not found";
        EXPECT_EQ(moby_state(finder), "loaded");
    }
    leaks.check();
}

TEST_F(ProcessEvents, ProcfsRootOfAnotherNamespaceScansOnEveryCall) {
    // A procfs root that is not the one of our PID namespace (here a copy of
    // nothing but "self" pointing elsewhere) cannot be kept current by the
    // kernel's events, which name our namespace's PIDs: scans every time.
    tftest::TempDir fake;
    ASSERT_EQ(::symlink("1", (fake.path() + "/self").c_str()), 0);
    auto o = options(true);
    o.procfs_root = fake.path();
    tf::Finder finder(o);
    finder.containers();
    finder.containers();
    EXPECT_EQ(finder.stats().process_scans, 2u);
}

} // namespace
