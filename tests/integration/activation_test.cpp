// SPDX-License-Identifier: Apache-2.0
// Socket activation end to end: real systemd (PID 1 of a container of the
// lab's dockerd) and real systemd-socket-activate, both starting a real
// podman when the Finder connects to their podman.sock.
#include <gtest/gtest.h>

#include <turtlefinder/finder.hpp>
#include <turtlefinder/plugin.h>

#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "lab.hpp"
#include "nested.hpp"
#include "podman.hpp"
#include "systemd.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace lab = turtlefinder::lab;
using Clock = std::chrono::steady_clock;

class Activation : public ::testing::Test {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        for (const char *program : {"dockerd", "podman", "systemd-socket-activate", "runc", "conmon"})
            if (!lab::which(program)) TF_SKIP_OR_FAIL(std::string(program) + " is not installed");
        if (!std::filesystem::exists("/usr/lib/systemd/systemd")) TF_SKIP_OR_FAIL("systemd is not installed");
        lab_ = std::make_unique<lab::Lab>("activ");
        dockerd_ = std::make_unique<lab::Dockerd>(*lab_);
        api_ = lab::docker_api(*lab_, *dockerd_);
        // The first discovery in a process leaves one epoll fd and one eventfd
        // open for good (process-wide pollers of the libraries engine clients
        // use); later Finders add none. Take it before any leak baseline.
        static const bool warmed_up = [] {
            tf::Finder warm_up(options());
            warm_up.containers();
            return true;
        }();
        (void)warmed_up;
    }
    void TearDown() override {
        systemd_.reset();
        dockerd_.reset();
        lab_.reset();
    }

    lab::SystemdContainer &start_systemd(lab::SystemdConfig config) {
        systemd_ = std::make_unique<lab::SystemdContainer>(*lab_, api_, std::move(config));
        return *systemd_;
    }

    static tf::Options options(std::chrono::milliseconds online_wait = 5s) {
        tf::Options o;
        o.online_wait = online_wait;
        o.probe_timeout = 1s;
        // Not under test here, and gRPC keeps process-wide fds (its poller)
        // from its first use on, which a LeakGuard would count as leaked.
        o.disabled_plugins = {"containerd", "crio"};
        return o;
    }
    // The podman engine behind the socket systemd holds in our container.
    std::shared_ptr<const tf::Engine> systemd_podman(tf::Finder &f) const {
        for (auto &e : f.engines())
            if (e->type == "podman.io" && e->api == systemd_->reachable_socket()) return e;
        return nullptr;
    }
    static std::optional<tf::Container> named(const std::vector<tf::Container> &all, const std::string &name,
                                              const std::string &type) {
        for (const auto &c : all)
            if (c.name == name && c.type == type) return c;
        return std::nullopt;
    }

    std::unique_ptr<lab::Lab> lab_;
    std::unique_ptr<lab::Dockerd> dockerd_;
    lab::DockerApi api_;
    std::unique_ptr<lab::SystemdContainer> systemd_;
};

TEST_F(Activation, DiscoveryActivatesPodmanUnderSystemdInAContainer) {
    auto &sd = start_systemd({.name = "tf-act-sd"});
    std::string id = sd.run_busybox("inpod");
    ASSERT_TRUE(sd.podman_services().empty()) << "podman must not run before the Finder connects";
    ASSERT_TRUE(sd.listening(sd.config().socket));

    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        auto all = finder.containers();
        auto services = sd.podman_services();
        ASSERT_EQ(services.size(), 1u) << "the discovery should have started exactly one podman under systemd";

        auto engine = systemd_podman(finder);
        ASSERT_TRUE(engine) << "no podman engine at " << sd.reachable_socket();
        EXPECT_EQ(engine->pid, services[0]);
        EXPECT_EQ(lab::comm_of(engine->pid), "podman");
        EXPECT_TRUE(lab::descends_from(engine->pid, sd.pid()));
        EXPECT_EQ(engine->flavor, "podman.io");
        EXPECT_EQ(engine->plugin, "podman");
        EXPECT_FALSE(engine->id.empty());
        EXPECT_EQ(engine->prefix, "tf-act-sd");
        ASSERT_TRUE(engine->parent) << "the podman engine should sit in the lab dockerd's container";
        EXPECT_EQ(engine->parent->type, "docker.com");
        EXPECT_EQ(engine->parent->pid, dockerd_->pid());

        auto c = named(all, "inpod", "podman.io");
        ASSERT_TRUE(c) << "the podman container is not listed";
        EXPECT_EQ(c->id, id);
        EXPECT_EQ(c->labels.at(tf::prefix_label), "tf-act-sd");
        EXPECT_EQ(lab::comm_of(c->pid), "sleep");
        EXPECT_TRUE(lab::descends_from(c->pid, sd.pid()));
        EXPECT_GE(finder.stats().activations, 1u);

        // A container started while watched arrives by event, without activation.
        std::string later = sd.run_busybox("inpod-later");
        EXPECT_TRUE(
            tftest::eventually([&] { return named(finder.containers(), "inpod-later", "podman.io").has_value(); }));
        EXPECT_EQ(sd.podman_services(), services) << "the running service was started again";
    }
    leaks.check();
}

