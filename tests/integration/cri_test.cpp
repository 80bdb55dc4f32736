// SPDX-License-Identifier: Apache-2.0
// The CRI engine client against real CRI servers the lab starts: containerd's
// CRI plugin, and a CRI-O stand-in. CRI-O is not packaged for Debian 12, so a
// copy of the containerd binary named `crio` (socket .../crio/crio.sock), a
// real CRI server, is what the crio plugin must find here.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "containerd.hpp"
#include "cri_admin.hpp"
#include "grpc_plugin_host.hpp"
#include "lab.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace lab = turtlefinder::lab;
namespace host = tftest::grpc_host;

// runc's init becomes the container's program only once started; poll.
class Cri : public ::testing::Test {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        for (const char *program : {"containerd", "ctr", "runc", "containerd-shim-runc-v2", "gcc"})
            if (!lab::which(program)) TF_SKIP_OR_FAIL(std::string(program) + " is not installed");
        lab_ = std::make_unique<lab::Lab>("critest");
    }
    void TearDown() override {
        containerd_.reset();
        lab_.reset();
    }

    // Starts the engine, imports the pause and busybox images into k8s.io,
    // probes it with `plugin` and returns its CRI client.
    host::Engine *start(const std::string &plugin_name, lab::ContainerdConfig config = {}) {
        containerd_ = std::make_unique<lab::Containerd>(*lab_, config);
        containerd_->import_pause();
        containerd_->import_busybox("k8s.io");
        plugin_ = std::make_unique<host::Plugin>(plugin_name);
        probed_ = host::probe(*plugin_, containerd_->pid(), config.process_name,
                              {containerd_->socket() + ".ttrpc", containerd_->socket()}, 1000ms);
        for (auto &e : probed_.engines)
            if (std::string(e->info().type) == "k8s.io/cri-api") return e.get();
        return nullptr;
    }

    std::unique_ptr<lab::Lab> lab_;
    std::unique_ptr<lab::Containerd> containerd_;
    std::unique_ptr<host::Plugin> plugin_;
    host::ProbeResult probed_;
};

TEST_F(Cri, PodAndContainerWithPodLabelsAndHostPids) {
    auto *cri = start("containerd");
    ASSERT_NE(cri, nullptr) << probed_.error;
    EXPECT_STREQ(cri->info().flavor, "containerd.io");
    auto scenario = [&](const std::string &uid) {
        lab::CriAdmin admin(containerd_->socket());
        std::string pod = admin.run_pod("web", "shop", uid, {{"app", "web"}});
        std::string ctr = admin.create_container(pod, "app", lab::Containerd::busybox_image, {"sleep", "infinity"},
                                                 {{"tier", "front"}});
        admin.start_container(ctr);

        auto sandbox = cri->find(pod);
        ASSERT_TRUE(sandbox.has_value());
        EXPECT_EQ(sandbox->labels["io.kubernetes.sandbox"], "true");
        EXPECT_EQ(sandbox->labels["io.kubernetes.pod.name"], "web");
        EXPECT_EQ(sandbox->labels["io.kubernetes.pod.namespace"], "shop");
        EXPECT_EQ(sandbox->labels["io.kubernetes.pod.uid"], uid);
        EXPECT_EQ(sandbox->labels["app"], "web");
        ASSERT_GT(sandbox->pid, 0);
        EXPECT_TRUE(tftest::eventually([&] { return lab::comm_of(sandbox->pid) == "pause"; }))
            << lab::comm_of(sandbox->pid) << " (must be a host PID)";

        auto c = cri->find(ctr);
        ASSERT_TRUE(c.has_value());
        EXPECT_EQ(c->name, "app");
        EXPECT_EQ(c->labels["io.kubernetes.container.name"], "app");
        EXPECT_EQ(c->labels["io.kubernetes.pod.name"], "web");
        EXPECT_EQ(c->labels["io.kubernetes.pod.namespace"], "shop");
        EXPECT_EQ(c->labels["io.kubernetes.pod.uid"], uid);
        EXPECT_EQ(c->labels["tier"], "front");
        EXPECT_EQ(c->labels.count("io.kubernetes.sandbox"), 0u);
        ASSERT_GT(c->pid, 0);
        EXPECT_TRUE(tftest::eventually([&] { return lab::comm_of(c->pid) == "sleep"; })) << lab::comm_of(c->pid);

        auto inspected = cri->inspect(ctr);
        ASSERT_TRUE(inspected.has_value());
        EXPECT_EQ(inspected->pid, c->pid);
        EXPECT_EQ(inspected->labels["io.kubernetes.pod.name"], "web");
        auto inspected_pod = cri->inspect(pod);
        ASSERT_TRUE(inspected_pod.has_value());
        EXPECT_EQ(inspected_pod->pid, sandbox->pid);
        EXPECT_FALSE(cri->inspect("0123456789abcdef-nope").has_value());

        admin.stop_container(ctr);
        EXPECT_FALSE(cri->find(ctr).has_value()) << "a stopped container is not alive";
        EXPECT_FALSE(cri->inspect(ctr).has_value());
        admin.remove_container(ctr);
        admin.stop_pod(pod);
        EXPECT_FALSE(cri->find(pod).has_value());
        admin.remove_pod(pod);
        EXPECT_FALSE(cri->inspect(pod).has_value());
    };
    // gRPC grows process-wide pools (executor, timer threads) on first use
    // and keeps them; they are not ours. A first round warms them up, the
    // second is counted: it must leave no thread or fd of its own behind.
    scenario("uid-warm-up");
    tftest::LeakGuard leaks;
    scenario("uid-1234");
    leaks.check();
}

