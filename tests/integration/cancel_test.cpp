// SPDX-License-Identifier: Apache-2.0
// Cancelling and bounding a discovery, from C++ and C, while a probe hangs:
// a lab dockerd (real) is known, then a process named dockerd appears whose
// socket accepts and never answers (lab FakeEngine, TEST DOUBLE), probed with
// a timeout far longer than the test. A stopped discovery returns with the
// real engine's containers while the double still holds the probe's
// connection unanswered; destroying the finder then waits for no probe.
#include <gtest/gtest.h>

#include <turtlefinder/finder.hpp>
#include <turtlefinder/turtlefinder.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "lab.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace lab = turtlefinder::lab;
using Clock = std::chrono::steady_clock;

// Far beyond the test: a call that returns while the double hangs cannot have
// waited for it.
constexpr auto probe_timeout = 60s;

class Cancel : public ::testing::Test {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        for (const char *program : {"dockerd", "docker", "runc"})
            if (!lab::which(program)) TF_SKIP_OR_FAIL(std::string(program) + " is not installed");
        lab_ = std::make_unique<lab::Lab>("cancel");
        dockerd_ = std::make_unique<lab::Dockerd>(*lab_);
        dockerd_->import_busybox();
        known_ = dockerd_->run_container({"--name", "known"});
    }
    void TearDown() override {
        hang_.reset();
        dockerd_.reset();
        lab_.reset();
    }

    static tf::Options options() {
        tf::Options o;
        o.probe_timeout = probe_timeout;
        o.online_wait = probe_timeout;
        // Only the Docker detector: no gRPC poller outlives a Finder.
        o.disabled_plugins = {"containerd", "crio", "podman", "systemd"};
        return o;
    }
    static bool has(const std::vector<tf::Container> &all, const std::string &id) {
        for (const auto &c : all)
            if (c.id == id) return true;
        return false;
    }
    // The double starts once the real engine is known, so only it hangs.
    void start_hanging_engine() {
        hang_ = std::make_unique<lab::FakeEngine>(*lab_, "dockerd", lab::FakeEngine::Behaviour::hang, "hang.sock");
    }
    // Until the double accepted a probe's connection (it never answers) and,
    // with a finder, that finder's probe runs (other finders on this host may
    // probe the double too).
    void wait_for_probe(tf::Finder *finder = nullptr, std::uint64_t probes_before = 0) const {
        ASSERT_TRUE(tftest::eventually([&] { return hang_->connections() >= 1; }, tftest::hang_guard))
            << "the hanging engine was never probed";
        if (finder == nullptr) return;
        ASSERT_TRUE(tftest::eventually([&] { return finder->stats().probes > probes_before; }, tftest::hang_guard))
            << "this finder never probed the hanging engine";
    }

    std::unique_ptr<lab::Lab> lab_;
    std::unique_ptr<lab::Dockerd> dockerd_;
    std::unique_ptr<lab::FakeEngine> hang_;
    std::string known_;
};

TEST_F(Cancel, AStoppedDiscoveryReturnsMidProbeWithTheEnginesItKnows) {
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        ASSERT_TRUE(has(finder.containers(), known_)) << "the lab's dockerd was not found";
        start_hanging_engine();

        std::stop_source stop;
        const auto started = Clock::now();
        const auto probes_before = finder.stats().probes;
        auto discovery = std::async(std::launch::async, [&] { return finder.containers(stop.get_token()); });
        wait_for_probe(&finder, probes_before);
        stop.request_stop();
        ASSERT_EQ(discovery.wait_for(tftest::hang_guard), std::future_status::ready) << "the stop was not heard";
        const auto result = discovery.get();
        EXPECT_LT(Clock::now() - started, probe_timeout) << "it waited for the probe's timeout";
        EXPECT_TRUE(has(result, known_)) << "the known engine's containers are missing";
        for (const auto &e : finder.engines()) EXPECT_NE(e->pid, hang_->pid());

        // Stopped before it starts: no new probe, the same answer. (Probes
        // are counted by the finder: other finders on this host may probe the
        // double too.)
        const auto probes = finder.stats().probes;
        std::stop_source stopped;
        stopped.request_stop();
        EXPECT_TRUE(has(finder.containers(stopped.get_token()), known_));
        // A deadline bounds a discovery as a stop does; the probe still runs.
        EXPECT_TRUE(has(finder.containers({}, Clock::now() + 100ms), known_));
        EXPECT_EQ(finder.stats().probes, probes);
    }
    hang_.reset(); // the probe hears the connection close and ends
    leaks.check();
}

TEST_F(Cancel, AStopReachesACallWaitingForAnotherThreadsDiscovery) {
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        ASSERT_TRUE(has(finder.containers(), known_));
        start_hanging_engine();
        std::stop_source first_stop, second_stop;
        const auto probes_before = finder.stats().probes;
        auto first = std::async(std::launch::async, [&] { return finder.containers(first_stop.get_token()); });
        wait_for_probe(&finder, probes_before);
        // The first discovery waits for the probe; the second waits for it.
        auto second = std::async(std::launch::async, [&] { return finder.containers(second_stop.get_token()); });
        second_stop.request_stop();
        ASSERT_EQ(second.wait_for(tftest::hang_guard), std::future_status::ready);
        EXPECT_TRUE(has(second.get(), known_)) << "a caller stopped before its turn gets what the finder has";
        EXPECT_EQ(first.wait_for(0s), std::future_status::timeout) << "the first discovery did not wait for the probe";
        first_stop.request_stop();
        ASSERT_EQ(first.wait_for(tftest::hang_guard), std::future_status::ready);
        EXPECT_TRUE(has(first.get(), known_));
    }
    hang_.reset();
    leaks.check();
}

