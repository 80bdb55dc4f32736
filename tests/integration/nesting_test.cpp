// SPDX-License-Identifier: Apache-2.0
// Engines inside containers, end to end: KinD-like containerd (native + CRI)
// in a Docker container, docker-in-docker (dockerd plus the containerd it
// starts), two levels of docker-in-docker, and sibling engines on the host.
// Every engine is real and started by the lab; each check of a container PID
// is made against the host's process table (ancestry, comm, NSpid chain).
#include <gtest/gtest.h>

#include <turtlefinder/finder.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "containerd.hpp"
#include "cri_admin.hpp"
#include "lab.hpp"
#include "nested.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace lab = turtlefinder::lab;

using EnginePtr = std::shared_ptr<const tf::Engine>;

class Nesting : public ::testing::Test {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        for (const char *program :
             {"dockerd", "docker", "containerd", "containerd-shim-runc-v2", "ctr", "runc", "gcc", "busybox"})
            if (!lab::which(program)) TF_SKIP_OR_FAIL(std::string(program) + " is not installed");
        lab_ = std::make_unique<lab::Lab>("nest");
        dockerd_ = std::make_unique<lab::Dockerd>(*lab_);
        api_ = lab::docker_api(*lab_, *dockerd_);
    }
    void TearDown() override {
        // Innermost first; each removal takes what runs inside along.
        for (auto it = boxes_.rbegin(); it != boxes_.rend(); ++it) it->reset();
        host_containerd_.reset();
        dockerd_.reset();
        lab_.reset();
    }

    template <typename Box, typename... Args>
    Box &box(Args &&...args) {
        auto b = std::make_unique<Box>(*lab_, std::forward<Args>(args)...);
        Box &ref = *b;
        boxes_.push_back(std::move(b));
        return ref;
    }

    static tf::Options options() {
        tf::Options o;
        o.online_wait = 5s;
        o.probe_timeout = 1s;
        o.relist_interval = 300ms; // CRI on containerd 1.6 has no event stream
        return o;
    }

    // gRPC keeps process-wide threads from its first use on: one discovery
    // before the LeakGuard, so the guard sees only what a Finder owns.
    static void warm_up() {
        tf::Finder finder(options());
        finder.containers();
    }

    static EnginePtr engine(const std::vector<EnginePtr> &engines, int pid, const std::string &type) {
        for (const auto &e : engines)
            if (e->pid == pid && e->type == type) return e;
        return nullptr;
    }
    static std::vector<const tf::Container *> with_id(const std::vector<tf::Container> &all, const std::string &id) {
        std::vector<const tf::Container *> out;
        for (const auto &c : all)
            if (c.id == id) out.push_back(&c);
        return out;
    }
    // The one container `id` of the engine at `engine_pid`, polling until the
    // engine's watch has it (CRI relists); nullopt after `deadline`.
    static std::optional<tf::Container> wait_container(tf::Finder &finder, const std::string &id, int engine_pid,
                                                       std::chrono::milliseconds deadline = 10s) {
        std::optional<tf::Container> found;
        tftest::eventually(
            [&] {
                for (auto &c : finder.containers())
                    if (c.id == id && c.engine && c.engine->pid == engine_pid) found = c;
                return found.has_value();
            },
            deadline, 50ms);
        return found;
    }

    // A container PID checked against the host's process table: alive,
    // the right program, inside `box` (a descendant of its init), and the
    // same process the inner engine reported as `engine_side_pid` in its own
    // PID namespace.
    static void expect_host_pid(const tf::Container &c, const lab::EngineContainer &box, const std::string &comm,
                                pid_t engine_side_pid) {
        SCOPED_TRACE("container " + c.id + " in " + box.name());
        ASSERT_GT(c.pid, 0) << "no PID";
        EXPECT_EQ(lab::comm_of(c.pid), comm);
        EXPECT_TRUE(lab::descends_from(c.pid, box.pid())) << c.pid << " is not below " << box.pid();
        auto chain = lab::nspid(c.pid);
        auto engine_level = lab::nspid(box.pid()).size() - 1; // the inner engine's own namespace
        ASSERT_GT(chain.size(), engine_level);
        EXPECT_EQ(chain[0], c.pid);
        EXPECT_EQ(chain[engine_level], engine_side_pid) << "a different process than the engine reported";
        EXPECT_NE(c.pid, engine_side_pid) << "the PID was not translated";
    }

    std::unique_ptr<lab::Lab> lab_;
    std::unique_ptr<lab::Dockerd> dockerd_;
    std::unique_ptr<lab::Containerd> host_containerd_;
    lab::DockerApi api_;
    std::vector<std::unique_ptr<lab::EngineContainer>> boxes_;
};

