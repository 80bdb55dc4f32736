// SPDX-License-Identifier: Apache-2.0
// Rootless engines, for real: a rootless dockerd (RootlessKit, with and
// without its own PID namespace) run by a test user that exists only in the
// lab's private mount namespaces, found by a Finder running as root, beside
// a rootful dockerd.
#include <gtest/gtest.h>

#include <turtlefinder/finder.hpp>

#include <unistd.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "lab.hpp"
#include "rootless.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace lab = turtlefinder::lab;

// The NSpid chain of a host PID: the PID in each namespace, outermost first.
std::vector<int> nspid_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    std::vector<int> chain;
    while (std::getline(in, line)) {
        if (line.rfind("NSpid:", 0) != 0) continue;
        std::istringstream s(line.substr(6));
        int p = 0;
        while (s >> p) chain.push_back(p);
    }
    return chain;
}

long long uid_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("Uid:", 0) == 0) return std::stoll(line.substr(4));
    return -1;
}

// What the rootless tests need of this machine; empty when all is there.
std::string missing_rootless_tools() {
    for (const char *p : {"dockerd", "rootlesskit", "newuidmap", "newgidmap", "setpriv", "unshare"})
        if (!lab::which(p))
            return std::string(p) + " is not installed (packages docker.io, rootlesskit, uidmap, util-linux)";
    return {};
}

tf::Options options() {
    tf::Options o;
    o.online_wait = 10s;
    o.probe_timeout = 2s;
    return o;
}

// gRPC (the containerd plugin) makes a process-wide poller, an epoll fd and
// an eventfd, on first use, which lives until exit. Plugins load only once a
// process of theirs runs, so a test warms up with its own engines running,
// before its leak baseline: what the test's first load makes for good is not
// the Finder's leak.
void warm_up() {
    tf::Finder finder(options());
    finder.containers();
}

std::shared_ptr<const tf::Engine> engine_of(const std::vector<std::shared_ptr<const tf::Engine>> &engines, pid_t pid,
                                            const std::string &type = "docker.com") {
    std::shared_ptr<const tf::Engine> found;
    for (const auto &e : engines)
        if (e->pid == pid && e->type == type) {
            EXPECT_FALSE(found) << "engine PID " << pid << " reported twice";
            found = e;
        }
    return found;
}

class RootlessDocker : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        if (auto why = missing_rootless_tools(); !why.empty()) TF_SKIP_OR_FAIL(why);
        lab_ = std::make_unique<lab::Lab>("rootless");
        user_ = std::make_unique<lab::TestUser>(*lab_);
        lab::RootlessDockerdConfig config;
        config.pid_namespace = GetParam();
        dockerd_ = std::make_unique<lab::RootlessDockerd>(*lab_, *user_, config);
        dockerd_->import_busybox();
    }
    void TearDown() override {
        dockerd_.reset();
        user_.reset();
        lab_.reset();
    }

    std::unique_ptr<lab::Lab> lab_;
    std::unique_ptr<lab::TestUser> user_;
    std::unique_ptr<lab::RootlessDockerd> dockerd_;
};