TEST_F(Cancel, DestroyingTheFinderWaitsForNoProbe) {
    tftest::LeakGuard leaks;
    const int threads_before = tftest::thread_count();
    {
        std::optional<tf::Finder> finder(std::in_place, options());
        ASSERT_TRUE(has(finder->containers(), known_));
        start_hanging_engine();
        std::stop_source stop;
        const auto probes_before = finder->stats().probes;
        std::thread discovery([&] { finder->containers(stop.get_token()); });
        wait_for_probe(&*finder, probes_before);
        stop.request_stop();
        discovery.join();
        finder.reset();
        // The probe's thread outlives the Finder, still waiting for an answer.
        EXPECT_GT(tftest::thread_count(), threads_before) << "the probe ended before the test could see it run";
    }
    hang_.reset(); // the probe hears the connection close and ends, and its thread with it
    leaks.check();
}

// ---- the C API -------------------------------------------------------------

struct CFinder {
    tfc_finder *finder = nullptr;
    ~CFinder() { tfc_finder_free(finder); }
};

// tfc_options has no probe timeout: a configuration file sets the same as options().
tfc_finder *new_c_finder(CFinder &holder, const lab::Lab &lab) {
    const std::string config = lab.path("turtlefinder.json");
    std::ofstream(config) << R"({"probe_timeout_ms": 60000, "online_wait_ms": 60000,
                                 "disabled_plugins": ["containerd", "crio", "podman", "systemd"]})";
    tfc_options o{};
    o.struct_size = sizeof o;
    o.config_file = config.c_str();
    tfc_error err{};
    EXPECT_EQ(tfc_finder_new(&o, &holder.finder, &err), 0) << err.message;
    return holder.finder;
}

bool c_has(const tfc_snapshot *s, const std::string &id) {
    for (size_t i = 0; i < tfc_snapshot_container_count(s); ++i)
        if (id == tfc_container_id(tfc_snapshot_container(s, i))) return true;
    return false;
}

TEST_F(Cancel, CSnapshotsAreCutShortByATokenOrATimeout) {
    tftest::LeakGuard leaks;
    const int threads_before = tftest::thread_count();
    {
        static_assert(probe_timeout == 60s, "as the configuration file says");
        tfc_error err{};
        CFinder holder;
        tfc_finder *f = new_c_finder(holder, *lab_);
        ASSERT_NE(f, nullptr);
        tfc_snapshot *s = nullptr;
        ASSERT_EQ(tfc_finder_snapshot_bounded(f, nullptr, 0, &s, &err), 0) << err.message;
        EXPECT_TRUE(c_has(s, known_));
        tfc_snapshot_free(s);
        start_hanging_engine();

        // Bounded by a timeout: cut short, with the known engine.
        s = nullptr;
        EXPECT_EQ(tfc_finder_snapshot_bounded(f, nullptr, 300, &s, &err), 1) << err.message;
        ASSERT_NE(s, nullptr);
        EXPECT_TRUE(c_has(s, known_));
        tfc_snapshot_free(s);
        wait_for_probe();

        // Cancelled from another thread while the probe hangs.
        tfc_cancel *cancel = nullptr;
        ASSERT_EQ(tfc_cancel_new(&cancel, &err), 0) << err.message;
        EXPECT_EQ(tfc_cancel_requested(cancel), 0);
        s = nullptr;
        auto snapshot =
            std::async(std::launch::async, [&] { return tfc_finder_snapshot_bounded(f, cancel, 0, &s, &err); });
        EXPECT_EQ(snapshot.wait_for(200ms), std::future_status::timeout) << "it did not wait for the probe";
        tfc_cancel_request(cancel);
        tfc_cancel_request(cancel); // again: no effect
        EXPECT_EQ(tfc_cancel_requested(cancel), 1);
        ASSERT_EQ(snapshot.wait_for(tftest::hang_guard), std::future_status::ready) << "the cancel was not heard";
        EXPECT_EQ(snapshot.get(), 1) << err.message;
        EXPECT_TRUE(c_has(s, known_));
        tfc_snapshot_free(s);
        // A requested token cuts every later call short at once.
        s = nullptr;
        EXPECT_EQ(tfc_finder_snapshot_bounded(f, cancel, 0, &s, &err), 1);
        EXPECT_TRUE(c_has(s, known_));
        tfc_snapshot_free(s);
        tfc_cancel_free(cancel);

        // Freed with the probe in flight: returns, the probe's thread still waiting.
        tfc_finder_free(holder.finder);
        holder.finder = nullptr;
        EXPECT_GT(tftest::thread_count(), threads_before) << "the probe ended before the test could see it run";
    }
    hang_.reset();
    leaks.check();
}

TEST(CancelCApi, MisuseIsAnErrorNotACrash) {
    tfc_error err{};
    tfc_snapshot *s = reinterpret_cast<tfc_snapshot *>(&err); // must be reset
    EXPECT_EQ(tfc_finder_snapshot_bounded(nullptr, nullptr, 0, &s, &err), -EINVAL);
    EXPECT_EQ(s, nullptr);
    EXPECT_NE(std::strstr(err.message, "NULL finder"), nullptr) << err.message;
    EXPECT_EQ(tfc_finder_snapshot_bounded(nullptr, nullptr, 0, nullptr, nullptr), -EINVAL);
    EXPECT_EQ(tfc_cancel_new(nullptr, &err), -EINVAL);
    EXPECT_NE(std::strstr(err.message, "NULL out"), nullptr) << err.message;
    tfc_cancel_request(nullptr);
    EXPECT_EQ(tfc_cancel_requested(nullptr), 0);
    tfc_cancel_free(nullptr);
}

} // namespace
