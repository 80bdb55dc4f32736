// SPDX-License-Identifier: Apache-2.0
// The Finder end to end with the containerd and crio plugins: engines found by
// process scan and listening sockets (ttrpc skipped), native tasks live through
// the event stream, CRI pods relisted (containerd 1.6 has no CRI events), and
// the CRI-O stand-in (a containerd binary named `crio`; CRI-O itself is not
// packaged for Debian 12).
#include <gtest/gtest.h>

#include <turtlefinder/finder.hpp>

#include <fstream>

#include "containerd.hpp"
#include "cri_admin.hpp"
#include "lab.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace lab = turtlefinder::lab;

class FinderContainerd : public ::testing::Test {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        for (const char *program : {"containerd", "ctr", "runc", "containerd-shim-runc-v2", "gcc"})
            if (!lab::which(program)) TF_SKIP_OR_FAIL(std::string(program) + " is not installed");
        lab_ = std::make_unique<lab::Lab>("fcd");
    }
    void TearDown() override {
        crio_.reset();
        containerd_.reset();
        lab_.reset();
    }
    static tf::Options options() {
        tf::Options o;
        o.online_wait = 5s;
        o.probe_timeout = 1s;
        return o;
    }
    // The core reports API paths as reachable from here: /proc/PID/root/...
    static bool same_api(const std::string &reported, const std::string &socket) {
        return reported.size() >= socket.size() &&
               reported.compare(reported.size() - socket.size(), socket.size(), socket) == 0;
    }
    static std::optional<tf::Container> find(tf::Finder &f, const std::string &id, const std::string &api) {
        for (auto &c : f.containers())
            if (c.id == id && c.engine && same_api(c.engine->api, api)) return c;
        return std::nullopt;
    }
    static std::shared_ptr<const tf::Engine> engine(tf::Finder &f, const std::string &type, const std::string &api) {
        for (auto &e : f.engines())
            if (e->type == type && same_api(e->api, api)) return e;
        return nullptr;
    }

    std::unique_ptr<lab::Lab> lab_;
    std::unique_ptr<lab::Containerd> containerd_, crio_;
};

TEST_F(FinderContainerd, NativeAndCriWorkloadsOfOneContainerd) {
    containerd_ = std::make_unique<lab::Containerd>(*lab_);
    containerd_->import_pause();
    containerd_->import_busybox("k8s.io");
    int early_pid = containerd_->run_task("tfns", "early");
    const std::string api = containerd_->socket();

    tf::Finder finder(options());
    auto early = find(finder, "tfns/early", api);
    ASSERT_TRUE(early) << "native task not reported";
    EXPECT_EQ(early->pid, early_pid);
    EXPECT_EQ(early->type, "containerd.io");
    auto native = engine(finder, "containerd.io", api);
    ASSERT_TRUE(native);
    EXPECT_EQ(native->plugin, "containerd");
    EXPECT_EQ(native->pid, containerd_->pid());
    auto cri = engine(finder, "k8s.io/cri-api", api);
    ASSERT_TRUE(cri) << "the CRI API on the same socket is a second engine";
    EXPECT_EQ(cri->flavor, "containerd.io");
    for (auto &e : finder.engines()) EXPECT_FALSE(same_api(e->api, api + ".ttrpc"));

    // Live through containerd's event stream.
    containerd_->run_task("tfns", "late");
    EXPECT_TRUE(tftest::eventually([&] { return find(finder, "tfns/late", api).has_value(); }, 2s));
    containerd_->pause_task("tfns", "late");
    EXPECT_TRUE(tftest::eventually(
        [&] {
            auto c = find(finder, "tfns/late", api);
            return c && c->paused;
        },
        2s));
    containerd_->kill_task("tfns", "late");
    EXPECT_TRUE(tftest::eventually([&] { return !find(finder, "tfns/late", api).has_value(); }, 2s));

    // CRI: relisted every second, the pod's containers keep their pod labels
    // and are not reported twice (the native client skips k8s.io).
    lab::CriAdmin admin(api);
    std::string pod = admin.run_pod("web", "shop", "uid-f");
    std::string app = admin.create_container(pod, "app", lab::Containerd::busybox_image, {"sleep", "infinity"});
    admin.start_container(app);
    EXPECT_TRUE(tftest::eventually([&] { return find(finder, app, api).has_value(); }, 4s));
    auto c = find(finder, app, api);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->type, "k8s.io/cri-api");
    EXPECT_EQ(c->labels.at("io.kubernetes.pod.name"), "web");
    int reported = 0;
    for (auto &x : finder.containers())
        if (x.id.find(app) != std::string::npos) ++reported;
    EXPECT_EQ(reported, 1);
    admin.stop_container(app);
    admin.remove_container(app);
    admin.stop_pod(pod);
    admin.remove_pod(pod);
    EXPECT_TRUE(tftest::eventually([&] { return !find(finder, pod, api).has_value(); }, 4s));
}

