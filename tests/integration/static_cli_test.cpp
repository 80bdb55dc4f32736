// SPDX-License-Identifier: Apache-2.0
// The CLI with the in-tree plugins built in finds a lab dockerd and its
// container with no plugin file anywhere it looks: no plugin path, and every
// plugin it lists is built in.
#include <gtest/gtest.h>

#include <unistd.h>

#include <boost/json.hpp>

#include "lab.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace lab = turtlefinder::lab;
namespace json = boost::json;

TEST(StaticCli, FindsTheLabsEngineWithNoPluginFiles) {
    TF_REQUIRE_ROOT();
    if (!lab::which("dockerd")) TF_SKIP_OR_FAIL("dockerd is not installed");
    lab::Lab l("scli");
    lab::Dockerd dockerd(l);
    dockerd.import_busybox();
    std::string id = lab::trim(dockerd.docker_ok({"run", "-d", "--name", "static-box", "busybox-img", "sleep", "600"}));
    const std::map<std::string, std::string> no_plugin_path{{"TURTLEFINDER_PLUGIN_PATH", ""}};

    auto plugins = lab::run({TF_STATIC_CLI, "plugins"}, no_plugin_path);
    ASSERT_TRUE(plugins.ok()) << plugins.err;
    EXPECT_EQ(plugins.out.find("REFUSED"), std::string::npos) << plugins.out;
    EXPECT_NE(plugins.out.find("<builtin:moby>"), std::string::npos) << plugins.out;
    // A loaded plugin's last line is its file: here never a path.
    EXPECT_EQ(plugins.out.find("\n    /"), std::string::npos) << "a plugin file was loaded:\n" << plugins.out;

    auto listed = lab::run({TF_STATIC_CLI, "--json", "--no-service"}, no_plugin_path);
    ASSERT_TRUE(listed.ok()) << listed.err;
    auto doc = json::parse(listed.out).as_object();
    const auto &engines = doc.at("engines").as_array();
    bool found = false;
    for (const auto &c : doc.at("containers").as_array()) {
        const auto &o = c.as_object();
        if (o.at("id").as_string() != id) continue;
        found = true;
        EXPECT_EQ(o.at("name").as_string(), "static-box");
        const auto &e = engines.at(static_cast<std::size_t>(o.at("engine").as_int64())).as_object();
        EXPECT_EQ(e.at("plugin").as_string(), "moby");
        EXPECT_EQ(e.at("pid").as_int64(), dockerd.pid());
        EXPECT_GT(o.at("pid").as_int64(), 0);
    }
    EXPECT_TRUE(found) << "container " << id << " not listed:\n" << listed.out;
}

} // namespace
