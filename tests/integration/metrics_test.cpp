// SPDX-License-Identifier: Apache-2.0
// /metrics as rendered for a real Finder over the lab's engines (Docker on a
// containerd with CRI): Prometheus's own checker (promtool) accepts it, and
// the values are the engines' truth.
#include <gtest/gtest.h>

#include <turtlefinder/finder.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "containerd.hpp"
#include "cri_admin.hpp"
#include "lab.hpp"
#include "metrics.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace lab = turtlefinder::lab;
namespace serve = turtlefinder::serve;

class Metrics : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0 || !lab::which("dockerd") || !lab::which("containerd") || !lab::which("promtool")) return;
        lab_ = new lab::Lab("metrics");
        containerd_ = new lab::Containerd(*lab_);
        lab::DockerdConfig dc;
        dc.containerd_socket = containerd_->socket();
        dockerd_ = new lab::Dockerd(*lab_, dc);
        dockerd_->import_busybox();
        dockerd_->run_container({"--name", "web"});
        auto paused = dockerd_->run_container({"--name", "napping"});
        dockerd_->docker_ok({"pause", paused});
        containerd_->import_busybox("tfns");
        containerd_->run_task("tfns", "t1");
        containerd_->import_pause();
        containerd_->import_busybox("k8s.io");
        cri_ = new lab::CriAdmin(containerd_->socket());
        auto pod = cri_->run_pod("metrics-pod", "testns", "uid-metrics-1");
        auto c = cri_->create_container(pod, "sleeper", lab::Containerd::busybox_image, {"sleep", "infinity"});
        cri_->start_container(c);
    }
    static void TearDownTestSuite() {
        delete cri_;
        delete dockerd_;
        delete containerd_;
        delete lab_;
    }
    void SetUp() override {
        TF_REQUIRE_ROOT();
        if (lab_ == nullptr) TF_SKIP_OR_FAIL("dockerd, containerd or promtool is not installed");
    }

    // "name{labels}" → value.
    static std::map<std::string, std::string> samples(const std::string &text) {
        std::map<std::string, std::string> out;
        std::istringstream lines(text);
        for (std::string line; std::getline(lines, line);) {
            if (line.empty() || line[0] == '#') continue;
            auto space = line.rfind(' ');
            out[line.substr(0, space)] = line.substr(space + 1);
        }
        return out;
    }

    static inline lab::Lab *lab_ = nullptr;
    static inline lab::Containerd *containerd_ = nullptr;
    static inline lab::Dockerd *dockerd_ = nullptr;
    static inline lab::CriAdmin *cri_ = nullptr;
};

TEST_F(Metrics, PromtoolAcceptsTheRenderingAndItCountsTheLabsContainers) {
    // gRPC's process-wide poller (the containerd plugin's) lives from its
    // first use until exit: made by a first discovery, before the baseline.
    {
        tf::Finder warm_up;
        warm_up.containers();
    }
    tftest::LeakGuard leaks;
    std::string text;
    std::map<std::string, std::string> apis; // engine type → api of ours
    {
        tf::Options options;
        options.online_wait = 5s;
        tf::Finder finder(options);
        finder.containers();
        auto containers = finder.containers(); // the second reads only what changed
        for (const auto &e : finder.engines())
            if (e->api.ends_with(dockerd_->socket()) || e->api.ends_with(containerd_->socket())) apis[e->type] = e->api;
        serve::ServiceCounters service({"/metrics", "/v1/containers"});
        service.request("/metrics", 200);
        text = serve::render_metrics(serve::metrics_input(finder, std::move(containers)), &service);
    }
    leaks.check();

    auto file = lab_->write_file("metrics.txt", text);
    auto r = lab::run({"sh", "-c", "promtool check metrics < " + file}, {}, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\n" << text;
    EXPECT_EQ(lab::trim(r.out + r.err), "") << "promtool has remarks:\n" << r.out << r.err;

    ASSERT_EQ(apis.size(), 3u) << text;
    auto s = samples(text);
    auto count = [&](const std::string &type, const char *state) {
        auto key = "turtlefinder_containers{engine_type=\"" + type + "\",engine_api=\"" +
                   serve::escape_label_value(apis[type]) + "\",state=\"" + state + "\",stale=\"false\"}";
        EXPECT_TRUE(s.contains(key)) << key << " missing in\n" << text;
        return s[key];
    };
    EXPECT_EQ(count("docker.com", "running"), "1");
    EXPECT_EQ(count("docker.com", "paused"), "1");
    EXPECT_EQ(count("containerd.io", "running"), "1") << "tfns/t1 (Docker's moby namespace is Docker's)";
    EXPECT_EQ(count("k8s.io/cri-api", "running"), "2") << "the pod sandbox and its container";
    EXPECT_NE(s["turtlefinder_engines{type=\"docker.com\",flavor=\"docker.com\",state=\"online\"}"], "0");
    EXPECT_EQ(s["turtlefinder_discoveries_total"], "2");
    EXPECT_EQ(s["turtlefinder_process_scans_total"], "1") << "as root on the host: one scan, then process events";
    EXPECT_EQ(s["turtlefinder_discovery_duration_seconds_count"], "2");
    EXPECT_NE(s["turtlefinder_probes_total{plugin=\"moby\"}"], "");
    EXPECT_NE(s["turtlefinder_probes_total{plugin=\"containerd\"}"], "");
    EXPECT_EQ(s["turtlefinder_plugins{status=\"refused\"}"], "0");
    EXPECT_EQ(s["turtlefinder_http_requests_total{path=\"/metrics\",code=\"200\"}"], "1");
}

} // namespace