// Found through its own root (RootlessKit's copy-up of /run), owned by the
// test user, on the host, its container's PID the host PID of its init.
TEST_P(RootlessDocker, FoundWithItsOwnerAndTheContainersHostPid) {
    const bool own_pidns = GetParam();
    auto id = dockerd_->run_container({"--name", "rl-box"});
    const int engine_pid = std::stoi(dockerd_->docker_ok({"inspect", "-f", "{{.State.Pid}}", id}));
    // dockerd's view: its own PID namespace's number with --pidns.
    auto dockerd_chain = nspid_of(dockerd_->pid());
    ASSERT_EQ(dockerd_chain.size(), own_pidns ? 2u : 1u) << "dockerd's PID namespaces are not as configured";

    warm_up();
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        auto containers = finder.containers();
        auto e = engine_of(finder.engines(), dockerd_->pid());
        ASSERT_TRUE(e) << "the rootless dockerd (PID " << dockerd_->pid() << ") was not found";
        EXPECT_EQ(e->uid, static_cast<std::int64_t>(user_->uid()));
        EXPECT_EQ(e->prefix, "");
        EXPECT_EQ(e->parent, nullptr);
        EXPECT_EQ(e->state, tf::Engine::State::online) << e->error;
        // Reached through dockerd's root, where /run is RootlessKit's copy-up.
        EXPECT_TRUE(e->api.starts_with("/proc/" + std::to_string(dockerd_->pid()) + "/root/")) << e->api;
        EXPECT_TRUE(e->api.ends_with("/user/" + std::to_string(user_->uid()) + "/docker.sock")) << e->api;

        const tf::Container *c = nullptr;
        for (const auto &x : containers)
            if (x.id == id) c = &x;
        ASSERT_NE(c, nullptr) << "container " << id << " not reported";
        EXPECT_EQ(c->name, "rl-box");
        EXPECT_EQ(c->labels.at(tf::prefix_label), "");
        ASSERT_GT(c->pid, 0);
        // The host PID of the container's init: `sleep`, PID 1 of its own
        // namespace, run by the test user (the container's root), and the
        // very process dockerd names in its own PID namespace.
        EXPECT_EQ(lab::comm_of(c->pid), "sleep");
        auto chain = nspid_of(c->pid);
        ASSERT_FALSE(chain.empty());
        EXPECT_EQ(chain.front(), c->pid);
        EXPECT_EQ(chain.back(), 1);
        ASSERT_EQ(chain.size(), own_pidns ? 3u : 2u);
        EXPECT_EQ(chain[chain.size() - 2], engine_pid);
        if (!own_pidns) {
            EXPECT_EQ(c->pid, engine_pid);
        }
        EXPECT_EQ(uid_of(c->pid), static_cast<long long>(user_->uid()));
    }
    leaks.check();
}

INSTANTIATE_TEST_SUITE_P(PidNamespace, RootlessDocker, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool> &info) {
                             return info.param ? "OwnPidNamespace" : "HostPidNamespace";
                         });

// Rootless podman as a user runs it: podman.socket of the user's own
// `systemd --user` (a real user manager, see lab::UserManager), activated by
// the Finder, the podman service reported with its owner.
TEST(RootlessPodman, ActivatedByTheUsersSystemdAndReportedWithItsOwner) {
    TF_REQUIRE_ROOT();
    if (auto why = missing_rootless_tools(); !why.empty()) TF_SKIP_OR_FAIL(why);
    if (!lab::which("podman") || !lab::which("conmon")) TF_SKIP_OR_FAIL("podman or conmon is not installed");
    lab::Lab lab("rlpod");
    lab::TestUser user(lab);
    lab::UserManager manager(lab, user);
    manager.import_busybox();
    auto id = manager.podman_ok({"run", "-d", "--network", "none", "--name", "pod-box", "localhost/busybox-img"});
    // Rootless podman shares the host's PID namespace: this is the host PID.
    const int init_pid = std::stoi(manager.podman_ok({"inspect", "-f", "{{.State.Pid}}", id}));

    warm_up();
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        auto containers = finder.containers();
        const std::string suffix = manager.podman_socket();
        std::shared_ptr<const tf::Engine> podman;
        for (const auto &e : finder.engines())
            if (e->type == "podman.io" && e->api.ends_with(suffix)) {
                EXPECT_FALSE(podman) << "the user's podman reported twice";
                podman = e;
            }
        ASSERT_TRUE(podman) << "the user's podman behind " << suffix << " was not found";
        EXPECT_EQ(podman->uid, static_cast<std::int64_t>(user.uid()));
        EXPECT_EQ(lab::comm_of(podman->pid), "podman");
        EXPECT_EQ(podman->prefix, "");
        EXPECT_EQ(podman->parent, nullptr);
        EXPECT_TRUE(podman->api.starts_with("/proc/")) << podman->api;
        const tf::Container *c = nullptr;
        for (const auto &x : containers)
            if (x.id == id) c = &x;
        ASSERT_NE(c, nullptr) << "container " << id << " not reported";
        EXPECT_EQ(c->engine.get(), podman.get());
        EXPECT_EQ(c->pid, init_pid);
        EXPECT_EQ(lab::comm_of(c->pid), "sleep");
        EXPECT_EQ(uid_of(c->pid), static_cast<long long>(user.uid()));
    }
    leaks.check();
    // Cleaned up: the manager's delegated cgroup is gone with all below it.
    manager.stop();
    EXPECT_FALSE(std::filesystem::exists(manager.cgroup())) << manager.cgroup();
}