TEST_F(Cri, WatchWithoutEventApiIsNotSupported) {
    auto *cri = start("containerd");
    ASSERT_NE(cri, nullptr) << probed_.error;
    cri->list();
    tftest::LeakGuard leaks;
    for (int round = 0; round < 2; ++round) {
        // containerd 1.6 answers GetContainerEvents with UNIMPLEMENTED.
        auto t0 = std::chrono::steady_clock::now();
        cri->start_watch();
        cri->join_watch();
        EXPECT_LT(std::chrono::steady_clock::now() - t0, tftest::hang_guard);
        EXPECT_EQ(cri->watch_result().value_or(0), -ENOTSUP) << cri->watch_error();
        EXPECT_FALSE(cri->subscribed());
    }
    int told = 0;
    for (const auto &[level, message] : plugin_->log())
        if (message.find("no container event stream") != std::string::npos) ++told;
    EXPECT_EQ(told, 1) << "logged once, not on every watch";
    leaks.check();
}

TEST_F(Cri, CrioStandInFoundByCrioPlugin) {
    lab::ContainerdConfig config;
    config.dir_name = "o";
    config.process_name = "crio";
    config.socket_rel = "crio/crio.sock";
    auto *cri = start("crio", config);
    ASSERT_NE(cri, nullptr) << probed_.error;
    EXPECT_EQ(lab::comm_of(containerd_->pid()), "crio");
    EXPECT_EQ(probed_.rc, 1) << "only the CRI client: the crio plugin knows no native API";
    EXPECT_STREQ(cri->info().type, "k8s.io/cri-api");
    EXPECT_STREQ(cri->info().flavor, "cri-o.io");
    EXPECT_EQ(std::string(cri->info().api), containerd_->socket());

    lab::CriAdmin admin(containerd_->socket());
    std::string pod = admin.run_pod("db", "data", "uid-db");
    auto sandbox = cri->find(pod);
    ASSERT_TRUE(sandbox.has_value());
    EXPECT_EQ(sandbox->labels["io.kubernetes.pod.name"], "db");
    EXPECT_TRUE(tftest::eventually([&] { return lab::comm_of(sandbox->pid) == "pause"; }))
        << lab::comm_of(sandbox->pid);
    admin.stop_pod(pod);
    admin.remove_pod(pod);
    EXPECT_FALSE(cri->find(pod).has_value());
}

TEST_F(Cri, ContainerdPluginDoesNotClaimOrProbeCrio) {
    // The containerd plugin claims only its own process names.
    host::Plugin containerd_plugin("containerd");
    bool claims_crio = false;
    for (uint32_t i = 0; i < containerd_plugin.detector().n_process_names; ++i)
        claims_crio |= std::string(containerd_plugin.detector().process_names[i]) == "crio";
    EXPECT_FALSE(claims_crio);
    host::Plugin crio_plugin("crio");
    ASSERT_EQ(crio_plugin.detector().n_process_names, 1u);
    EXPECT_STREQ(crio_plugin.detector().process_names[0], "crio");
}

} // namespace
