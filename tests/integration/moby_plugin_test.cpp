// SPDX-License-Identifier: Apache-2.0
// The moby plugin, loaded as a shared object and driven through the C ABI
// only, against a real dockerd, real podman, and misbehaving sockets (lab
// FakeEngine test doubles, named like dockerd).
#include <turtlefinder/plugin.h>

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "lab.hpp"
#include "testing.hpp"

namespace lab = turtlefinder::lab;
using namespace std::chrono_literals;

namespace {

std::string plugin_path() {
    const char *root = std::getenv("TF_BUILD_ROOT");
    return std::string(root != nullptr ? root : ".") + "/plugins/moby/moby.so";
}

struct Logs {
    std::mutex mu;
    std::vector<std::string> lines;
    static void log(void *ctx, tf_log_level, const char *message) {
        auto *self = static_cast<Logs *>(ctx);
        std::lock_guard l(self->mu);
        self->lines.emplace_back(message);
    }
};

// Owns the engines a probe hands over.
struct Engines {
    std::vector<tf_engine *> engines;
    static int add(void *ctx, tf_engine *e) {
        static_cast<Engines *>(ctx)->engines.push_back(e);
        return 0;
    }
    ~Engines() {
        for (tf_engine *e : engines) {
            e->cancel(e);
            e->destroy(e);
        }
    }
};

struct Found {
    std::string id, name;
    int pid = 0;
    bool paused = false;
    std::map<std::string, std::string> labels;
};

struct Collect {
    std::vector<Found> containers;
    static int add(void *ctx, const tf_container *c) {
        Found f;
        f.id = c->id;
        f.name = c->name != nullptr ? c->name : "";
        f.pid = c->pid;
        f.paused = (c->flags & TF_CONTAINER_PAUSED) != 0;
        for (uint32_t i = 0; i < c->n_labels; ++i) f.labels[c->labels[i].key] = c->labels[i].value;
        static_cast<Collect *>(ctx)->containers.push_back(std::move(f));
        return 0;
    }
    tf_container_sink sink() { return {sizeof(tf_container_sink), this, &Collect::add}; }
    const Found *find(const std::string &id) const {
        for (const auto &c : containers)
            if (c.id == id) return &c;
        return nullptr;
    }
};

class MobyPluginTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        handle_ = ::dlopen(plugin_path().c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle_ == nullptr) {
            setup_error_ = std::string("dlopen: ") + ::dlerror();
            return;
        }
        entry_ = static_cast<const tf_plugin_descriptor *>(::dlsym(handle_, TF_PLUGIN_ENTRY_SYMBOL));
        if (entry_ == nullptr) {
            setup_error_ = "no tf_plugin_entry";
            return;
        }
        host_ = {sizeof(tf_host),
                 {TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR, TF_ABI_VERSION_PATCH},
                 &logs_,
                 &Logs::log,
                 nullptr};
        tf_error err{};
        if (entry_->init(&host_, &err) != 0) {
            setup_error_ = std::string("init: ") + err.message;
            return;
        }
        detector_ = static_cast<const tf_engine_detector *>(entry_->get_extension(TF_EXT_ENGINE_DETECTOR));
        if (::geteuid() != 0 || !lab::which("dockerd") || !lab::which("docker") || !lab::which("busybox")) return;
        lab_ = new lab::Lab("moby");
        try {
            dockerd_ = new lab::Dockerd(*lab_);
            dockerd_->import_busybox();
        } catch (const std::exception &e) {
            setup_error_ = e.what();
        }
    }
    static void TearDownTestSuite() {
        delete dockerd_;
        dockerd_ = nullptr;
        delete lab_;
        lab_ = nullptr;
        if (entry_ != nullptr) entry_->deinit();
        if (handle_ != nullptr) ::dlclose(handle_);
        handle_ = nullptr;
        entry_ = nullptr;
    }
    void SetUp() override {
        ASSERT_TRUE(setup_error_.empty()) << setup_error_;
        ASSERT_NE(detector_, nullptr);
        TF_REQUIRE_ROOT();
        if (lab_ == nullptr) TF_SKIP_OR_FAIL("needs dockerd, docker and busybox");
    }

    // Probes `paths` as if they were the listening sockets of dockerd `pid`.
    static int probe(const std::vector<std::string> &paths, int timeout_ms, Engines &out, tf_error &err, int pid = 0) {
        std::vector<const char *> p;
        for (const auto &s : paths) p.push_back(s.c_str());
        tf_probe_request req{};
        req.struct_size = sizeof req;
        req.pid = pid != 0 ? pid : (dockerd_ != nullptr ? dockerd_->pid() : 1);
        req.process_name = "dockerd";
        req.n_api_paths = static_cast<uint32_t>(p.size());
        req.api_paths = p.data();
        req.timeout_ms = timeout_ms;
        tf_engine_sink sink{sizeof(tf_engine_sink), &out, &Engines::add};
        return detector_->probe(&req, &sink, &err);
    }

    static inline void *handle_ = nullptr;
    static inline const tf_plugin_descriptor *entry_ = nullptr;
    static inline const tf_engine_detector *detector_ = nullptr;
    static inline tf_host host_{};
    static inline Logs logs_;
    static inline lab::Lab *lab_ = nullptr;
    static inline lab::Dockerd *dockerd_ = nullptr;
    static inline std::string setup_error_;
};

