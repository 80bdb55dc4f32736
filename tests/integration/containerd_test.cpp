// SPDX-License-Identifier: Apache-2.0
// The containerd plugin against a real containerd that the lab starts:
// native tasks in a non-default namespace, lifecycle events, skipped
// namespaces, exec exits, and sockets that must be skipped within timeouts.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "containerd.hpp"
#include "grpc_plugin_host.hpp"
#include "lab.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace lab = turtlefinder::lab;
namespace host = tftest::grpc_host;

class ContainerdPlugin : public ::testing::Test {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        for (const char *program : {"containerd", "ctr", "runc", "containerd-shim-runc-v2"})
            if (!lab::which(program)) TF_SKIP_OR_FAIL(std::string(program) + " is not installed");
        lab_ = std::make_unique<lab::Lab>("cdtest");
        containerd_ = std::make_unique<lab::Containerd>(*lab_);
        plugin_ = std::make_unique<host::Plugin>("containerd");
        // gRPC starts process-wide threads (executor, timer, resolver) on first
        // use and keeps them for the life of the process; they are not ours to
        // account for. One probe + list + destroy warms them up, so that the
        // LeakGuard taken afterwards sees only what the engine clients own.
        auto warm = probe();
        for (auto &e : warm.engines) e->list();
    }
    void TearDown() override {
        plugin_.reset();
        containerd_.reset();
        lab_.reset();
    }

    host::ProbeResult probe(const std::map<std::string, std::string> &settings = {}) {
        // What discovery hands over: every listening socket, ttrpc included.
        return host::probe(*plugin_, containerd_->pid(), "containerd",
                           {containerd_->socket() + ".ttrpc", containerd_->socket()}, 1000ms, settings);
    }
    static host::Engine *of_type(host::ProbeResult &r, const std::string &type) {
        for (auto &e : r.engines)
            if (type == e->info().type) return e.get();
        return nullptr;
    }

    std::unique_ptr<lab::Lab> lab_;
    std::unique_ptr<lab::Containerd> containerd_;
    std::unique_ptr<host::Plugin> plugin_;
};

TEST_F(ContainerdPlugin, ProbeGivesNativeAndCriClients) {
    tftest::LeakGuard leaks;
    {
        auto r = probe();
        ASSERT_EQ(r.rc, 2) << r.error;
        auto *native = of_type(r, "containerd.io");
        auto *cri = of_type(r, "k8s.io/cri-api");
        ASSERT_NE(native, nullptr);
        ASSERT_NE(cri, nullptr);
        EXPECT_STREQ(native->info().flavor, "containerd.io");
        EXPECT_STREQ(cri->info().flavor, "containerd.io");
        EXPECT_EQ(native->info().api, containerd_->socket());
        EXPECT_EQ(native->info().pid, containerd_->pid());
        EXPECT_NE(std::string(native->info().version).find("1."), std::string::npos) << native->info().version;
        // The server UUID: 36 characters, stable for this root directory.
        EXPECT_EQ(std::string(native->info().id).size(), 36u) << native->info().id;
        auto again = probe();
        EXPECT_STREQ(of_type(again, "containerd.io")->info().id, native->info().id);
        // The CRI id is hostname:socket path inside the engine's mount namespace.
        char hostname[256] = {};
        ::gethostname(hostname, sizeof hostname - 1);
        EXPECT_EQ(std::string(cri->info().id), std::string(hostname) + ":" + containerd_->socket());
    }
    leaks.check();
}

TEST_F(ContainerdPlugin, NativeTaskLifecycleInNamespace) {
    containerd_->import_busybox("tfns");
    containerd_->import_busybox("moby");
    tftest::LeakGuard leaks;
    {
        auto r = probe();
        auto *native = of_type(r, "containerd.io");
        ASSERT_NE(native, nullptr);
        native->start_watch();
        ASSERT_TRUE(tftest::eventually([&] { return native->subscribed(); }, 5s)) << native->watch_error();

        int pid = containerd_->run_task("tfns", "t1", {"nerdctl/name=web", "com.docker.compose.project=shop"});
        ASSERT_GT(pid, 0);
        containerd_->run_task("moby", "hidden");

        auto c = native->find("tfns/t1");
        ASSERT_TRUE(c.has_value());
        EXPECT_EQ(c->pid, pid);
        EXPECT_TRUE(tftest::eventually([&] { return lab::comm_of(c->pid) == "sleep"; })) << lab::comm_of(c->pid);
        EXPECT_EQ(c->name, "web");
        EXPECT_FALSE(c->paused);
        EXPECT_EQ(c->labels["com.docker.compose.project"], "shop");
        EXPECT_FALSE(native->find("moby/hidden").has_value()) << "skip-namespaces default hides moby";
        EXPECT_TRUE(tftest::eventually([&] { return native->saw(TF_EVENT_STARTED, "tfns/t1"); }));
        EXPECT_FALSE(native->saw(TF_EVENT_STARTED, "moby/hidden"));

        auto inspected = native->inspect("tfns/t1");
        ASSERT_TRUE(inspected.has_value());
        EXPECT_EQ(inspected->pid, pid);
        EXPECT_FALSE(native->inspect("tfns/nope").has_value());
        EXPECT_FALSE(native->inspect("moby/hidden").has_value());

        // An exec's exit is not the container's.
        containerd_->ctr_ok("tfns", {"task", "exec", "--exec-id", "probe1", "t1", "true"});
        containerd_->pause_task("tfns", "t1");
        EXPECT_TRUE(tftest::eventually([&] { return native->saw(TF_EVENT_PAUSED, "tfns/t1"); }));
        EXPECT_FALSE(native->saw(TF_EVENT_EXITED, "tfns/t1")) << "exec exit taken for the container's";
        EXPECT_TRUE(native->find("tfns/t1")->paused);

        containerd_->resume_task("tfns", "t1");
        EXPECT_TRUE(tftest::eventually([&] { return native->saw(TF_EVENT_UNPAUSED, "tfns/t1"); }));
        EXPECT_FALSE(native->find("tfns/t1")->paused);

        containerd_->kill_task("tfns", "t1");
        EXPECT_TRUE(tftest::eventually([&] { return native->saw(TF_EVENT_EXITED, "tfns/t1"); }));
        EXPECT_FALSE(native->find("tfns/t1").has_value());
        EXPECT_FALSE(native->saw(TF_EVENT_EXITED, "moby/hidden"));
        containerd_->kill_task("moby", "hidden");

        native->cancel();
        native->join_watch();
        EXPECT_EQ(native->watch_result().value_or(0), -ECANCELED) << native->watch_error();
    }
    leaks.check();
}