TEST_F(Nesting, KindLikeContainerdNativeTaskAndCriPodCarryTheNodeAsPrefix) {
    auto &node = box<lab::NestedContainerd>(api_, "tf-kind");
    node.import_images("tfns");
    node.import_images("k8s.io");
    pid_t task_ns_pid = node.run_task("tfns", "web");
    std::string pod, app;
    {
        lab::CriAdmin admin(node.socket()); // from the host, through /proc/PID/root
        pod = admin.run_pod("shop-0", "shop", "uid-shop-0", {{"app", "shop"}});
        app = admin.create_container(pod, "app", lab::NestedContainerd::busybox_image, {"sleep", "infinity"});
        admin.start_container(app);
    }
    auto task_ns_pid_of = [&](const std::string &id) {
        // CRI workloads are containerd tasks in k8s.io: their PIDs in the node's namespace.
        std::string out = node.ctr_ok("k8s.io", {"task", "ls"});
        std::istringstream rows(out);
        for (std::string line; std::getline(rows, line);) {
            std::istringstream f(line);
            std::string task;
            pid_t pid = 0;
            if (f >> task >> pid && task == id) return pid;
        }
        return pid_t{0};
    };
    pid_t app_ns_pid = task_ns_pid_of(app), pod_ns_pid = task_ns_pid_of(pod);
    ASSERT_GT(app_ns_pid, 0);
    ASSERT_GT(pod_ns_pid, 0);

    warm_up();
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        auto task = wait_container(finder, "tfns/web", node.pid());
        auto cri_app = wait_container(finder, app, node.pid());
        auto cri_pod = wait_container(finder, pod, node.pid());
        auto all = finder.containers();
        auto engines = finder.engines();

        auto outer = engine(engines, dockerd_->pid(), "docker.com");
        auto native = engine(engines, node.pid(), "containerd.io");
        auto cri = engine(engines, node.pid(), "k8s.io/cri-api");
        ASSERT_TRUE(outer) << "the host dockerd was not found";
        ASSERT_TRUE(native) << "containerd in the node was not found";
        ASSERT_TRUE(cri) << "CRI of containerd in the node was not found";
        EXPECT_EQ(outer->prefix, "");
        EXPECT_EQ(outer->parent, nullptr);
        for (const auto &e : {native, cri}) {
            SCOPED_TRACE(e->type);
            EXPECT_EQ(e->prefix, "tf-kind");
            ASSERT_TRUE(e->parent);
            EXPECT_EQ(e->parent->pid, dockerd_->pid());
            EXPECT_EQ(e->api, node.socket()) << "the socket as reachable from the host";
        }

        // The node itself is a host container.
        auto nodes = with_id(all, node.id());
        ASSERT_EQ(nodes.size(), 1u);
        EXPECT_EQ(nodes[0]->name, "tf-kind");
        EXPECT_EQ(nodes[0]->pid, node.pid());
        EXPECT_EQ(nodes[0]->labels.at(tf::prefix_label), "");

        ASSERT_TRUE(task) << "the ctr task in namespace tfns was not reported";
        EXPECT_EQ(task->engine->type, "containerd.io");
        EXPECT_EQ(task->labels.at(tf::prefix_label), "tf-kind");
        expect_host_pid(*task, node, "sleep", task_ns_pid);

        ASSERT_TRUE(cri_app) << "the CRI container was not reported";
        EXPECT_EQ(cri_app->engine->type, "k8s.io/cri-api");
        EXPECT_EQ(cri_app->name, "app");
        EXPECT_EQ(cri_app->labels.at("io.kubernetes.pod.name"), "shop-0");
        EXPECT_EQ(cri_app->labels.at(tf::prefix_label), "tf-kind");
        expect_host_pid(*cri_app, node, "sleep", app_ns_pid);
        ASSERT_TRUE(cri_pod) << "the CRI pod sandbox was not reported";
        EXPECT_EQ(cri_pod->labels.at(tf::prefix_label), "tf-kind");
        expect_host_pid(*cri_pod, node, "pause", pod_ns_pid);

        // k8s.io belongs to the CRI watcher: the native one must not repeat it.
        EXPECT_EQ(with_id(all, app).size(), 1u);
        EXPECT_EQ(with_id(all, pod).size(), 1u);
        EXPECT_EQ(with_id(all, "k8s.io/" + app).size(), 0u);
        EXPECT_EQ(with_id(all, "tfns/web").size(), 1u);

        // Pods group by their labels wherever they run.
        bool grouped = false;
        for (const auto &g : tf::group(all)) grouped |= g.kind == "io.kubernetes.pod" && g.name == "shop/shop-0";
        EXPECT_TRUE(grouped);

        // Deleting the node (a KinD cluster going away) takes its engines
        // and workloads with it.
        node.remove();
        EXPECT_TRUE(tftest::eventually(
            [&] {
                for (const auto &c : finder.containers())
                    if (c.labels.at(tf::prefix_label) == "tf-kind" || c.id == node.id()) return false;
                for (const auto &e : finder.engines())
                    if (e->pid == node.pid()) return false;
                return true;
            },
            10s))
            << "the deleted node's engines or containers are still reported";
    }
    leaks.check();
}

