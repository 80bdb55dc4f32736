// SPDX-License-Identifier: Apache-2.0
// CLI rendering: JSON stays valid whatever bytes engines put in names and labels.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <sstream>

#include "output.hpp"
#include "testing.hpp"

namespace {

namespace tf = turtlefinder;
namespace json = boost::json;

std::shared_ptr<tf::Engine> engine(std::string api, std::shared_ptr<const tf::Engine> parent = nullptr,
                                   std::string prefix = "") {
    auto e = std::make_shared<tf::Engine>();
    e->id = "id-" + api;
    e->type = "docker.com";
    e->flavor = "docker.com";
    e->version = "20.10";
    e->api = api;
    e->pid = 42;
    e->prefix = std::move(prefix);
    e->parent = std::move(parent);
    return e;
}

tf::Container container(std::string name, std::shared_ptr<const tf::Engine> e, tf::Labels labels = {}) {
    tf::Container c;
    c.id = "0123456789abcdef0123";
    c.name = std::move(name);
    c.type = e->type;
    c.pid = 4711;
    c.labels = std::move(labels);
    c.engine = std::move(e);
    return c;
}

TEST(CliOutput, ValidUtf8RepairsOnlyWhatIsBroken) {
    EXPECT_EQ(tf::cli::valid_utf8("plain ümlaut €"), "plain ümlaut €");
    EXPECT_EQ(tf::cli::valid_utf8("a\xff"
                                  "b"),
              "a\xEF\xBF\xBD"
              "b");
    EXPECT_EQ(tf::cli::valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "overlong '/'";
    EXPECT_EQ(tf::cli::valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD") << "surrogate";
    EXPECT_EQ(tf::cli::valid_utf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD") << "truncated";
    EXPECT_EQ(tf::cli::printable("a\nb\x1b[31m"), "a?b?[31m");
}

TEST(CliOutput, JsonIsValidWithHostileNamesAndLabels) {
    auto e = engine("/run/\xff.sock");
    std::string huge(1 << 20, 'x');
    std::vector<tf::Container> cs{
        container(std::string("ctl\x01\x1f\x7f\"\\", 8), e,
                  {{"k\xc3", "v\xff\xfe"}, {"long", huge}, {"nul", std::string("a\0b", 3)}}),
    };
    std::ostringstream out;
    tf::cli::print_json(out, {e}, cs);
    boost::system::error_code ec;
    auto doc = json::parse(out.str(), ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(doc.at("schema").as_string(), "turtlefinder/v1");
    auto &c = doc.at("containers").as_array().at(0).as_object();
    EXPECT_EQ(c.at("name").as_string(), "ctl\x01\x1f\x7f\"\\");
    EXPECT_EQ(c.at("labels").at("long").as_string().size(), huge.size());
    EXPECT_EQ(c.at("labels").at("k\xEF\xBF\xBD").as_string(), "v\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(c.at("labels").at("nul").as_string(), std::string("a\0b", 3));
    EXPECT_EQ(c.at("engine").as_int64(), 0);
    EXPECT_EQ(doc.at("engines").as_array().at(0).at("api").as_string(), "/run/\xEF\xBF\xBD.sock");
    EXPECT_EQ(tftest::schema_errors(out.str()), "");
}

tf::Candidate candidate() {
    tf::Candidate c;
    c.pid = 4242;
    c.process = "dockerd";
    c.plugin = "moby";
    c.sockets = {{"/proc/4242/root/run/hang.sock", "timeout", "timeout: no answer within 1000 ms"},
                 {"/proc/4242/root/run/junk.sock", "not-this-protocol", "not-this-protocol: bad HTTP"}};
    c.reason = "no socket answered as this engine";
    return c;
}

// Each socket of a candidate is named on stderr with its process, PID and reason.
TEST(CliOutput, CandidatesAreWarnedPerSocketAndListedInJson) {
    std::ostringstream err;
    tf::cli::warn_candidates(err, {candidate()});
    EXPECT_EQ(err.str(), "turtlefinder: warning: dockerd (PID 4242, plugin \"moby\") gave no engine: socket "
                         "/proc/4242/root/run/hang.sock: timeout: no answer within 1000 ms\n"
                         "turtlefinder: warning: dockerd (PID 4242, plugin \"moby\") gave no engine: socket "
                         "/proc/4242/root/run/junk.sock: not-this-protocol: bad HTTP\n");
    // A plugin that tells nothing of its sockets (ABI 1.0): one line with the reason and the sockets.
    auto mute = candidate();
    for (auto &s : mute.sockets) s.error = "unknown", s.reason = "unknown: the plugin does not say";
    err.str("");
    tf::cli::warn_candidates(err, {mute});
    EXPECT_EQ(err.str(), "turtlefinder: warning: dockerd (PID 4242, plugin \"moby\") gave no engine: no socket "
                         "answered as this engine (sockets tried: /proc/4242/root/run/hang.sock, "
                         "/proc/4242/root/run/junk.sock)\n");

    std::ostringstream out;
    tf::cli::print_json(out, {}, {}, {candidate()});
    auto doc = json::parse(out.str());
    auto &s = doc.at("candidates").at(0).at("sockets").at(1);
    EXPECT_EQ(s.at("path").as_string(), "/proc/4242/root/run/junk.sock");
    EXPECT_EQ(s.at("error").as_string(), "not-this-protocol");
    EXPECT_EQ(s.at("reason").as_string(), "not-this-protocol: bad HTTP");
    EXPECT_EQ(tftest::schema_errors(out.str()), "");
    out.str("");
    tf::cli::print_engines(out, {}, true, {candidate()});
    EXPECT_EQ(tftest::schema_errors(out.str()), "");
    out.str("");
    tf::cli::print_engines(out, {}, false, {candidate()});
    EXPECT_NE(out.str().find("no engine\tdockerd\tPID 4242\tplugin moby\tno socket answered as this engine\n"
                             "\tsocket /proc/4242/root/run/hang.sock\ttimeout: no answer within 1000 ms\n"),
              std::string::npos)
        << out.str();
}

// Every event line is a turtlefinder/v1 document: engines placed (parent by key), containers with their engine's key.
TEST(CliOutput, EventLinesFollowTheSchema) {
    auto outer = engine("/run/outer.sock");
    auto inner = engine("/run/inner.sock", outer, "kind");
    std::ostringstream out;
    tf::Event found;
    found.kind = tf::EventKind::engine_found;
    found.initial = true;
    found.engine = inner;
    tf::cli::print_event(out, found, true);
    tf::Event started;
    started.kind = tf::EventKind::started;
    started.engine = inner;
    started.container = container("web", inner);
    tf::cli::print_event(out, started, true);
    EXPECT_EQ(tftest::schema_errors(out.str()), "");
    std::istringstream lines(out.str());
    std::string line;
    std::getline(lines, line);
    EXPECT_EQ(json::parse(line).at("engine").at("parent").as_string(), tf::cli::engine_key(*outer));
    std::getline(lines, line);
    EXPECT_EQ(json::parse(line).at("container").at("engine").as_string(), tf::cli::engine_key(*inner));
}

TEST(CliOutput, NestedEnginesAreDrawnUnderTheirContainer) {
    auto host = engine("/run/docker.sock");
    auto inner = engine("/proc/9/root/run/containerd/containerd.sock", host, "kind-control-plane");
    std::vector<tf::Container> cs{container("kind-control-plane", host), container("etcd", inner),
                                  container("web", host)};
    std::ostringstream out;
    tf::cli::print_tree(out, {host, inner}, cs, {});
    std::string text = out.str();
    auto kind = text.find("kind-control-plane");
    auto nested = text.find("/proc/9/root/run/containerd/containerd.sock");
    auto etcd = text.find("etcd");
    auto web = text.find("web");
    ASSERT_NE(kind, std::string::npos) << text;
    ASSERT_NE(nested, std::string::npos) << text;
    EXPECT_LT(kind, nested) << text;
    EXPECT_LT(nested, etcd) << text;
    EXPECT_LT(etcd, web) << "the nested engine belongs under kind-control-plane, before the next container\n" << text;
    // The nested engine is drawn once, not also at the top level.
    const std::string inner_api = "/proc/9/root/run/containerd/containerd.sock";
    EXPECT_EQ(text.find(inner_api, nested + inner_api.size()), std::string::npos) << text;
    std::ostringstream json_out;
    tf::cli::print_json(json_out, {host, inner}, cs);
    auto doc = json::parse(json_out.str());
    EXPECT_EQ(doc.at("engines").as_array().at(1).at("parent").as_int64(), 0);
    EXPECT_EQ(doc.at("engines").as_array().at(1).at("prefix").as_string(), "kind-control-plane");
}

TEST(CliOutput, WidthCutsLinesOnATerminal) {
    auto e = engine(std::string(200, 'p'));
    std::ostringstream out;
    tf::cli::Style style;
    style.width = 60;
    tf::cli::print_tree(out, {e}, {}, style);
    std::istringstream lines(out.str());
    for (std::string line; std::getline(lines, line);) {
        std::size_t cols = 0;
        for (unsigned char ch : line) cols += (ch & 0xC0) != 0x80;
        EXPECT_LE(cols, 60u) << line;
    }
}

// A rootless engine says whose it is; root's and an unknown owner say nothing.
TEST(CliOutput, OwnerOfRootlessEngines) {
    auto mine = engine("/proc/7/root/run/user/1000/docker.sock");
    mine->uid = 1000;
    auto roots = engine("/run/docker.sock");
    roots->uid = 0;
    auto unknown = engine("/run/other.sock");
    std::vector<std::shared_ptr<const tf::Engine>> engines{mine, roots, unknown};
    std::ostringstream text;
    tf::cli::print_engines(text, engines, false, {});
    EXPECT_NE(text.str().find("PID 42 user 1000\t/proc/7/root/run/user/1000/docker.sock"), std::string::npos)
        << text.str();
    EXPECT_EQ(text.str().find("user 0"), std::string::npos) << text.str();
    std::ostringstream js;
    tf::cli::print_engines(js, engines, true, {});
    auto doc = json::parse(js.str());
    EXPECT_EQ(doc.at("engines").at(0).at("uid").as_int64(), 1000);
    EXPECT_EQ(doc.at("engines").at(1).at("uid").as_int64(), 0);
    EXPECT_TRUE(doc.at("engines").at(2).at("uid").is_null());
}

// Other users' processes that could not be examined: one warning for all,
// and no per-candidate line for them.
TEST(CliOutput, DeniedCandidatesMakeOneWarning) {
    std::vector<tf::Candidate> candidates(3);
    candidates[0] = {812, "dockerd", "moby", {}, "permission denied", true, 0};
    candidates[1] = {1, "systemd", "systemd", {}, "permission denied", true, 0};
    candidates[2] = {
        99, "containerd", "containerd", {{"/run/x.sock", "refused", "refused: connection refused"}}, "refused", false,
        -1};
    std::ostringstream err;
    tf::cli::warn_candidates(err, candidates);
    const std::string out = err.str();
    std::size_t lines = 0;
    for (char c : out) lines += c == '\n';
    EXPECT_EQ(lines, 2u) << out;
    EXPECT_NE(out.find("not running as root"), std::string::npos) << out;
    EXPECT_NE(out.find("these 2 processes of other users were not examined for engines: dockerd (PID 812, UID 0), "
                       "systemd (PID 1, UID 0);"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("containerd (PID 99, plugin \"containerd\") gave no engine"), std::string::npos) << out;
    std::ostringstream none;
    tf::cli::warn_denied(none, {candidates[2]});
    EXPECT_EQ(none.str(), "");
}

} // namespace