// The system's dockerd beside a user's rootless dockerd and rootless podman:
// each reported once, with its owner and its own containers, all on the host
// (siblings).
TEST(RootfulAndRootless, EachReportedOnceWithItsOwnerAndContainers) {
    TF_REQUIRE_ROOT();
    if (auto why = missing_rootless_tools(); !why.empty()) TF_SKIP_OR_FAIL(why);
    lab::Lab lab("rlmix");
    lab::Dockerd rootful(lab);
    lab::TestUser user(lab);
    lab::RootlessDockerd rootless(lab, user);
    lab::UserManager manager(lab, user);
    rootful.import_busybox();
    rootless.import_busybox();
    manager.import_busybox();
    auto rootful_id = rootful.run_container({"--name", "sys-box"});
    auto rootless_id = rootless.run_container({"--name", "user-box"});
    auto podman_id =
        manager.podman_ok({"run", "-d", "--network", "none", "--name", "pod-box", "localhost/busybox-img"});

    warm_up();
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        auto containers = finder.containers();
        auto engines = finder.engines();
        auto sys = engine_of(engines, rootful.pid());
        auto usr = engine_of(engines, rootless.pid());
        std::shared_ptr<const tf::Engine> pod;
        for (const auto &e : engines)
            if (e->type == "podman.io" && e->api.ends_with(manager.podman_socket())) {
                EXPECT_FALSE(pod) << "the user's podman reported twice";
                pod = e;
            }
        ASSERT_TRUE(sys) << "the rootful dockerd was not found";
        ASSERT_TRUE(usr) << "the rootless dockerd was not found";
        ASSERT_TRUE(pod) << "the rootless podman was not found";
        EXPECT_EQ(sys->uid, 0);
        EXPECT_EQ(usr->uid, static_cast<std::int64_t>(user.uid()));
        EXPECT_EQ(pod->uid, static_cast<std::int64_t>(user.uid()));
        for (const auto &e : {sys, usr, pod}) {
            EXPECT_EQ(e->prefix, "");
            EXPECT_EQ(e->parent, nullptr);
        }
        // Whatever serves under the user's runtime directory (its dockerd's
        // own containerd too) runs as the user.
        for (const auto &e : engines)
            if (e->api.find("/user/" + std::to_string(user.uid()) + "/") != std::string::npos) {
                EXPECT_EQ(e->uid, static_cast<std::int64_t>(user.uid())) << e->type << " " << e->api;
            }

        int seen_sys = 0, seen_usr = 0, seen_pod = 0;
        for (const auto &c : containers) {
            if (c.id == rootful_id) {
                ++seen_sys;
                EXPECT_EQ(c.engine.get(), sys.get());
                EXPECT_EQ(c.name, "sys-box");
            }
            if (c.id == rootless_id) {
                ++seen_usr;
                EXPECT_EQ(c.engine.get(), usr.get());
                EXPECT_EQ(c.name, "user-box");
                EXPECT_EQ(uid_of(c.pid), static_cast<long long>(user.uid()));
            }
            if (c.id == podman_id) {
                ++seen_pod;
                EXPECT_EQ(c.engine.get(), pod.get());
                EXPECT_EQ(c.name, "pod-box");
            }
        }
        EXPECT_EQ(seen_sys, 1);
        EXPECT_EQ(seen_usr, 1);
        EXPECT_EQ(seen_pod, 1);
    }
    leaks.check();
}