TEST_F(Activation, UnchangedActivatorSocketsAreNotReadAgain) {
    auto &sd = start_systemd({.name = "tf-act-sd2"});
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        finder.containers();
        auto engine = systemd_podman(finder);
        ASSERT_TRUE(engine);
        auto reads = finder.stats().activator_socket_reads;
        auto activations = finder.stats().activations;
        EXPECT_GE(reads, 1u);
        for (int i = 0; i < 2; ++i) {
            finder.containers();
            EXPECT_EQ(finder.stats().activator_socket_reads, reads) << "discovery " << i + 2;
            EXPECT_EQ(finder.stats().activations, activations) << "discovery " << i + 2;
        }
        ASSERT_TRUE(systemd_podman(finder));
        EXPECT_EQ(systemd_podman(finder)->pid, engine->pid);
        EXPECT_EQ(sd.podman_services().size(), 1u);
    }
    leaks.check();
}

// The activated service is also a `podman` process, which the same plugin
// claims as a detector: later discoveries must not watch it a second time.
TEST_F(Activation, ActivatedServiceIsWatchedOnce) {
    auto &sd = start_systemd({.name = "tf-act-once"});
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        for (int i = 0; i < 3; ++i) {
            finder.containers();
            auto services = sd.podman_services();
            ASSERT_EQ(services.size(), 1u);
            int watching = 0;
            for (auto &e : finder.engines()) watching += e->type == "podman.io" && e->pid == services[0];
            EXPECT_EQ(watching, 1) << "discovery " << i + 1 << " watches podman PID " << services[0] << " " << watching
                                   << " times";
        }
    }
    leaks.check();
}

TEST_F(Activation, KilledServiceIsPrunedAndActivatedAgain) {
    auto &sd = start_systemd({.name = "tf-act-sd3"});
    sd.run_busybox("survivor");
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        finder.containers();
        auto first = systemd_podman(finder);
        ASSERT_TRUE(first);
        ASSERT_EQ(::kill(first->pid, SIGKILL), 0);

        // A later discovery prunes the dead engine; one after that (or the
        // same) activates the socket again: a new service, the container back.
        bool again = tftest::eventually(
            [&] {
                auto all = finder.containers();
                auto now = systemd_podman(finder);
                return now && now->pid != first->pid && named(all, "survivor", "podman.io").has_value();
            },
            15s, 100ms);
        ASSERT_TRUE(again) << "podman was not activated again after SIGKILL";
        for (auto &e : finder.engines()) EXPECT_NE(e->pid, first->pid) << "the killed engine is still watched";
        auto services = sd.podman_services();
        ASSERT_EQ(services.size(), 1u);
        EXPECT_EQ(systemd_podman(finder)->pid, services[0]);
        EXPECT_GE(finder.stats().activations, 2u);
    }
    leaks.check();
}