TEST_F(ContainerdPlugin, DefaultNamespaceAndCustomSkipList) {
    containerd_->import_busybox("default");
    containerd_->import_busybox("moby");
    int in_default = containerd_->run_task("default", "plain");
    int in_moby = containerd_->run_task("moby", "dockerish");
    {
        auto r = probe({{"skip-namespaces", "default"}});
        auto *native = of_type(r, "containerd.io");
        ASSERT_NE(native, nullptr);
        auto moby = native->find("moby/dockerish");
        ASSERT_TRUE(moby.has_value()) << "moby is not skipped when the setting says otherwise";
        EXPECT_EQ(moby->pid, in_moby);
        EXPECT_FALSE(native->find("plain").has_value());
    }
    {
        auto r = probe();
        auto plain = of_type(r, "containerd.io")->find("plain");
        ASSERT_TRUE(plain.has_value()) << "IDs in the default namespace have no prefix";
        EXPECT_EQ(plain->pid, in_default);
        EXPECT_EQ(plain->name, "plain");
    }
    containerd_->kill_task("default", "plain");
    containerd_->kill_task("moby", "dockerish");
}

TEST_F(ContainerdPlugin, CancelStopsWatchPromptly) {
    tftest::LeakGuard leaks;
    {
        auto r = probe();
        auto *native = of_type(r, "containerd.io");
        native->start_watch();
        ASSERT_TRUE(tftest::eventually([&] { return native->subscribed(); }, 5s));
        auto t0 = std::chrono::steady_clock::now();
        native->cancel();
        native->join_watch();
        EXPECT_LT(std::chrono::steady_clock::now() - t0, tftest::hang_guard);
        EXPECT_EQ(native->watch_result().value_or(0), -ECANCELED);
        // Calls after cancel fail at once.
        tf_container_sink sink{sizeof sink, nullptr, [](void *, const tf_container *) { return 0; }};
        tf_error err{};
        EXPECT_EQ(native->raw()->list(native->raw(), &sink, &err), -ECANCELED);
    }
    leaks.check();
}

TEST_F(ContainerdPlugin, SkipsTtrpcAndHangingSockets) {
    // TEST DOUBLE: a process named containerd whose socket accepts and never
    // answers (a real engine cannot be made to do that on purpose).
    lab::FakeEngine hanging(*lab_, "containerd", lab::FakeEngine::Behaviour::hang, "hang.sock");
    tftest::LeakGuard leaks;
    {
        auto t0 = std::chrono::steady_clock::now();
        auto r = host::probe(*plugin_, hanging.pid(), "containerd", {hanging.socket()}, 500ms);
        auto took = std::chrono::steady_clock::now() - t0;
        EXPECT_EQ(r.rc, 0) << r.error;
        EXPECT_TRUE(r.engines.empty());
        EXPECT_LT(took, tftest::hang_guard) << "a hanging socket must not hold the probe beyond its timeout";

        // Only the ttrpc socket of a real containerd: nothing found.
        r = host::probe(*plugin_, containerd_->pid(), "containerd", {containerd_->socket() + ".ttrpc"}, 500ms);
        EXPECT_EQ(r.rc, 0);
        EXPECT_TRUE(r.engines.empty());
        // ...and never connected to: a listener named *.ttrpc counts none.
        lab::FakeEngine ttrpc(*lab_, "containerd", lab::FakeEngine::Behaviour::hang, "fake.sock.ttrpc");
        r = host::probe(*plugin_, ttrpc.pid(), "containerd", {ttrpc.socket()}, 500ms);
        EXPECT_EQ(r.rc, 0);
        EXPECT_EQ(ttrpc.connections(), 0) << "a ttrpc socket was probed";

        // A socket path that does not exist: refused quickly.
        r = host::probe(*plugin_, containerd_->pid(), "containerd", {lab_->path("nothing.sock")}, 500ms);
        EXPECT_EQ(r.rc, 0);
    }
    leaks.check();
}

} // namespace