// turtlefinder run by the test user: its own rootless engine and container
// are found; root's dockerd, whose fds it may not read, is named once in one
// warning and never probed; nothing hangs.
TEST(RootlessCli, AsTheUserFindsItsEnginesAndWarnsOnceAboutOtherUsers) {
    TF_REQUIRE_ROOT();
    if (auto why = missing_rootless_tools(); !why.empty()) TF_SKIP_OR_FAIL(why);
    const std::string cli = std::string(std::getenv("TF_BUILD_ROOT")) + "/tools/turtlefinder";
    lab::Lab lab("rlcli");
    lab::Dockerd rootful(lab);
    lab::TestUser user(lab);
    lab::RootlessDockerd rootless(lab, user);
    rootless.import_busybox();
    auto id = rootless.run_container({"--name", "mine"});
    const int init_pid = std::stoi(rootless.docker_ok({"inspect", "-f", "{{.State.Pid}}", id}));

    const char *plugin_path = std::getenv("TURTLEFINDER_PLUGIN_PATH");
    auto r = user.run_as({cli, "--json", "--online-wait", "10000"},
                         {{"TURTLEFINDER_PLUGIN_PATH", plugin_path != nullptr ? plugin_path : ""}}, 120s);
    ASSERT_FALSE(r.timed_out) << "turtlefinder as UID " << user.uid() << " did not finish";
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto doc = boost::json::parse(r.out);
    const auto &engines = doc.at("engines").as_array();
    std::optional<std::size_t> mine;
    for (std::size_t i = 0; i < engines.size(); ++i) {
        const auto &e = engines[i].as_object();
        EXPECT_NE(e.at("pid").as_int64(), rootful.pid()) << "root's dockerd cannot be examined as a user";
        if (e.at("pid").as_int64() == rootless.pid() && e.at("type").as_string() == "docker.com") {
            EXPECT_FALSE(mine) << "the user's dockerd reported twice";
            mine = i;
            EXPECT_EQ(e.at("uid").as_int64(), static_cast<std::int64_t>(user.uid()));
            EXPECT_EQ(e.at("prefix").as_string(), "");
            EXPECT_EQ(e.at("state").as_string(), "online");
        }
    }
    ASSERT_TRUE(mine) << "the user's rootless dockerd was not found; stderr: " << r.err << "\n" << r.out;
    bool found_container = false;
    for (const auto &c : doc.at("containers").as_array()) {
        if (c.at("id").as_string() != id) continue;
        found_container = true;
        EXPECT_EQ(c.at("pid").as_int64(), init_pid);
        EXPECT_EQ(c.at("engine").as_int64(), static_cast<std::int64_t>(*mine));
    }
    EXPECT_TRUE(found_container) << "container " << id << " not reported";
    bool root_dockerd_named = false;
    for (const auto &c : doc.at("candidates").as_array())
        if (c.at("pid").as_int64() == rootful.pid()) {
            root_dockerd_named = true;
            EXPECT_NE(std::string(c.at("reason").as_string()).find("permission denied"), std::string::npos)
                << c.at("reason").as_string();
        }
    EXPECT_TRUE(root_dockerd_named) << "root's dockerd is not among the candidates";

    // One warning about other users, naming root's dockerd; no other
    // warning about it.
    std::size_t warnings = 0;
    for (std::size_t at = r.err.find("not running as root"); at != std::string::npos;
         at = r.err.find("not running as root", at + 1))
        ++warnings;
    EXPECT_EQ(warnings, 1u) << r.err;
    EXPECT_NE(r.err.find("dockerd (PID " + std::to_string(rootful.pid()) + ", UID 0)"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("gave no engine"), std::string::npos) << r.err;
}

} // namespace