TEST_F(FinderContainerd, CrioStandInFoundByProcessName) {
    lab::ContainerdConfig config;
    config.dir_name = "o";
    config.process_name = "crio";
    config.socket_rel = "crio/crio.sock";
    crio_ = std::make_unique<lab::Containerd>(*lab_, config);
    crio_->import_pause();
    lab::CriAdmin admin(crio_->socket());
    std::string pod = admin.run_pod("db", "data", "uid-db");

    tf::Finder finder(options());
    auto pod_c = find(finder, pod, crio_->socket());
    ASSERT_TRUE(pod_c) << "pod of the crio stand-in not reported";
    EXPECT_EQ(pod_c->flavor, "cri-o.io");
    EXPECT_EQ(pod_c->labels.at("io.kubernetes.sandbox"), "true");
    auto e = engine(finder, "k8s.io/cri-api", crio_->socket());
    ASSERT_TRUE(e);
    EXPECT_EQ(e->plugin, "crio");
    EXPECT_EQ(e->pid, crio_->pid());
    EXPECT_FALSE(engine(finder, "containerd.io", crio_->socket())) << "crio is not claimed by the containerd plugin";
    admin.stop_pod(pod);
    admin.remove_pod(pod);
}

TEST_F(FinderContainerd, CrashedContainerdIsPrunedFoundAgainAndResubscribed) {
    containerd_ = std::make_unique<lab::Containerd>(*lab_);
    const std::string api = containerd_->socket();
    { // gRPC's process-wide poller (an epoll fd, an eventfd) is created on first use and kept until exit
        tf::Finder warm_up(options());
        warm_up.containers();
    }
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        containerd_->run_task("tfns", "before");
        ASSERT_TRUE(tftest::eventually([&] { return find(finder, "tfns/before", api).has_value(); }, 4s));
        int old_pid = containerd_->pid();

        containerd_->crash_and_restart();
        ASSERT_NE(containerd_->pid(), old_pid);
        // The engine behind the old process is pruned, the new one found under its new PID.
        EXPECT_TRUE(tftest::eventually(
            [&] {
                auto e = engine(finder, "containerd.io", api);
                finder.containers();
                return e && e->pid == containerd_->pid();
            },
            10s))
            << "restarted containerd not found again";
        for (auto &e : finder.engines())
            if (same_api(e->api, api)) {
                EXPECT_EQ(e->pid, containerd_->pid()) << "the dead engine was not pruned";
            }
        // The task survived the crash (its shim did), and one started after
        // the restart is seen through the new event subscription.
        EXPECT_TRUE(find(finder, "tfns/before", api).has_value());
        containerd_->run_task("tfns", "after");
        EXPECT_TRUE(tftest::eventually([&] { return find(finder, "tfns/after", api).has_value(); }, 2s))
            << "a task started after the restart was not seen";
        containerd_->kill_task("tfns", "after");
        EXPECT_TRUE(tftest::eventually([&] { return !find(finder, "tfns/after", api).has_value(); }, 2s));
    }
    leaks.check();
}

} // namespace
