// SPDX-License-Identifier: Apache-2.0
// Faults on real engines: a containerd killed with SIGKILL and restarted
// while Docker keeps changing; misbehaving sockets under engine names (test
// doubles) next to real engines; a thousand Finder lifecycles without a leak.
#include <gtest/gtest.h>

#include <turtlefinder/finder.hpp>

#include <csignal>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "containerd.hpp"
#include "lab.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace lab = turtlefinder::lab;
using Clock = std::chrono::steady_clock;

std::shared_ptr<const tf::Engine> engine_at(tf::Finder &f, const std::string &type, const std::string &socket) {
    for (auto &e : f.engines())
        if (e->type == type && e->api.ends_with(socket)) return e;
    return nullptr;
}

// Ids of the containers `f` reports for the engine at `socket`, with their paused state.
std::map<std::string, bool> view_of(const std::vector<tf::Container> &all, const std::string &type,
                                    const std::string &socket) {
    std::map<std::string, bool> out;
    for (const auto &c : all)
        if (c.engine && c.engine->type == type && c.engine->api.ends_with(socket)) out[c.id] = c.paused;
    return out;
}

std::set<std::string> words(const std::string &text) {
    std::set<std::string> out;
    std::istringstream in(text);
    for (std::string w; in >> w;) out.insert(w);
    return out;
}

long long ms_since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

class Faults : public ::testing::Test {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        for (const char *program : {"dockerd", "docker", "containerd", "ctr", "runc", "containerd-shim-runc-v2"})
            if (!lab::which(program)) TF_SKIP_OR_FAIL(std::string(program) + " is not installed");
        lab_ = std::make_unique<lab::Lab>("faults");
    }
    void TearDown() override {
        containerd_.reset();
        dockerd_.reset();
        lab_.reset();
    }
    void start_engines() {
        dockerd_ = std::make_unique<lab::Dockerd>(*lab_);
        dockerd_->import_busybox();
        lab::ContainerdConfig config;
        config.cri = false;
        containerd_ = std::make_unique<lab::Containerd>(*lab_, config);
        containerd_->import_busybox(ns);
    }
    static tf::Options options() {
        tf::Options o;
        o.online_wait = 5s;
        o.probe_timeout = 1s;
        o.backoff_min = 50ms;
        o.backoff_max = 500ms;
        return o;
    }
    // gRPC keeps a process-wide poller (an epoll fd, an eventfd) from its first
    // use until exit: create it before any leak baseline.
    static void warm_up() {
        tf::Finder f(options());
        f.containers();
    }

    // A namespace of these tests' own: their tasks stand apart in every listing.
    const std::string ns = "tf-faults";
    std::unique_ptr<lab::Lab> lab_;
    std::unique_ptr<lab::Dockerd> dockerd_;
    std::unique_ptr<lab::Containerd> containerd_;
};

// --- 1. SIGKILL mid-stream -------------------------------------------------

