// SPDX-License-Identifier: Apache-2.0
// The Docker API client against a real dockerd started by the lab, and
// against misbehaving sockets (lab FakeEngine test doubles).
#include <turtlefinder/clients/docker/client.hpp>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <thread>

#include "lab.hpp"
#include "testing.hpp"

namespace docker = turtlefinder::clients::docker;
namespace lab = turtlefinder::lab;
using namespace std::chrono_literals;

namespace {

template <typename F>
int error_code_of(F &&f) {
    try {
        f();
    } catch (const docker::Error &e) {
        return e.code();
    }
    return 0;
}

class DockerClientTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0 || !lab::which("dockerd") || !lab::which("docker") || !lab::which("busybox")) return;
        lab_ = new lab::Lab("dcli");
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
    }
    void SetUp() override {
        TF_REQUIRE_ROOT();
        if (lab_ == nullptr) TF_SKIP_OR_FAIL("needs dockerd, docker and busybox");
        ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    }
    docker::Client client(std::chrono::milliseconds timeout = 5s) {
        docker::Options o;
        o.socket_path = dockerd_->socket();
        o.timeout = timeout;
        return docker::Client(o);
    }

    static inline lab::Lab *lab_ = nullptr;
    static inline lab::Dockerd *dockerd_ = nullptr;
    static inline std::string setup_error_;
};

TEST_F(DockerClientTest, NegotiatesTheEnginesVersion) {
    tftest::LeakGuard guard;
    {
        docker::Options o;
        o.socket_path = dockerd_->socket();
        docker::Client c(o);
        auto ping = c.ping();
        EXPECT_FALSE(ping.is_podman());
        ASSERT_TRUE(ping.api_version);
        auto v = c.negotiate();
        EXPECT_FALSE(v.version.empty());
        ASSERT_TRUE(c.api_version());
        EXPECT_EQ(*c.api_version(), std::min(v.api_version, docker::max_api_version));
        // What the engine itself says, through the CLI.
        std::string server_api = dockerd_->docker_ok({"version", "-f", "{{.Server.APIVersion}}"});
        EXPECT_EQ(c.api_version()->str(), server_api);
        EXPECT_EQ(v.version, dockerd_->docker_ok({"version", "-f", "{{.Server.Version}}"}));
        EXPECT_EQ(c.info().id, dockerd_->docker_ok({"info", "-f", "{{.ID}}"}));
    }
    guard.check();
}

TEST_F(DockerClientTest, ListsAndInspectsAliveContainers) {
    std::string running = dockerd_->run_container({"--label", "a=b", "--label", "tf.test=list"});
    std::string paused = dockerd_->run_container({"--label", "tf.test=paused"});
    dockerd_->docker_ok({"pause", paused});
    std::string exited = dockerd_->run_container({}, "busybox-img", {"true"});
    ASSERT_TRUE(tftest::eventually(
        [&] {
            return dockerd_->docker_ok({"inspect", "-f", "{{.State.Status}}", exited}) == "exited";
        },
        10s));
    tftest::LeakGuard guard;
    {
        docker::Client c = client();
        auto list = c.containers(R"({"status":["running","paused"]})");
        auto find = [&](const std::string &id) -> const docker::ContainerSummary * {
            for (const auto &s : list)
                if (s.id == id) return &s;
            return nullptr;
        };
        ASSERT_NE(find(running), nullptr);
        EXPECT_EQ(find(running)->labels.at("a"), "b");
        EXPECT_EQ(find(running)->state, "running");
        ASSERT_NE(find(paused), nullptr);
        EXPECT_EQ(find(paused)->state, "paused");
        EXPECT_EQ(find(exited), nullptr);

        auto details = c.inspect(running);
        ASSERT_TRUE(details);
        EXPECT_TRUE(details->running);
        EXPECT_FALSE(details->paused);
        EXPECT_EQ(details->labels.at("a"), "b");
        EXPECT_EQ(details->name, dockerd_->docker_ok({"inspect", "-f", "{{.Name}}", running}).substr(1));
        // The PID is the container's init on this host: busybox's `sleep`.
        ASSERT_GT(details->pid, 0);
        EXPECT_EQ(lab::comm_of(details->pid), "sleep");
        EXPECT_EQ(std::to_string(details->pid), dockerd_->docker_ok({"inspect", "-f", "{{.State.Pid}}", running}));

        auto p = c.inspect(paused);
        ASSERT_TRUE(p);
        EXPECT_TRUE(p->paused);
        auto e = c.inspect(exited);
        ASSERT_TRUE(e);
        EXPECT_FALSE(e->running);
        EXPECT_FALSE(c.inspect("0123456789abcdef-no-such-container"));
    }
    guard.check();
    dockerd_->docker_ok({"rm", "-f", running, paused, exited});
}

