// SPDX-License-Identifier: Apache-2.0
// The Finder end to end against a real dockerd that the lab starts.
#include <gtest/gtest.h>

#include <turtlefinder/finder.hpp>

#include <unistd.h>

#include <fstream>
#include <mutex>

#include "lab.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace lab = turtlefinder::lab;

class FinderDocker : public ::testing::Test {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        if (!lab::which("dockerd")) TF_SKIP_OR_FAIL("dockerd is not installed");
        lab_ = std::make_unique<lab::Lab>("fdock");
        dockerd_ = std::make_unique<lab::Dockerd>(*lab_);
        dockerd_->import_busybox();
        // gRPC (containerd plugin) creates a process-wide poller — an epoll fd
        // and an eventfd — on first use that lives until exit. It is not
        // per Finder: take it before any leak baseline, once per process.
        static const bool warmed_up = [this] {
            tf::Finder warm_up(options());
            warm_up.containers();
            return true;
        }();
        (void)warmed_up;
    }
    void TearDown() override {
        dockerd_.reset();
        lab_.reset();
    }

    tf::Options options() const {
        tf::Options o;
        o.online_wait = 5s;
        o.probe_timeout = 1s;
        return o;
    }
    // Our dockerd's engine among whatever else runs on the host.
    std::shared_ptr<const tf::Engine> our_engine(tf::Finder &f, const lab::Dockerd &d) const {
        for (auto &e : f.engines())
            if (e->type == "docker.com" && e->api.ends_with(d.socket())) return e;
        return nullptr;
    }
    std::optional<tf::Container> find(tf::Finder &f, const std::string &id) const {
        for (auto &c : f.containers())
            if (c.id == id) return c;
        return std::nullopt;
    }

    std::unique_ptr<lab::Lab> lab_;
    std::unique_ptr<lab::Dockerd> dockerd_;
};

TEST_F(FinderDocker, ListsAContainerStartedBeforeWithHostPidAndLabels) {
    auto id = dockerd_->run_container(
        {"--label", "tf.test=yes", "--label", "com.docker.compose.project=shop", "--name", "early"});
    int want_pid = std::stoi(dockerd_->docker_ok({"inspect", "-f", "{{.State.Pid}}", id}));
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        auto c = find(finder, id);
        ASSERT_TRUE(c) << "container " << id << " not reported";
        EXPECT_EQ(c->name, "early");
        EXPECT_EQ(c->pid, want_pid);
        EXPECT_EQ(lab::comm_of(c->pid), "sleep");
        EXPECT_FALSE(c->paused);
        EXPECT_EQ(c->type, "docker.com");
        EXPECT_EQ(c->labels.at("tf.test"), "yes");
        EXPECT_EQ(c->labels.at(tf::prefix_label), "");
        auto engine = our_engine(finder, *dockerd_);
        ASSERT_TRUE(engine);
        EXPECT_EQ(engine->pid, dockerd_->pid());
        EXPECT_EQ(c->engine, engine);
        EXPECT_FALSE(engine->id.empty());
        EXPECT_FALSE(engine->version.empty());
        EXPECT_EQ(engine->plugin, "moby");
        auto containers = finder.containers();
        auto groups = tf::group(containers);
        bool shop = false;
        for (auto &g : groups) shop |= g.kind == "com.docker.compose.project" && g.name == "shop";
        EXPECT_TRUE(shop) << "compose project not grouped";
    }
    leaks.check();
}

TEST_F(FinderDocker, SeesStartPauseUnpauseStopWithinTwoSeconds) {
    tf::Finder finder(options());
    finder.containers();
    ASSERT_TRUE(our_engine(finder, *dockerd_));
    std::mutex mu;
    std::vector<std::pair<tf::EventKind, std::string>> events;
    int handle = finder.subscribe([&](const tf::Event &e) {
        std::lock_guard lock(mu);
        events.emplace_back(e.kind, e.container.id);
    });

    auto id = dockerd_->run_container({"--name", "live"});
    EXPECT_TRUE(tftest::eventually([&] { return find(finder, id).has_value(); }, 2s)) << "start not seen";
    dockerd_->docker_ok({"pause", id});
    EXPECT_TRUE(tftest::eventually(
        [&] {
            auto c = find(finder, id);
            return c && c->paused;
        },
        2s));
    dockerd_->docker_ok({"unpause", id});
    EXPECT_TRUE(tftest::eventually(
        [&] {
            auto c = find(finder, id);
            return c && !c->paused;
        },
        2s));
    auto c = find(finder, id);
    ASSERT_TRUE(c);
    EXPECT_EQ(lab::comm_of(c->pid), "sleep");
    dockerd_->docker_ok({"kill", id});
    EXPECT_TRUE(tftest::eventually([&] { return !find(finder, id).has_value(); }, 2s)) << "exit not seen";
    finder.unsubscribe(handle);
    std::lock_guard lock(mu);
    std::vector<tf::EventKind> kinds;
    for (auto &[k, cid] : events)
        if (cid == id) kinds.push_back(k);
    std::vector<tf::EventKind> want{tf::EventKind::started, tf::EventKind::paused, tf::EventKind::unpaused,
                                    tf::EventKind::exited};
    EXPECT_EQ(kinds, want);
}

TEST_F(FinderDocker, KilledDockerdIsPrunedAndARestartedOneFound) {
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        finder.containers();
        auto first = our_engine(finder, *dockerd_);
        ASSERT_TRUE(first);
        int old_pid = dockerd_->pid();
        dockerd_->process().kill9();
        EXPECT_TRUE(tftest::eventually(
            [&] {
                finder.containers();
                return our_engine(finder, *dockerd_) == nullptr;
            },
            10s))
            << "killed dockerd still reported";
        dockerd_.reset(); // cleans up what the killed dockerd left
        lab::DockerdConfig again;
        again.dir_name = "d2";
        dockerd_ = std::make_unique<lab::Dockerd>(*lab_, again);
        finder.containers();
        auto second = our_engine(finder, *dockerd_);
        ASSERT_TRUE(second) << "restarted dockerd not found";
        EXPECT_EQ(second->pid, dockerd_->pid());
        EXPECT_NE(second->pid, old_pid);
    }
    leaks.check();
}

TEST_F(FinderDocker, BrokenDockerdsAreSkippedWithinTheirTimeouts) {
    lab::FakeEngine garbage(*lab_, "dockerd", lab::FakeEngine::Behaviour::garbage, "g.sock");
    lab::FakeEngine hang(*lab_, "dockerd", lab::FakeEngine::Behaviour::hang, "h.sock");
    auto o = options();
    o.probe_timeout = 500ms;
    o.online_wait = 2s;
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(o);
        auto start = std::chrono::steady_clock::now();
        finder.containers();
        auto took = std::chrono::steady_clock::now() - start;
        EXPECT_LT(took, tftest::hang_guard) << "a broken engine hung discovery";
        EXPECT_TRUE(our_engine(finder, *dockerd_)) << "the real dockerd was not reported";
        for (auto &e : finder.engines()) {
            EXPECT_NE(e->pid, garbage.pid());
            EXPECT_NE(e->pid, hang.pid());
        }
    }
    leaks.check();
}

} // namespace