TEST_F(Faults, ContainerdKilledAndRestartedWhileDockerChurns) {
    start_engines();
    warm_up();
    const std::string csock = containerd_->socket();
    const auto test_start = Clock::now();
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        finder.containers();
        ASSERT_TRUE(engine_at(finder, "docker.com", dockerd_->socket()));
        ASSERT_TRUE(engine_at(finder, "containerd.io", csock));

        std::mutex mu;
        std::map<std::string, std::vector<tf::EventKind>> docker_events; // by container id, in order
        int handle = finder.subscribe([&](const tf::Event &e) {
            if (!e.engine || e.engine->type != "docker.com" || !e.engine->api.ends_with(dockerd_->socket())) return;
            std::lock_guard lock(mu);
            docker_events[e.container.id].push_back(e.kind);
        });
        containerd_->run_task(ns, "before");
        ASSERT_TRUE(tftest::eventually(
            [&] { return view_of(finder.containers(), "containerd.io", csock).count(ns + "/before"); }, 4s));

        // Docker churns in the background for the whole outage: every
        // container it starts, and every other one it removes again.
        std::atomic<bool> stop{false};
        std::atomic<int> churn_errors{0};
        std::vector<std::string> started, removed;
        std::thread churn([&] {
            for (int i = 0; !stop || i < 6; ++i) {
                try {
                    auto id = dockerd_->run_container({"--name", "churn" + std::to_string(i)});
                    started.push_back(id);
                    if (i % 2 == 1) {
                        dockerd_->docker_ok({"rm", "-f", started[started.size() - 2]});
                        removed.push_back(started[started.size() - 2]);
                    }
                } catch (const std::exception &e) {
                    ++churn_errors;
                    ADD_FAILURE() << "docker churn: " << e.what();
                    return;
                }
            }
        });

        // Joins the churn on every way out, failed assertions and exceptions included.
        std::shared_ptr<void> join_churn(nullptr, [&](void *) {
            stop = true;
            if (churn.joinable()) churn.join();
        });

        const int old_pid = containerd_->pid();
        containerd_->process().kill9();
        // The dead engine is pruned by the next discovery.
        EXPECT_TRUE(tftest::eventually(
            [&] {
                finder.containers();
                return !engine_at(finder, "containerd.io", csock);
            },
            5s))
            << "killed containerd still watched";
        // Keep discovering during the outage (Docker must be unaffected).
        auto during = dockerd_->run_container({"--name", "during-outage"});
        EXPECT_TRUE(tftest::eventually(
            [&] { return view_of(finder.containers(), "docker.com", dockerd_->socket()).count(during) == 1; }, 3s))
            << "a Docker container started while containerd was down was not seen";
        EXPECT_FALSE(engine_at(finder, "containerd.io", csock));
        containerd_->crash_and_restart();
        ASSERT_NE(containerd_->pid(), old_pid);
        EXPECT_TRUE(tftest::eventually(
            [&] {
                finder.containers();
                auto e = engine_at(finder, "containerd.io", csock);
                return e && e->pid == containerd_->pid();
            },
            10s))
            << "restarted containerd not found again";
        // Re-subscribed: a task started after the restart is seen live.
        containerd_->run_task(ns, "after");
        EXPECT_TRUE(tftest::eventually(
            [&] { return view_of(finder.containers(), "containerd.io", csock).count(ns + "/after"); }, 3s))
            << "a task started after the restart was not seen";
        EXPECT_TRUE(view_of(finder.containers(), "containerd.io", csock).count(ns + "/before"))
            << "the task that survived the crash is missing";

        join_churn.reset();
        ASSERT_EQ(churn_errors.load(), 0);
        ASSERT_GE(started.size(), 6u);

        // Docker's view equals what dockerd itself says, and every change was an event.
        auto want = words(dockerd_->docker_ok({"ps", "-q", "--no-trunc"}));
        std::map<std::string, bool> seen;
        EXPECT_TRUE(tftest::eventually(
            [&] {
                seen = view_of(finder.containers(), "docker.com", dockerd_->socket());
                std::set<std::string> ids;
                for (auto &[id, paused] : seen) ids.insert(id);
                return ids == want;
            },
            3s))
            << "Docker view differs from docker ps after the outage";
        finder.unsubscribe(handle);
        std::lock_guard lock(mu);
        std::set<std::string> gone(removed.begin(), removed.end());
        for (const auto &id : started) {
            const auto &kinds = docker_events[id];
            std::vector<tf::EventKind> expected{tf::EventKind::started};
            if (gone.count(id)) expected.push_back(tf::EventKind::exited);
            EXPECT_EQ(kinds, expected) << "events of container " << id;
            EXPECT_EQ(want.count(id), gone.count(id) ? 0u : 1u) << id;
        }
        EXPECT_EQ(docker_events[during], std::vector<tf::EventKind>{tf::EventKind::started});
        std::cout << "[ info ] " << started.size() << " Docker containers started, " << removed.size()
                  << " removed during the outage\n";
        containerd_->kill_task(ns, "after");
        containerd_->kill_task(ns, "before");
    }
    leaks.check();
    std::cout << "[ info ] took " << ms_since(test_start) << " ms\n";
}

// --- an engine caught while it starts ---------------------------------------