TEST_F(MobyPluginTest, DescriptorClaimsDockerd) {
    EXPECT_STREQ(entry_->name, "moby");
    EXPECT_EQ(entry_->abi.major, static_cast<uint32_t>(TF_ABI_VERSION_MAJOR));
    ASSERT_EQ(detector_->n_process_names, 1u);
    EXPECT_STREQ(detector_->process_names[0], "dockerd");
    EXPECT_EQ(entry_->get_extension("tf.no-such-thing.v1"), nullptr);
}

// The real socket among a garbage one (like dockerd's metrics.sock) and a
// hanging one is found, within the per-candidate timeouts.
TEST_F(MobyPluginTest, ProbePicksTheRealSocketAmongBrokenOnes) {
    // Named to sort before the real socket: the plugin probes in sorted order.
    lab::FakeEngine metrics(*lab_, "dockerd", lab::FakeEngine::Behaviour::garbage, "a-metrics.sock");
    lab::FakeEngine hanging(*lab_, "dockerd", lab::FakeEngine::Behaviour::hang, "b-hang.sock");
    ASSERT_LT(hanging.socket(), dockerd_->socket());
    EXPECT_EQ(lab::comm_of(metrics.pid()), "dockerd");
    tftest::LeakGuard guard;
    {
        Engines engines;
        tf_error err{};
        auto t0 = std::chrono::steady_clock::now();
        int n = probe({metrics.socket(), hanging.socket(), dockerd_->socket()}, 500, engines, err);
        auto took = std::chrono::steady_clock::now() - t0;
        ASSERT_EQ(n, 1) << err.message;
        ASSERT_EQ(engines.engines.size(), 1u);
        EXPECT_GE(took, 500ms); // the hanging candidate was tried...
        EXPECT_LT(took, tftest::hang_guard); // ...and ended by its timeout
        {
            std::lock_guard l(logs_.mu);
            auto logged = [&](const std::string &path) {
                for (const auto &line : logs_.lines)
                    if (line.find(path) != std::string::npos) return true;
                return false;
            };
            EXPECT_TRUE(logged(metrics.socket()));
            EXPECT_TRUE(logged(hanging.socket()));
        }
        tf_engine *e = engines.engines[0];
        const tf_engine_info *info = e->info(e);
        EXPECT_STREQ(info->type, "docker.com");
        EXPECT_STREQ(info->flavor, "docker.com");
        EXPECT_EQ(info->api, dockerd_->socket());
        EXPECT_EQ(info->pid, dockerd_->pid());
        EXPECT_EQ(info->id, dockerd_->docker_ok({"info", "-f", "{{.ID}}"}));
        EXPECT_EQ(info->version, dockerd_->docker_ok({"version", "-f", "{{.Server.Version}}"}));
    }
    guard.check();
}