TEST_F(Activation, SystemdSocketActivateOnTheHostExecsPodmanInPlace) {
    const int idle_seconds = 2;
    auto sa = lab::SocketActivate::podman(*lab_, lab_->path("sa/podman.sock"), idle_seconds);
    ASSERT_EQ(lab::comm_of(sa.pid()), "systemd-socket-");
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        finder.containers();
        std::shared_ptr<const tf::Engine> engine;
        for (auto &e : finder.engines())
            if (e->type == "podman.io" && e->api.ends_with(sa.socket())) engine = e;
        ASSERT_TRUE(engine) << "the socket-activated podman is not watched";
        EXPECT_EQ(engine->pid, sa.pid()) << "systemd-socket-activate execs the service in place";
        EXPECT_EQ(lab::comm_of(sa.pid()), "podman");
        EXPECT_EQ(engine->prefix, "");
        EXPECT_FALSE(engine->parent);

        // The open watch is a client: podman must not idle out under it.
        auto until = Clock::now() + std::chrono::seconds(idle_seconds + 1);
        while (Clock::now() < until) {
            ASSERT_TRUE(sa.process().running()) << "podman exited although watched";
            std::this_thread::sleep_for(100ms);
        }
        finder.containers();
        EXPECT_EQ(finder.engine_count(), finder.engines().size());
        bool still = false;
        for (auto &e : finder.engines()) still = still || (e->type == "podman.io" && e->pid == sa.pid());
        EXPECT_TRUE(still);
    }
    leaks.check();
    // Unwatched, it idles out.
    EXPECT_TRUE(sa.process().wait(std::chrono::seconds(idle_seconds + 5)).has_value());
}

// online_wait bounds only the wait for first syncs: with 0, probing and
// activation still run (bounded by probe_timeout) and the engines are found.
TEST_F(Activation, ZeroOnlineWaitStillFindsAndActivates) {
    auto &sd = start_systemd({.name = "tf-act-zero"});
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options(0ms));
        finder.containers();
        auto podman = systemd_podman(finder);
        ASSERT_TRUE(podman) << "the socket-activated podman is not watched after one discovery";
        auto services = sd.podman_services();
        ASSERT_EQ(services.size(), 1u);
        EXPECT_EQ(podman->pid, services[0]);
        bool docker = false;
        for (auto &e : finder.engines()) docker = docker || e->type == "docker.com";
        EXPECT_TRUE(docker) << "the lab's dockerd is not watched";
    }
    leaks.check();
}

// Podman runs helper programs (conmon --version, runc --version,
// dpkg-query) to answer /version and /info: no discovery may cause them.
// The podman service's children are watched while 20 one-shot discoveries
// run back to back. (Podman checks conmon once as it starts: the service is
// started first, by one discovery, and watched from then on.)
TEST_F(Activation, DiscoveriesMakePodmanRunNoHelperPrograms) {
    auto &sd = start_systemd({.name = "tf-act-helpers", .idle_seconds = 60});
    {
        tf::Finder warm(options());
        warm.containers();
        ASSERT_TRUE(systemd_podman(warm));
    }
    ASSERT_TRUE(tftest::eventually(
        [&] {
            for (pid_t service : sd.podman_services())
                if (!lab::children_of(service).empty()) return false;
            return !sd.podman_services().empty();
        },
        tftest::hang_guard))
        << "podman's start-up helpers did not end";
    std::atomic<bool> done{false};
    std::mutex seen_mu;
    std::set<std::string> seen; // comm of every child of a podman service
    std::thread sampler([&] {
        while (!done) {
            for (pid_t service : sd.podman_services())
                for (pid_t child : lab::children_of(service)) {
                    std::lock_guard lock(seen_mu);
                    seen.insert(lab::comm_of(child));
                }
            std::this_thread::sleep_for(2ms);
        }
    });
    int found = 0;
    for (int i = 0; i < 20; ++i) {
        tf::Finder finder(options());
        finder.containers();
        found += systemd_podman(finder) != nullptr;
    }
    done = true;
    sampler.join();
    EXPECT_EQ(found, 20) << "podman was not found by every discovery";
    std::lock_guard lock(seen_mu);
    for (const char *helper : {"conmon", "runc", "dpkg-query", "crun"})
        EXPECT_FALSE(seen.contains(helper)) << "a discovery made podman run " << helper;
    for (auto &comm : seen) std::cout << "[ info ] a child of podman: " << comm << "\n";
}

// podman-docker: a standalone podman service on a docker.sock. The moby
// detector refuses it (Libpod-Api-Version); the podman detector takes it.
TEST_F(Activation, StandalonePodmanOnADockerSockIsFoundAsPodman) {
    lab::PodmanService podman(*lab_, lab_->path("pd/docker.sock"));
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        finder.containers();
        std::vector<std::shared_ptr<const tf::Engine>> at_socket;
        for (auto &e : finder.engines())
            if (e->api.ends_with(podman.socket())) at_socket.push_back(e);
        ASSERT_EQ(at_socket.size(), 1u) << "one engine expected at " << podman.socket();
        EXPECT_EQ(at_socket[0]->type, "podman.io");
        EXPECT_EQ(at_socket[0]->plugin, "podman");
        EXPECT_EQ(at_socket[0]->pid, podman.pid());
    }
    leaks.check();
}