// A Finder that scans while dockerd is still starting (the process exists,
// its socket does not listen yet) must still find it once it listens: an
// engine restarting under a long-lived Finder goes through this every time.
TEST_F(Faults, EngineStillStartingWhenFirstSeenIsFoundOnceItListens) {
    warm_up();
    tftest::LeakGuard leaks;
    {
        auto o = options();
        o.online_wait = 200ms;
        tf::Finder finder(o);
        // Discover continuously while dockerd comes up.
        std::atomic<bool> up{false};
        std::atomic<int> early_discoveries{0};
        std::thread scanner([&] {
            while (!up) {
                finder.containers();
                ++early_discoveries;
                std::this_thread::sleep_for(5ms);
            }
        });
        std::shared_ptr<void> join_scanner(nullptr, [&](void *) {
            up = true;
            scanner.join();
        });
        dockerd_ = std::make_unique<lab::Dockerd>(*lab_);
        join_scanner.reset();
        ASSERT_GT(early_discoveries.load(), 0);
        EXPECT_TRUE(tftest::eventually(
            [&] {
                finder.containers();
                return engine_at(finder, "docker.com", dockerd_->socket()) != nullptr;
            },
            5s, 50ms))
            << "a dockerd first seen while starting is never found (" << early_discoveries.load()
            << " discoveries ran while it started)";
    }
    leaks.check();
}

// --- 2. misbehaving sockets -----------------------------------------------

// What a candidate socket of each misbehaving double is reported as: one
// that never answers is a timeout. The Docker API client reads garbage as
// not this protocol; gRPC may just wait for a frame in it until its time is
// up, and tells a peer that hangs up as a closed stream or, at times, as
// one that sent nothing in time. One that answers slowly or endlessly is
// either, as the bytes come in before or after the deadline.
std::set<std::string> expected_errors(const std::string &process, lab::FakeEngine::Behaviour b) {
    using B = lab::FakeEngine::Behaviour;
    const bool grpc = process != "dockerd";
    switch (b) {
    case B::hang: return {"timeout"};
    case B::garbage:
        return grpc ? std::set<std::string>{"not-this-protocol", "timeout"}
                    : std::set<std::string>{"not-this-protocol"};
    case B::close:
        return grpc ? std::set<std::string>{"not-this-protocol", "closed", "timeout"}
                    : std::set<std::string>{"not-this-protocol", "closed"};
    case B::slow:
    case B::endless: return {"timeout", "not-this-protocol"};
    }
    return {};
}