TEST_F(MobyPluginTest, BrokenSocketsAloneGiveNoEngineWithinTheTimeout) {
    using B = lab::FakeEngine::Behaviour;
    for (B b : {B::garbage, B::hang, B::slow, B::close, B::endless}) {
        lab::FakeEngine fake(*lab_, "dockerd", b, std::string("p-") + lab::to_string(b) + ".sock");
        tftest::LeakGuard guard;
        {
            Engines engines;
            tf_error err{};
            auto t0 = std::chrono::steady_clock::now();
            int n = probe({fake.socket()}, 400, engines, err, fake.pid());
            EXPECT_EQ(n, 0) << lab::to_string(b);
            EXPECT_LT(std::chrono::steady_clock::now() - t0, tftest::hang_guard) << lab::to_string(b);
        }
        guard.check();
    }
}

// podman's Docker-compatible API is not Docker: its Libpod-Api-Version header gives it away.
TEST_F(MobyPluginTest, PodmanIsRefused) {
    if (!lab::which("podman")) TF_SKIP_OR_FAIL("needs podman");
    std::string dir = lab_->mkdir("pm");
    std::string sock = dir + "/podman.sock";
    lab::SpawnOptions so;
    so.args = {"podman", "--root", dir + "/root", "--runroot", dir + "/run",    "--storage-driver",
               "vfs",    "system", "service",     "--time=0",  "unix://" + sock};
    so.env = {{"XDG_CONFIG_HOME", dir + "/cfg"}, {"XDG_DATA_HOME", dir + "/data"}};
    so.log_path = dir + "/podman.log";
    lab::Process podman(so);
    ASSERT_TRUE(lab::wait_docker_ping(sock, 15s)) << podman.log_tail();
    tftest::LeakGuard guard;
    {
        Engines engines;
        tf_error err{};
        EXPECT_EQ(probe({sock}, 2000, engines, err, podman.pid()), 0);
        // and the real dockerd next to it is still found
        EXPECT_EQ(probe({sock, dockerd_->socket()}, 2000, engines, err), 1);
        ASSERT_EQ(engines.engines.size(), 1u);
        EXPECT_EQ(engines.engines[0]->info(engines.engines[0])->api, dockerd_->socket());
    }
    guard.check();
    podman.stop(10s);
}

TEST_F(MobyPluginTest, ListAndInspectThroughTheAbi) {
    std::string running = dockerd_->run_container({"--label", "a=b"});
    std::string paused = dockerd_->run_container();
    dockerd_->docker_ok({"pause", paused});
    std::string gone = dockerd_->run_container({}, "busybox-img", {"true"});
    ASSERT_TRUE(tftest::eventually(
        [&] {
            return dockerd_->docker_ok({"inspect", "-f", "{{.State.Status}}", gone}) == "exited";
        },
        10s));
    tftest::LeakGuard guard;
    {
        Engines engines;
        tf_error err{};
        ASSERT_EQ(probe({dockerd_->socket()}, 2000, engines, err), 1) << err.message;
        tf_engine *e = engines.engines[0];
        Collect all;
        auto sink = all.sink();
        ASSERT_EQ(e->list(e, &sink, &err), 0) << err.message;
        const Found *r = all.find(running);
        ASSERT_NE(r, nullptr);
        EXPECT_EQ(r->labels.at("a"), "b");
        EXPECT_FALSE(r->paused);
        EXPECT_EQ(lab::comm_of(r->pid), "sleep");
        EXPECT_EQ(std::to_string(r->pid), dockerd_->docker_ok({"inspect", "-f", "{{.State.Pid}}", running}));
        EXPECT_EQ("/" + r->name, dockerd_->docker_ok({"inspect", "-f", "{{.Name}}", running}));
        const Found *p = all.find(paused);
        ASSERT_NE(p, nullptr);
        EXPECT_TRUE(p->paused);
        EXPECT_EQ(all.find(gone), nullptr);

        Collect one;
        auto one_sink = one.sink();
        ASSERT_EQ(e->inspect(e, running.c_str(), &one_sink, &err), 0);
        ASSERT_EQ(one.containers.size(), 1u);
        EXPECT_EQ(one.containers[0].pid, r->pid);
        Collect none;
        auto none_sink = none.sink();
        EXPECT_EQ(e->inspect(e, gone.c_str(), &none_sink, &err), 0);
        EXPECT_EQ(e->inspect(e, "no-such-container", &none_sink, &err), 0);
        EXPECT_TRUE(none.containers.empty());
    }
    guard.check();
    dockerd_->docker_ok({"rm", "-f", running, paused, gone});
}