TEST_F(Nesting, DockerInDockerTwoEnginesInOneContainerWithTranslatedPids) {
    auto &dind = box<lab::NestedDockerd>(api_, "tf-dind");
    std::string inner = dind.run_busybox("inner");
    pid_t inner_ns_pid = std::stoi(dind.docker_ok({"inspect", "-f", "{{.State.Pid}}", inner}));
    pid_t managed = 0;
    ASSERT_TRUE(tftest::eventually([&] { return (managed = dind.containerd_pid()) > 0; }, 5s))
        << "the inner dockerd started no containerd";

    warm_up();
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        auto found = wait_container(finder, inner, dind.pid());
        auto all = finder.containers();
        auto engines = finder.engines();

        auto outer = engine(engines, dockerd_->pid(), "docker.com");
        auto docker = engine(engines, dind.pid(), "docker.com");
        auto containerd = engine(engines, managed, "containerd.io");
        ASSERT_TRUE(outer);
        ASSERT_TRUE(docker) << "the inner dockerd was not found";
        ASSERT_TRUE(containerd) << "the inner dockerd's containerd was not found";
        EXPECT_EQ(docker->prefix, "tf-dind");
        EXPECT_EQ(containerd->prefix, "tf-dind") << "two engines in one container, same prefix";
        ASSERT_TRUE(docker->parent);
        ASSERT_TRUE(containerd->parent);
        EXPECT_EQ(docker->parent->pid, dockerd_->pid());
        EXPECT_EQ(containerd->parent->pid, dockerd_->pid()) << "placed by the container, not by its parent dockerd";
        EXPECT_EQ(docker->api, dind.host_path("/run/docker.sock")) << "bound as /var/run/docker.sock, resolved inside";

        auto boxes = with_id(all, dind.id());
        ASSERT_EQ(boxes.size(), 1u);
        EXPECT_EQ(boxes[0]->labels.at(tf::prefix_label), "");
        EXPECT_EQ(boxes[0]->pid, dind.pid());

        ASSERT_TRUE(found) << "the inner container was not reported";
        EXPECT_EQ(with_id(all, inner).size(), 1u) << "reported once: containerd's moby namespace is Docker's";
        EXPECT_EQ(with_id(all, "moby/" + inner).size(), 0u);
        EXPECT_EQ(found->name, "inner");
        EXPECT_EQ(found->engine, docker);
        EXPECT_EQ(found->labels.at(tf::prefix_label), "tf-dind");
        expect_host_pid(*found, dind, "sleep", inner_ns_pid);
        EXPECT_EQ(lab::host_pid_of(dind.pid(), inner_ns_pid).value_or(0), found->pid);

        // A container started while watched arrives translated as well.
        std::mutex mu;
        std::vector<tf::Container> started;
        int handle = finder.subscribe([&](const tf::Event &e) {
            if (e.kind != tf::EventKind::started) return;
            std::lock_guard lock(mu);
            started.push_back(e.container);
        });
        std::string late = dind.run_busybox("late");
        pid_t late_ns_pid = std::stoi(dind.docker_ok({"inspect", "-f", "{{.State.Pid}}", late}));
        auto late_event = [&]() -> std::optional<tf::Container> {
            std::lock_guard lock(mu);
            for (const auto &c : started)
                if (c.id == late) return c;
            return std::nullopt;
        };
        EXPECT_TRUE(tftest::eventually([&] { return late_event().has_value(); }, 3s)) << "no started event";
        finder.unsubscribe(handle);
        if (auto e = late_event()) {
            EXPECT_EQ(e->labels.at(tf::prefix_label), "tf-dind");
            expect_host_pid(*e, dind, "sleep", late_ns_pid);
        }
        auto listed = wait_container(finder, late, dind.pid());
        ASSERT_TRUE(listed);
        expect_host_pid(*listed, dind, "sleep", late_ns_pid);
    }
    leaks.check();

    // The harness's own promise: removing the engine container ends both
    // inner engines and their containers, and leaves no state behind.
    std::vector<pid_t> inside{dind.pid(), managed, lab::host_pid_of(dind.pid(), inner_ns_pid).value_or(0)};
    ASSERT_GT(inside.back(), 0);
    std::string state = dind.state_dir();
    dind.remove();
    auto alive = [](pid_t pid) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
        std::string stat;
        std::getline(in, stat);
        auto close = stat.rfind(')');
        return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
    };
    for (pid_t pid : inside) EXPECT_FALSE(alive(pid)) << "PID " << pid << " survived";
    EXPECT_FALSE(std::filesystem::exists(state));
}