TEST_F(DockerClientTest, EventStreamSeesLifecycleAndCancelEndsIt) {
    tftest::LeakGuard guard;
    {
        docker::Client c = client();
        std::mutex mu;
        std::vector<std::pair<std::string, std::string>> events; // (action, id)
        std::atomic<bool> subscribed{false};
        std::atomic<int> code{1};
        std::thread watcher([&] {
            code = error_code_of([&] {
                c.events(R"({"type":["container"],"event":["start","die","pause","unpause"]})",
                         [&] { return subscribed = true; },
                         [&](const docker::Event &e) {
                             std::lock_guard l(mu);
                             events.emplace_back(e.action, e.id);
                             return true;
                         });
            });
        });
        ASSERT_TRUE(tftest::eventually([&] { return subscribed.load() || code.load() != 1; }, 10s));
        ASSERT_TRUE(subscribed.load()) << "events failed with " << code.load();

        std::string id = dockerd_->run_container();
        dockerd_->docker_ok({"pause", id});
        dockerd_->docker_ok({"unpause", id});
        dockerd_->docker_ok({"kill", id});
        auto seen = [&](const std::string &action) {
            std::lock_guard l(mu);
            for (const auto &[a, i] : events)
                if (a == action && i == id) return true;
            return false;
        };
        EXPECT_TRUE(tftest::eventually([&] { return seen("die"); }, 10s));
        EXPECT_TRUE(seen("start"));
        EXPECT_TRUE(seen("pause"));
        EXPECT_TRUE(seen("unpause"));
        {
            std::lock_guard l(mu);
            std::vector<std::string> order;
            for (const auto &[a, i] : events)
                if (i == id) order.push_back(a);
            EXPECT_EQ(order, (std::vector<std::string>{"start", "pause", "unpause", "die"}));
        }

        c.cancel();
        EXPECT_TRUE(tftest::eventually([&] { return code.load() != 1; }, tftest::hang_guard));
        watcher.join();
        EXPECT_EQ(code.load(), -ECANCELED);
        dockerd_->docker_ok({"rm", "-f", id});
    }
    guard.check();
}

// The lab's dockerd runs containers through the runtime wrapper, so a
// privileged container and an exec into it work even where the host lacks
// CAP_SYS_RESOURCE.
TEST_F(DockerClientTest, LabRuntimeWrapperAllowsPrivilegedExec) {
    EXPECT_EQ(dockerd_->docker_ok({"info", "-f", "{{.DefaultRuntime}}"}), "tf-runc");
    std::string id = dockerd_->run_container({"--privileged"});
    auto r = dockerd_->docker({"exec", id, "cat", "/proc/self/status"});
    EXPECT_TRUE(r.ok()) << r.err;
    EXPECT_NE(r.out.find("CapBnd"), std::string::npos);
    dockerd_->docker_ok({"rm", "-f", id});
}

// Every kind of broken socket gives an error within the timeout, never a hang.
TEST_F(DockerClientTest, MisbehavingSocketsFailWithinTheTimeout) {
    using B = lab::FakeEngine::Behaviour;
    struct Case {
        B behaviour;
        std::vector<int> codes;
    };
    const std::vector<Case> cases = {
        {B::garbage, {-EPROTO}},
        {B::hang, {-ETIMEDOUT}},
        {B::slow, {-ETIMEDOUT}},
        {B::close, {-EPROTO, -ECONNRESET, -EPIPE}},
        {B::endless, {-EPROTO, -ETIMEDOUT}},
    };
    for (const auto &tc : cases) {
        lab::FakeEngine fake(*lab_, "dockerd", tc.behaviour,
                             std::string("f-") + lab::to_string(tc.behaviour) + ".sock");
        EXPECT_EQ(lab::comm_of(fake.pid()), "dockerd");
        tftest::LeakGuard guard;
        {
            docker::Options o;
            o.socket_path = fake.socket();
            o.timeout = 500ms;
            o.max_body = 1u << 20;
            docker::Client c(o);
            auto t0 = std::chrono::steady_clock::now();
            int code = error_code_of([&] { c.negotiate(); });
            auto took = std::chrono::steady_clock::now() - t0;
            EXPECT_NE(std::find(tc.codes.begin(), tc.codes.end(), code), tc.codes.end())
                << lab::to_string(tc.behaviour) << " gave " << code;
            EXPECT_LT(took, tftest::hang_guard) << lab::to_string(tc.behaviour);
            // the event stream too
            t0 = std::chrono::steady_clock::now();
            code = error_code_of([&] {
                c.events(
                    {}, [] { return true; }, [](const docker::Event &) { return true; });
            });
            EXPECT_LT(code, 0) << lab::to_string(tc.behaviour);
            EXPECT_LT(std::chrono::steady_clock::now() - t0, tftest::hang_guard) << lab::to_string(tc.behaviour);
        }
        guard.check();
    }
}

} // namespace