struct Watch {
    std::mutex mu;
    std::vector<std::pair<tf_event_kind, std::string>> events;
    std::atomic<bool> subscribed{false};
    static int on_subscribed(void *ctx) {
        static_cast<Watch *>(ctx)->subscribed = true;
        return 0;
    }
    static int on_event(void *ctx, const tf_container_event *e) {
        auto *self = static_cast<Watch *>(ctx);
        std::lock_guard l(self->mu);
        self->events.emplace_back(e->kind, e->id);
        return 0;
    }
    std::vector<tf_event_kind> kinds_of(const std::string &id) {
        std::lock_guard l(mu);
        std::vector<tf_event_kind> out;
        for (const auto &[k, i] : events)
            if (i == id) out.push_back(k);
        return out;
    }
};

TEST_F(MobyPluginTest, WatchDeliversLifecycleEventsAndCancelStopsIt) {
    tftest::LeakGuard guard;
    {
        Engines engines;
        tf_error err{};
        ASSERT_EQ(probe({dockerd_->socket()}, 2000, engines, err), 1) << err.message;
        tf_engine *e = engines.engines[0];
        Watch w;
        tf_event_sink sink{sizeof(tf_event_sink), &w, &Watch::on_subscribed, &Watch::on_event};
        std::atomic<int> rc{1};
        tf_error werr{};
        std::thread t([&] { rc = e->watch(e, &sink, &werr); });
        ASSERT_TRUE(tftest::eventually([&] { return w.subscribed.load() || rc.load() != 1; }, 10s));
        ASSERT_TRUE(w.subscribed.load()) << werr.message;

        std::string id = dockerd_->run_container();
        dockerd_->docker_ok({"pause", id});
        dockerd_->docker_ok({"unpause", id});
        dockerd_->docker_ok({"kill", id});
        const std::vector<tf_event_kind> expected = {TF_EVENT_STARTED, TF_EVENT_PAUSED, TF_EVENT_UNPAUSED,
                                                     TF_EVENT_EXITED};
        EXPECT_TRUE(tftest::eventually([&] { return w.kinds_of(id).size() >= expected.size(); }, 10s));
        EXPECT_EQ(w.kinds_of(id), expected);

        e->cancel(e);
        EXPECT_TRUE(tftest::eventually([&] { return rc.load() != 1; }, tftest::hang_guard));
        t.join();
        EXPECT_EQ(rc.load(), -ECANCELED) << werr.message;
        // cancelled engines refuse further calls promptly
        Collect c;
        auto cs = c.sink();
        EXPECT_EQ(e->list(e, &cs, &err), -ECANCELED);
        dockerd_->docker_ok({"rm", "-f", id});
    }
    guard.check();
}

} // namespace