TEST_F(Nesting, TwoLevelsOfDockerInDockerGiveOuterSlashInner) {
    auto &outer_box = box<lab::NestedDockerd>(api_, "tf-outer");
    auto &inner_box = box<lab::NestedDockerd>(outer_box.api(), "tf-inner");
    std::string deep = inner_box.run_busybox("deep");
    pid_t deep_ns_pid = std::stoi(inner_box.docker_ok({"inspect", "-f", "{{.State.Pid}}", deep}));
    ASSERT_EQ(lab::nspid(inner_box.pid()).size(), 3u) << "the inner engine is two PID namespaces down";

    warm_up();
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        auto found = wait_container(finder, deep, inner_box.pid());
        auto all = finder.containers();
        auto engines = finder.engines();
        auto top = engine(engines, dockerd_->pid(), "docker.com");
        auto middle = engine(engines, outer_box.pid(), "docker.com");
        auto bottom = engine(engines, inner_box.pid(), "docker.com");
        ASSERT_TRUE(top);
        ASSERT_TRUE(middle) << "dockerd in tf-outer was not found";
        ASSERT_TRUE(bottom) << "dockerd in tf-inner was not found";
        EXPECT_EQ(middle->prefix, "tf-outer");
        EXPECT_EQ(bottom->prefix, "tf-outer/tf-inner");
        ASSERT_TRUE(bottom->parent);
        EXPECT_EQ(bottom->parent->pid, outer_box.pid());
        ASSERT_TRUE(bottom->parent->parent);
        EXPECT_EQ(bottom->parent->parent->pid, dockerd_->pid());
        EXPECT_EQ(bottom->parent->parent->parent, nullptr);

        // tf-inner as the middle engine lists it: its PID translated one level.
        auto inner_listed = with_id(all, inner_box.id());
        ASSERT_EQ(inner_listed.size(), 1u);
        EXPECT_EQ(inner_listed[0]->labels.at(tf::prefix_label), "tf-outer");
        EXPECT_EQ(inner_listed[0]->pid, inner_box.pid());
        EXPECT_EQ(lab::nspid(inner_box.pid()).at(1), inner_box.engine_side_pid());

        ASSERT_TRUE(found) << "the container two levels down was not reported";
        EXPECT_EQ(with_id(all, deep).size(), 1u);
        EXPECT_EQ(found->labels.at(tf::prefix_label), "tf-outer/tf-inner");
        expect_host_pid(*found, inner_box, "sleep", deep_ns_pid);
        EXPECT_TRUE(lab::descends_from(found->pid, outer_box.pid()));
    }
    leaks.check();
}