TEST_F(Faults, BadSocketsNeverStallDiscovery) {
    start_engines();
    using B = lab::FakeEngine::Behaviour;
    std::vector<std::unique_ptr<lab::FakeEngine>> fakes;
    std::set<pid_t> fake_pids;
    for (const char *name : {"dockerd", "containerd"})
        for (B b : {B::garbage, B::hang, B::slow, B::close, B::endless}) {
            std::string sock = std::string(name).substr(0, 1) + "-" + lab::to_string(b) + ".sock";
            fakes.push_back(std::make_unique<lab::FakeEngine>(*lab_, name, b, sock));
            fake_pids.insert(fakes.back()->pid());
        }
    auto o = options();
    o.online_wait = 2s;
    o.probe_timeout = 500ms;
    warm_up();
    tftest::LeakGuard leaks;
    {
        for (int round = 0; round < 3; ++round) {
            tf::Finder finder(o);
            auto start = Clock::now();
            finder.containers();
            auto took = Clock::now() - start;
            std::cout << "[ info ] fresh Finder, round " << round << ": discovery took " << ms_since(start) << " ms\n";
            EXPECT_LT(took, tftest::hang_guard) << "a misbehaving socket hung the discovery";
            EXPECT_TRUE(engine_at(finder, "docker.com", dockerd_->socket())) << "real dockerd not reported";
            EXPECT_TRUE(engine_at(finder, "containerd.io", containerd_->socket())) << "real containerd not reported";
            for (auto &e : finder.engines()) {
                if (e->api.ends_with(dockerd_->socket()) || e->api.ends_with(containerd_->socket())) {
                    EXPECT_EQ(e->state, tf::Engine::State::online) << e->api << ": " << e->error;
                }
            }
            for (auto &e : finder.engines()) EXPECT_EQ(fake_pids.count(e->pid), 0u) << e->api << " is a test double";
            // Each double is named as a candidate that gave no engine, with its socket and a reason.
            auto candidates = finder.candidates();
            for (auto &f : fakes) {
                auto c = std::find_if(candidates.begin(), candidates.end(),
                                      [&](const tf::Candidate &c) { return c.pid == f->pid(); });
                ASSERT_NE(c, candidates.end()) << f->socket() << " is not reported as a candidate";
                EXPECT_FALSE(c->reason.empty()) << f->socket();
                EXPECT_FALSE(c->plugin.empty());
                auto s = std::find_if(c->sockets.begin(), c->sockets.end(),
                                      [&](const tf::CandidateSocket &s) { return s.path.ends_with(f->socket()); });
                ASSERT_NE(s, c->sockets.end()) << f->socket();
                std::cout << "[ info ]   " << f->socket() << ": " << s->reason << "\n";
                EXPECT_TRUE(expected_errors(c->process, f->behaviour()).contains(s->error))
                    << f->socket() << ": " << s->reason;
                EXPECT_TRUE(s->reason.starts_with(s->error + ": ")) << s->reason;
            }
            // Repeated discoveries on the same Finder: the broken processes
            // were examined once; they must not cost anything again.
            // (Other engines may start on a shared host meanwhile: allow a few probes.)
            for (int again = 0; again < 3; ++again) {
                auto probes = finder.stats().probes;
                auto t = Clock::now();
                finder.containers();
                std::cout << "[ info ]   repeated discovery took " << ms_since(t) << " ms\n";
                EXPECT_LT(Clock::now() - t, tftest::hang_guard);
                EXPECT_LT(finder.stats().probes - probes, fakes.size())
                    << "repeated discovery re-probed broken engines";
            }
        }
    }
    leaks.check();
    // The doubles outlived everything and are still misbehaving, not crashed.
    for (auto &f : fakes) EXPECT_TRUE(lab::is_listening(f->pid(), f->socket())) << f->socket();
}

// --- 3b. an API that stops answering while its process lives -----------------

// dockerd stopped with SIGSTOP: its event stream goes quiet, its process
// lives. The engine turns stale with an error, its containers are still
// listed, marked as a stale view; after SIGCONT it is online again.
TEST_F(Faults, EngineWhoseApiStopsAnsweringIsStaleThenOnlineAgain) {
    dockerd_ = std::make_unique<lab::Dockerd>(*lab_);
    dockerd_->import_busybox();
    auto id = dockerd_->run_container({"--name", "tf-stale"});
    auto o = options();
    o.disabled_plugins = {"containerd", "crio"}; // gRPC's process-wide fds would count as leaks
    o.health_interval = 200ms;
    o.probe_timeout = 500ms;
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(o);
        auto all = finder.containers();
        auto engine = engine_at(finder, "docker.com", dockerd_->socket());
        ASSERT_TRUE(engine);
        EXPECT_EQ(engine->state, tf::Engine::State::online);
        ASSERT_EQ(view_of(all, "docker.com", dockerd_->socket()).count(id), 1u);

        ASSERT_EQ(::kill(dockerd_->pid(), SIGSTOP), 0);
        std::optional<tf::Container> seen;
        bool stale = tftest::eventually(
            [&] {
                all = finder.containers();
                auto e = engine_at(finder, "docker.com", dockerd_->socket());
                if (!e || e->state != tf::Engine::State::stale) return false;
                for (auto &c : all)
                    if (c.id == id) seen = c;
                return true;
            },
            tftest::hang_guard, 100ms);
        ::kill(dockerd_->pid(), SIGCONT);
        ASSERT_TRUE(stale) << "a stopped dockerd never turned stale";
        auto e = engine_at(finder, "docker.com", dockerd_->socket());
        EXPECT_FALSE(e->error.empty());
        ASSERT_TRUE(seen) << "the stale engine's containers are no longer listed";
        EXPECT_TRUE(seen->stale);
        EXPECT_EQ(seen->engine, e);

        bool online = tftest::eventually(
            [&] {
                all = finder.containers();
                auto now = engine_at(finder, "docker.com", dockerd_->socket());
                return now && now->state == tf::Engine::State::online;
            },
            tftest::hang_guard, 100ms);
        ASSERT_TRUE(online) << "dockerd did not come back online after SIGCONT";
        for (auto &c : all) {
            if (c.id == id) {
                EXPECT_FALSE(c.stale);
            }
        }
    }
    leaks.check();
}