// A podman.sock that systemd holds but whose service never becomes podman:
// one bounded attempt, then left alone while systemd's sockets stay the same.
TEST_F(Activation, SocketWhoseServiceNeverComesIsGivenUpOnce) {
    auto &sd = start_systemd({.name = "tf-act-dead", .podman = false, .dead_sockets = {"/run/dead/podman.sock"}});
    const auto online_wait = 1500ms;
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options(online_wait));
        auto start = Clock::now();
        finder.containers();
        auto took = Clock::now() - start;
        EXPECT_LT(took, tftest::hang_guard) << "discovery is not bounded";
        for (auto &e : finder.engines()) EXPECT_FALSE(e->api.ends_with("/run/dead/podman.sock")) << e->api;
        EXPECT_TRUE(sd.podman_services().empty());
        auto reads = finder.stats().activator_socket_reads;
        auto probes = finder.stats().probes;
        EXPECT_GE(reads, 1u);

        finder.containers();
        // Counted, not timed: a second try would read the sockets or probe again.
        EXPECT_EQ(finder.stats().activator_socket_reads, reads);
        EXPECT_EQ(finder.stats().probes, probes);
        EXPECT_TRUE(sd.listening("/run/dead/podman.sock"));
    }
    leaks.check();
}

TEST_F(Activation, HostActivatorWhoseCommandDiesIsBounded) {
    lab::SocketActivate sa(*lab_, lab_->path("dead/dead-podman.sock"), {lab::find_program("false")});
    const auto online_wait = 1500ms;
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options(online_wait));
        auto start = Clock::now();
        finder.containers();
        EXPECT_LT(Clock::now() - start, tftest::hang_guard);
        for (auto &e : finder.engines()) EXPECT_FALSE(e->api.ends_with(sa.socket())) << e->api;
        auto reads = finder.stats().activator_socket_reads;
        EXPECT_GE(reads, 1u);
        finder.containers();
        EXPECT_EQ(finder.stats().activator_socket_reads, reads);
    }
    leaks.check();
}

} // namespace

// ---- the podman plugin alone, through the C ABI ------------------------------

namespace {

struct PluginLogs {
    static void log(void *, tf_log_level, const char *) {}
};

struct HeldEngines {
    std::vector<tf_engine *> engines;
    static int add(void *ctx, tf_engine *e) {
        static_cast<HeldEngines *>(ctx)->engines.push_back(e);
        return 0;
    }
    ~HeldEngines() {
        for (tf_engine *e : engines) {
            e->cancel(e);
            e->destroy(e);
        }
    }
};

// Records the watch's callbacks; the watch runs on its own thread.
struct WatchProbe {
    std::atomic<bool> subscribed{false};
    static int on_subscribed(void *ctx) {
        static_cast<WatchProbe *>(ctx)->subscribed = true;
        return 0;
    }
    static int on_event(void *, const tf_container_event *) { return 0; }
};

class PodmanPlugin : public ::testing::Test {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        if (!lab::which("podman") || !lab::which("dockerd")) TF_SKIP_OR_FAIL("needs podman and dockerd");
        const char *root = std::getenv("TF_BUILD_ROOT");
        std::string path = std::string(root != nullptr ? root : ".") + "/plugins/podman/podman.so";
        handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        ASSERT_NE(handle_, nullptr) << ::dlerror();
        entry_ = static_cast<const tf_plugin_descriptor *>(::dlsym(handle_, TF_PLUGIN_ENTRY_SYMBOL));
        ASSERT_NE(entry_, nullptr);
        host_ = {sizeof(tf_host),
                 {TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR, TF_ABI_VERSION_PATCH},
                 nullptr,
                 &PluginLogs::log,
                 nullptr};
        tf_error err{};
        ASSERT_EQ(entry_->init(&host_, &err), 0) << err.message;
        detector_ = static_cast<const tf_engine_detector *>(entry_->get_extension(TF_EXT_ENGINE_DETECTOR));
        activated_ = static_cast<const tf_activated_engine *>(entry_->get_extension(TF_EXT_ACTIVATED_ENGINE));
        ASSERT_NE(detector_, nullptr);
        ASSERT_NE(activated_, nullptr);
        lab_ = std::make_unique<lab::Lab>("pmplug");
    }
    void TearDown() override {
        lab_.reset();
        if (entry_ != nullptr) entry_->deinit();
        if (handle_ != nullptr) ::dlclose(handle_);
    }
    int probe(const std::vector<std::string> &paths, int timeout_ms, HeldEngines &out) {
        std::vector<const char *> p;
        for (auto &s : paths) p.push_back(s.c_str());
        tf_probe_request req{};
        req.struct_size = sizeof req;
        req.pid = 1;
        req.process_name = "podman";
        req.n_api_paths = static_cast<std::uint32_t>(p.size());
        req.api_paths = p.data();
        req.timeout_ms = timeout_ms;
        tf_engine_sink sink{sizeof(tf_engine_sink), &out, &HeldEngines::add};
        tf_error err{};
        return activated_->probe(&req, &sink, &err);
    }