TEST_F(Nesting, SiblingEnginesOnTheHostStayAtTheTop) {
    lab::ContainerdConfig config;
    config.dir_name = "hc";
    config.cri = false;
    host_containerd_ = std::make_unique<lab::Containerd>(*lab_, config);
    pid_t task_pid = host_containerd_->run_task("tfns", "host-task");
    dockerd_->import_busybox();
    std::string plain = dockerd_->run_container({"--name", "plain"});
    // An engine container next to them, so that the host has nested and
    // non-nested engines at once.
    auto &node = box<lab::NestedContainerd>(api_, "tf-node");

    warm_up();
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options());
        auto task = wait_container(finder, "tfns/host-task", host_containerd_->pid());
        auto docker_plain = wait_container(finder, plain, dockerd_->pid());
        auto engines = finder.engines();
        auto docker = engine(engines, dockerd_->pid(), "docker.com");
        auto containerd = engine(engines, host_containerd_->pid(), "containerd.io");
        auto nested = engine(engines, node.pid(), "containerd.io");
        ASSERT_TRUE(docker);
        ASSERT_TRUE(containerd);
        ASSERT_TRUE(nested);
        for (const auto &e : {docker, containerd}) {
            SCOPED_TRACE(e->type);
            EXPECT_EQ(e->prefix, "");
            EXPECT_EQ(e->parent, nullptr);
        }
        EXPECT_EQ(nested->prefix, "tf-node");
        ASSERT_TRUE(task);
        EXPECT_EQ(task->labels.at(tf::prefix_label), "");
        EXPECT_EQ(task->pid, task_pid) << "host engines' PIDs are host PIDs already";
        EXPECT_EQ(lab::comm_of(task->pid), "sleep");
        ASSERT_TRUE(docker_plain);
        EXPECT_EQ(docker_plain->labels.at(tf::prefix_label), "");
        EXPECT_EQ(lab::comm_of(docker_plain->pid), "sleep");
    }
    leaks.check();
}

TEST_F(Nesting, EngineContainerWhoseEngineDiesFailsFastAndLeavesNothing) {
    lab::EngineContainerConfig config;
    config.name = "tf-broken";
    config.command = {"/bin/sh", "-c", "echo inner engine failed; sleep 0.3; exit 3"};
    config.ready_socket = "/run/never.sock";
    auto start = std::chrono::steady_clock::now();
    try {
        lab::EngineContainer broken(*lab_, api_, config);
        ADD_FAILURE() << "an engine container without a listening engine was reported ready";
    } catch (const lab::Error &e) {
        std::string what = e.what();
        EXPECT_NE(what.find("tf-broken"), std::string::npos) << what;
        EXPECT_NE(what.find("inner engine failed"), std::string::npos) << "the log is part of the error: " << what;
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, tftest::hang_guard)
        << "waited out the ready timeout instead of failing";
    EXPECT_EQ(lab::docker_at_ok(api_, {"ps", "-aq", "--filter", "name=tf-broken"}), "");
    EXPECT_FALSE(std::filesystem::exists(lab_->path("n/tf-broken")));
}

} // namespace
