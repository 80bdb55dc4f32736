// SPDX-License-Identifier: Apache-2.0
// The /metrics renderer: the text exposition format (escaping, families with
// HELP and TYPE, cumulative histogram buckets) and the values it derives
// from a Finder's view. Prometheus itself reads it in the integration tests.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "metrics.hpp"

namespace {

namespace tf = turtlefinder;
namespace serve = turtlefinder::serve;

std::shared_ptr<tf::Engine> engine(std::string type, std::string api, tf::Engine::State state,
                                   std::string flavor = "") {
    auto e = std::make_shared<tf::Engine>();
    e->type = type;
    e->flavor = flavor.empty() ? type : flavor;
    e->api = std::move(api);
    e->state = state;
    return e;
}

tf::Container container(const std::shared_ptr<tf::Engine> &e, std::string name, bool paused = false) {
    tf::Container c;
    c.id = name;
    c.name = std::move(name);
    c.type = e->type;
    c.paused = paused;
    c.stale = e->state == tf::Engine::State::stale;
    c.engine = e;
    return c;
}

// The samples of a rendering: "name{labels}" → value; each family's HELP and
// TYPE come before its samples.
struct Parsed {
    std::map<std::string, std::string> samples;
    std::map<std::string, std::string> types;
    std::vector<std::string> order; // sample names in order
};

Parsed parse(const std::string &text) {
    Parsed p;
    std::istringstream lines(text);
    std::string current;
    bool helped = false;
    for (std::string line; std::getline(lines, line);) {
        EXPECT_FALSE(line.empty()) << "blank line in:\n" << text;
        if (line.rfind("# HELP ", 0) == 0) {
            current = line.substr(7, line.find(' ', 7) - 7);
            helped = true;
            continue;
        }
        if (line.rfind("# TYPE ", 0) == 0) {
            EXPECT_TRUE(helped) << "TYPE before HELP: " << line;
            auto name = line.substr(7, line.find(' ', 7) - 7);
            EXPECT_EQ(name, current) << line;
            EXPECT_FALSE(p.types.contains(name)) << "family twice: " << name;
            p.types[name] = line.substr(line.rfind(' ') + 1);
            helped = false;
            continue;
        }
        auto space = line.rfind(' ');
        EXPECT_NE(space, std::string::npos) << line;
        if (space == std::string::npos) continue;
        std::string series = line.substr(0, space);
        std::string name = series.substr(0, series.find('{'));
        EXPECT_TRUE(name == current || name == current + "_bucket" || name == current + "_sum" ||
                    name == current + "_count")
            << name << " outside its family " << current;
        EXPECT_FALSE(p.samples.contains(series)) << "series twice: " << series;
        p.samples[series] = line.substr(space + 1);
        p.order.push_back(series);
    }
    return p;
}

TEST(Metrics, LabelValuesEscapeBackslashQuoteAndNewlineAndAreValidUtf8) {
    EXPECT_EQ(serve::escape_label_value(R"(a"b\c)"), R"(a\"b\\c)");
    EXPECT_EQ(serve::escape_label_value("two\nlines"), "two\\nlines");
    EXPECT_EQ(serve::escape_label_value("bad\xff"), "bad\xEF\xBF\xBD");
    EXPECT_EQ(serve::escape_label_value("/run/containerd/containerd.sock"), "/run/containerd/containerd.sock");

    serve::MetricsInput in;
    auto odd = engine("docker.com", "/tmp/we\"ird\\dir\n/docker.sock", tf::Engine::State::online);
    in.engines = {odd};
    in.containers = {container(odd, "web")};
    auto text = serve::render_metrics(in, nullptr);
    EXPECT_NE(text.find(R"(engine_api="/tmp/we\"ird\\dir\n/docker.sock",state="running")"), std::string::npos) << text;
    parse(text);
}

TEST(Metrics, DiscoveryHistogramIsCumulativeWithInfSumAndCount) {
    serve::MetricsInput in;
    auto &s = in.stats;
    s.discoveries = 5;
    s.discovery_buckets[0] = 1; // ≤ 5 ms
    s.discovery_buckets[4] = 2; // ≤ 100 ms
    s.discovery_buckets.back() = 2; // > 10 s
    s.discovery_seconds = 25.5;
    auto p = parse(serve::render_metrics(in, nullptr));
    EXPECT_EQ(p.types["turtlefinder_discovery_duration_seconds"], "histogram");
    const std::string h = "turtlefinder_discovery_duration_seconds";
    EXPECT_EQ(p.samples[h + "_bucket{le=\"0.005\"}"], "1");
    EXPECT_EQ(p.samples[h + "_bucket{le=\"0.05\"}"], "1");
    EXPECT_EQ(p.samples[h + "_bucket{le=\"0.1\"}"], "3");
    EXPECT_EQ(p.samples[h + "_bucket{le=\"10\"}"], "3");
    EXPECT_EQ(p.samples[h + "_bucket{le=\"+Inf\"}"], "5");
    EXPECT_EQ(p.samples[h + "_sum"], "25.5");
    EXPECT_EQ(p.samples[h + "_count"], "5");
    // Buckets in ascending order, +Inf last, then _sum and _count.
    std::vector<std::string> hist;
    for (auto &name : p.order)
        if (name.rfind(h, 0) == 0) hist.push_back(name);
    ASSERT_EQ(hist.size(), tf::Stats::discovery_bounds.size() + 3);
    EXPECT_EQ(hist[hist.size() - 3], h + "_bucket{le=\"+Inf\"}");
    EXPECT_EQ(hist[hist.size() - 2], h + "_sum");
    EXPECT_EQ(hist.back(), h + "_count");
    for (std::size_t i = 0; i + 3 < hist.size(); ++i) {
        std::regex le(R"(le="([^"]+)\")");
        std::smatch m;
        ASSERT_TRUE(std::regex_search(hist[i], m, le));
        EXPECT_DOUBLE_EQ(std::stod(m[1]), tf::Stats::discovery_bounds[i]);
    }
}

TEST(Metrics, EnginesAndContainersAreCountedByTheirLabels) {
    serve::MetricsInput in;
    auto docker = engine("docker.com", "/run/docker.sock", tf::Engine::State::online);
    auto cri = engine("k8s.io/cri-api", "/run/containerd/containerd.sock", tf::Engine::State::stale, "containerd");
    auto idle = engine("podman.io", "/run/podman/podman.sock", tf::Engine::State::syncing);
    in.engines = {docker, cri, idle};
    in.containers = {container(docker, "a"), container(docker, "b"), container(docker, "c", true),
                     container(cri, "pod")};
    tf::PluginStatus loaded, deferred, refused;
    loaded.loaded = true;
    deferred.deferred = true;
    in.plugins = {loaded, loaded, deferred, refused};
    tf::Candidate candidate;
    candidate.plugin = "moby";
    in.candidates = {candidate};
    in.stats.probes_by_plugin["moby"].probes = 4;
    in.stats.probes_by_plugin["moby"].failures["no_engine"] = 1;
    in.stats.watch_resyncs = 2;
    in.stats.process_scans = 3;
    serve::ServiceCounters service({"/metrics", "/v1/containers"});
    service.request("/v1/containers", 200);
    service.request("/v1/containers", 200);
    service.request("/no/such/path", 404);
    service.request("/../../etc/passwd", 404);
    service.subscriber_added();
    service.subscriber_added();
    service.subscriber_removed();

    auto p = parse(serve::render_metrics(in, &service));
    auto &s = p.samples;
    EXPECT_EQ(s[R"(turtlefinder_engines{type="docker.com",flavor="docker.com",state="online"})"], "1");
    EXPECT_EQ(s[R"(turtlefinder_engines{type="docker.com",flavor="docker.com",state="stale"})"], "0");
    EXPECT_EQ(s[R"(turtlefinder_engines{type="k8s.io/cri-api",flavor="containerd",state="stale"})"], "1");
    EXPECT_EQ(s[R"(turtlefinder_engines{type="podman.io",flavor="podman.io",state="syncing"})"], "1");
    const std::string d = R"(turtlefinder_containers{engine_type="docker.com",engine_api="/run/docker.sock",)";
    EXPECT_EQ(s[d + R"(state="running",stale="false"})"], "2");
    EXPECT_EQ(s[d + R"(state="paused",stale="false"})"], "1");
    const std::string k =
        R"(turtlefinder_containers{engine_type="k8s.io/cri-api",engine_api="/run/containerd/containerd.sock",)";
    EXPECT_EQ(s[k + R"(state="running",stale="true"})"], "1");
    EXPECT_EQ(
        s[R"(turtlefinder_containers{engine_type="podman.io",engine_api="/run/podman/podman.sock",state="running",stale="false"})"],
        "0")
        << "an engine without containers shows zeros";
    EXPECT_EQ(s[R"(turtlefinder_plugins{status="loaded"})"], "2");
    EXPECT_EQ(s[R"(turtlefinder_plugins{status="refused"})"], "1");
    EXPECT_EQ(s[R"(turtlefinder_plugins{status="deferred"})"], "1");
    EXPECT_EQ(s[R"(turtlefinder_candidates{plugin="moby"})"], "1");
    EXPECT_EQ(s[R"(turtlefinder_probes_total{plugin="moby"})"], "4");
    EXPECT_EQ(s[R"(turtlefinder_probe_failures_total{plugin="moby",reason="no_engine"})"], "1");
    EXPECT_EQ(s["turtlefinder_watch_resyncs_total"], "2");
    EXPECT_EQ(s["turtlefinder_process_scans_total"], "3");
    EXPECT_EQ(s[R"(turtlefinder_http_requests_total{path="/v1/containers",code="200"})"], "2");
    EXPECT_EQ(s[R"(turtlefinder_http_requests_total{path="other",code="404"})"], "2")
        << "paths outside the routes are one series";
    EXPECT_EQ(s["turtlefinder_sse_subscribers"], "1");
    EXPECT_EQ(s[std::string("turtlefinder_build_info{version=\"") + tf::version() + "\"}"], "1");
    for (auto &[name, type] : p.types) {
        bool total = name.ends_with("_total");
        EXPECT_EQ(total, type == "counter") << name << " is a " << type;
    }
}

TEST(Metrics, TheSameViewRendersTheSameText) {
    serve::MetricsInput a, b;
    auto x = engine("docker.com", "/run/a.sock", tf::Engine::State::online);
    auto y = engine("docker.com", "/run/b.sock", tf::Engine::State::online);
    a.engines = {x, y};
    b.engines = {y, x};
    a.containers = {container(x, "1"), container(y, "2")};
    b.containers = {container(y, "2"), container(x, "1")};
    EXPECT_EQ(serve::render_metrics(a, nullptr), serve::render_metrics(b, nullptr));
}

} // namespace