// --- 4. a thousand lifecycles ------------------------------------------------

TEST_F(Faults, ThousandFinderLifecyclesLeakNothing) {
    start_engines();
    containerd_->run_task(ns, "steady");
    auto id = dockerd_->run_container({"--name", "steady"});
    auto o = options();
    // Bounds on the probe and the wait for the first sync, not goals: a loaded
    // machine may take seconds to answer, and an answer ends the wait at once.
    o.online_wait = tftest::hang_guard;
    o.probe_timeout = tftest::hang_guard / 3; // likewise: real engines answer, just late
    warm_up();
    // The count is the test; how long it takes is reported, not asserted
    // (a loaded machine is slow, not wrong).
    constexpr int lifecycles = 1000;
    const auto start = Clock::now();
    long long slowest = 0;
    int done = 0;
    tftest::LeakGuard leaks;
    const int threads_before = tftest::thread_count();
    long long create_ms = 0, discover_ms = 0, destroy_ms = 0;
    for (; done < lifecycles; ++done) {
        auto t = Clock::now();
        {
            std::optional<tf::Finder> finder_slot;
            finder_slot.emplace(o);
            auto &finder = *finder_slot;
            auto t1 = Clock::now();
            create_ms += std::chrono::duration_cast<std::chrono::milliseconds>(t1 - t).count();
            auto all = finder.containers();
            discover_ms += ms_since(t1);
            std::shared_ptr<void> timed_destroy(nullptr, [&](void *) {
                auto t2 = Clock::now();
                finder_slot.reset();
                destroy_ms += ms_since(t2);
            });
            auto dock = view_of(all, "docker.com", dockerd_->socket());
            auto ctrd = view_of(all, "containerd.io", containerd_->socket());
            if (!dock.count(id) || !ctrd.count(ns + "/steady")) {
                ADD_FAILURE() << "lifecycle " << done << ": a running container is missing ("
                              << (dock.count(id) ? "" : "Docker's ")
                              << (ctrd.count(ns + "/steady") ? "" : "containerd's") << ")";
                // What this Finder saw instead, for the report.
                for (const auto &e : finder.engines())
                    std::cout << "[ info ] engine " << e->type << " " << e->api << " (PID " << e->pid << ")\n";
                for (const auto &p : finder.plugins())
                    std::cout << "[ info ] plugin " << p.file
                              << (p.loaded     ? " loaded"
                                  : p.deferred ? " not loaded yet"
                                               : " refused: " + p.reason)
                              << "\n";
                for (const auto &c : finder.candidates()) { // what an engine process said instead
                    std::cout << "[ info ] candidate " << c.process << " (PID " << c.pid << "): " << c.reason << "\n";
                    for (const auto &s : c.sockets) std::cout << "[ info ]   " << s.path << ": " << s.reason << "\n";
                }
                std::cout << "[ info ] " << finder.stats().probes << " probes, " << all.size() << " containers\n";
                break;
            }
        }
        slowest = std::max(slowest, ms_since(t));
    }
    leaks.check();
    if (tftest::thread_count() > threads_before) { // name the threads left, for the report
        std::error_code ec;
        for (const auto &task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
            std::ifstream comm(task.path() / "comm");
            std::string name;
            std::getline(comm, name);
            std::cout << "[ info ] thread " << task.path().filename().string() << ": " << name << "\n";
        }
    }
    auto total = ms_since(start);
    std::cout << "[ info ] " << done << " lifecycles in " << total << " ms, " << (done ? total / done : 0)
              << " ms each, slowest " << slowest << " ms; in total " << create_ms << " ms creating, " << discover_ms
              << " ms discovering, " << destroy_ms << " ms destroying\n";
    containerd_->kill_task(ns, "steady");
}

} // namespace