    void *handle_ = nullptr;
    const tf_plugin_descriptor *entry_ = nullptr;
    tf_host host_{};
    const tf_engine_detector *detector_ = nullptr;
    const tf_activated_engine *activated_ = nullptr;
    std::unique_ptr<lab::Lab> lab_;
};

TEST_F(PodmanPlugin, ClaimsPodmanByNameAndBySocketSuffix) {
    ASSERT_EQ(detector_->n_process_names, 1u);
    EXPECT_STREQ(detector_->process_names[0], "podman");
    ASSERT_EQ(activated_->n_socket_suffixes, 1u);
    EXPECT_STREQ(activated_->socket_suffixes[0], "podman.sock");
    ASSERT_EQ(activated_->n_service_names, 1u);
    EXPECT_STREQ(activated_->service_names[0], "podman");
    EXPECT_EQ(detector_->probe, activated_->probe);
}

TEST_F(PodmanPlugin, RefusesDockerAndBrokenSocketsWithinTheTimeout) {
    lab::Dockerd dockerd(*lab_);
    lab::FakeEngine garbage(*lab_, "podman", lab::FakeEngine::Behaviour::garbage, "garbage-podman.sock");
    lab::FakeEngine hang(*lab_, "podman", lab::FakeEngine::Behaviour::hang, "hang-podman.sock");
    tftest::LeakGuard leaks;
    {
        HeldEngines engines;
        auto start = Clock::now();
        EXPECT_EQ(
            probe({dockerd.socket(), garbage.socket(), hang.socket(), lab_->path("none/podman.sock")}, 500, engines),
            0);
        EXPECT_TRUE(engines.engines.empty()) << "Docker's API (no Libpod-Api-Version) is not podman";
        EXPECT_LT(Clock::now() - start, tftest::hang_guard) << "each candidate is bounded by the probe timeout";
    }
    leaks.check();
}

// Podman holds back the /events headers until its first event: the watch
// must still report the subscription, and cancel must end it promptly.
TEST_F(PodmanPlugin, WatchStandsWithoutEventsAndCancelsPromptly) {
    lab::PodmanService podman(*lab_, lab_->path("pw/podman.sock"), "pmw");
    tftest::LeakGuard leaks;
    {
        HeldEngines engines;
        ASSERT_EQ(probe({podman.socket()}, 1000, engines), 1);
        tf_engine *e = engines.engines.at(0);
        const tf_engine_info *info = e->info(e);
        EXPECT_STREQ(info->type, "podman.io");
        EXPECT_STREQ(info->flavor, "podman.io");
        EXPECT_STRNE(info->version, "");
        EXPECT_EQ(info->api, podman.socket());

        WatchProbe wp;
        tf_event_sink sink{sizeof(tf_event_sink), &wp, &WatchProbe::on_subscribed, &WatchProbe::on_event};
        std::atomic<int> rc{1};
        std::thread watcher([&] {
            tf_error err{};
            rc = e->watch(e, &sink, &err);
        });
        EXPECT_TRUE(tftest::eventually([&] { return wp.subscribed.load(); }, 5s))
            << "subscribed() never came although podman accepted the event request";
        EXPECT_EQ(rc.load(), 1) << "the watch ended on its own";
        auto cancelled_at = Clock::now();
        e->cancel(e);
        watcher.join();
        EXPECT_EQ(rc.load(), -ECANCELED);
        EXPECT_LT(Clock::now() - cancelled_at, tftest::hang_guard);
    }
    leaks.check();
}

} // namespace
