// SPDX-License-Identifier: Apache-2.0
// Plugins that send malformed data, end to end through a Finder (probe,
// EngineHandle, Watcher, query): NULL strings, a million labels, a label
// count without an array, invalid UTF-8, short structs with stray pointers,
// hostile events, engines missing v1 members, and a C++ plugin that throws
// from every call. Nothing may crash, hang or leak, and what is usable is
// reported. (Refusals of whole plugin files are in loader_test.cpp.)
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <map>
#include <mutex>
#include <set>

#include <turtlefinder/finder.hpp>

#include "abi_helpers.hpp"
#include "log.hpp"
#include "testing.hpp"

namespace {

using tftest::NamedProcess;

using namespace std::chrono_literals;
namespace tf = turtlefinder;
using abitest::TempDir;

class MalformedPlugin : public ::testing::Test {
protected:
    void SetUp() override {
        abitest::install(TF_FIXTURE_MALFORMED, dir_, "malformed.so");
        abitest::install(TF_FIXTURE_MALFORMED_CPP, dir_, "malformed-cpp.so");
    }
    tf::Options options(const std::string &plugin, const std::string &mode) const {
        tf::Options o;
        o.plugin_dirs = {dir_.path().string()};
        o.default_plugin_dirs = false;
        o.online_wait = 2s;
        o.relist_interval = 50ms;
        o.backoff_min = 10ms;
        o.backoff_max = 50ms;
        o.plugin_settings[plugin]["mode"] = mode;
        return o;
    }
    static std::map<std::string, tf::Container> by_id(const std::vector<tf::Container> &all,
                                                      const std::string &plugin) {
        std::map<std::string, tf::Container> out;
        for (const auto &c : all)
            if (c.engine && c.engine->plugin == plugin) out.emplace(c.id, c);
        return out;
    }
    static std::set<std::string> ids(const std::map<std::string, tf::Container> &m) {
        std::set<std::string> out;
        for (const auto &[id, c] : m) out.insert(id);
        return out;
    }
    static std::vector<std::shared_ptr<const tf::Engine>> engines_of(tf::Finder &f, const std::string &plugin) {
        std::vector<std::shared_ptr<const tf::Engine>> out;
        for (auto &e : f.engines())
            if (e->plugin == plugin) out.push_back(e);
        return out;
    }
    // The plugin .so are mapped (and their loggers made) once per process.
    void warm_up() {
        tf::Finder f(options("malformed", "none"));
        f.containers();
    }

    TempDir dir_;
};

TEST_F(MalformedPlugin, HostileContainersAreCopiedDefensively) {
    NamedProcess engine("tf-malformed");
    warm_up();
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options("malformed", "containers"));
        for (int round = 0; round < 3; ++round) { // first sync, then relists of the same data
            auto got = by_id(finder.containers(), "malformed");
            const std::set<std::string> want{"null-name", "huge",  "liar", "\xff\xfe-bad-utf8",
                                             "neg-pid",   "short", "fine"};
            ASSERT_EQ(ids(got), want) << "round " << round;
            const tf::Labels only_prefix{{tf::prefix_label, ""}};

            EXPECT_EQ(got["null-name"].name, "null-name"); // NULL name falls back to the id
            EXPECT_EQ(got["null-name"].labels, (tf::Labels{{"ok", "1"}, {tf::prefix_label, ""}}));
            // A million labels are capped; the first ones are kept.
            EXPECT_EQ(got["huge"].labels.size(), 4096u + 1u);
            EXPECT_EQ(got["huge"].labels.count("0000000"), 1u);
            EXPECT_EQ(got["huge"].labels.count("0004095"), 1u);
            EXPECT_EQ(got["huge"].labels.count("0004096"), 0u);
            EXPECT_EQ(got["liar"].labels, only_prefix); // a count without an array
            // Invalid UTF-8 is carried as bytes, not cut or replaced.
            const auto &bad = got["\xff\xfe-bad-utf8"];
            EXPECT_EQ(bad.name, "\xc3\x28");
            EXPECT_EQ(bad.labels.at("\xe2\x82"), "\xf0\x28\x8c\x28");
            EXPECT_EQ(got["neg-pid"].pid, 0);
            EXPECT_FALSE(got["neg-pid"].paused) << "undefined flag bits must not read as paused";
            // A struct ending after `id`: nothing behind it was read.
            EXPECT_EQ(got["short"].name, "short");
            EXPECT_EQ(got["short"].pid, 0);
            EXPECT_FALSE(got["short"].paused);
            EXPECT_EQ(got["short"].labels, only_prefix);
            EXPECT_TRUE(got["fine"].paused);
            EXPECT_EQ(got["fine"].name, "fine-name");
            EXPECT_EQ(got["fine"].type, "example.org/malformed");
            EXPECT_EQ(got["fine"].flavor, "malformed-flavor");
        }
        auto engines = engines_of(finder, "malformed");
        ASSERT_EQ(engines.size(), 1u);
        EXPECT_EQ(engines[0]->pid, engine.pid());
    }
    leaks.check();
}

TEST_F(MalformedPlugin, HostileEventsAreFilteredAndTheRestApplied) {
    NamedProcess engine("tf-malformed");
    warm_up();
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options("malformed", "events"));
        std::mutex mu;
        std::vector<std::pair<tf::EventKind, std::string>> events;
        finder.subscribe([&](const tf::Event &e) {
            if (e.kind == tf::EventKind::engine_found || e.kind == tf::EventKind::engine_lost) return;
            std::lock_guard lock(mu);
            events.emplace_back(e.kind, e.container.id);
        });
        const std::set<std::string> want{"from-details", "mismatch", "via-inspect"};
        std::map<std::string, tf::Container> got;
        EXPECT_TRUE(tftest::eventually([&] {
            got = by_id(finder.containers(), "malformed");
            return ids(got) == want && got["mismatch"].paused;
        })) << "view: "
            << ::testing::PrintToString(ids(got));
        ASSERT_EQ(ids(got), want);
        EXPECT_EQ(got["from-details"].name, "\xc3\x28");
        EXPECT_EQ(got["from-details"].labels.size(), 4096u + 1u);
        EXPECT_EQ(got["via-inspect"].labels.at("inspected"), "yes");
        EXPECT_EQ(got["mismatch"].name, "mismatch");
        std::lock_guard lock(mu);
        for (const auto &[kind, id] : events) {
            EXPECT_FALSE(id.empty()) << "event without a container id delivered: " << tf::to_string(kind);
            EXPECT_TRUE(id != "ghost" && id != "never-seen" && id != "unknown-kind" && id != "zero-kind" &&
                        id != "inspect-without-id")
                << id;
        }
    }
    leaks.check();
}

TEST_F(MalformedPlugin, EnginesWithNullIdentityAreWatchedAnyway) {
    NamedProcess engine("tf-malformed");
    warm_up();
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options("malformed", "identity"));
        auto got = finder.containers();
        auto engines = engines_of(finder, "malformed");
        ASSERT_EQ(engines.size(), 2u);
        for (const auto &e : engines) {
            EXPECT_EQ(e->type, "");
            EXPECT_EQ(e->id, "");
            EXPECT_EQ(e->version, "");
            EXPECT_EQ(e->pid, engine.pid()) << "the core knows the engine's PID, whatever the plugin says";
        }
        int bases = 0;
        for (const auto &c : got)
            if (c.engine && c.engine->plugin == "malformed" && c.id == "base") ++bases;
        EXPECT_EQ(bases, 2);
    }
    leaks.check();
}

TEST_F(MalformedPlugin, EnginesLackingV1MembersAreRefusedToThePlugin) {
    NamedProcess engine("tf-malformed");
    warm_up();
    abitest::LevelScope level("info");
    abitest::LogCapture plugin_log(tf::plugin_logger("malformed"));
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(options("malformed", "incomplete"));
        auto got = by_id(finder.containers(), "malformed");
        auto engines = engines_of(finder, "malformed");
        ASSERT_EQ(engines.size(), 1u) << "only the complete engine is usable";
        EXPECT_EQ(engines[0]->api, "complete");
        EXPECT_EQ(ids(got), std::set<std::string>{"base"});
        // The host said no, so the plugin destroyed them itself.
        EXPECT_EQ(plugin_log.count(spdlog::level::info, {"refused: 2"}), 1u);
    }
    leaks.check();
}

TEST_F(MalformedPlugin, CppExceptionsFromEveryCallStayInThePlugin) {
    NamedProcess engine("tf-malformcpp");
    warm_up();
    abitest::LevelScope level("info");
    abitest::LogCapture plugin_log(tf::plugin_logger("malformed-cpp"));
    tftest::LeakGuard leaks;
    {
        // list() throws an int: the engine never syncs; the discovery waits
        // online_wait for it and not longer, and reports no container.
        auto o = options("malformed-cpp", "list-throws");
        o.online_wait = 300ms;
        tf::Finder finder(o);
        auto start = std::chrono::steady_clock::now();
        auto got = by_id(finder.containers(), "malformed-cpp");
        auto took = std::chrono::steady_clock::now() - start;
        EXPECT_LT(took, tftest::hang_guard);
        EXPECT_TRUE(got.empty());
        EXPECT_EQ(engines_of(finder, "malformed-cpp").size(), 1u);
    } // cancel() throws too: destruction must still finish
    {
        // watch() throws after subscribing: the view from the list stays,
        // and the watcher resubscribes again and again.
        auto entered = [&] { return plugin_log.count(spdlog::level::info, {"watch entered"}); };
        const auto before = entered();
        tf::Finder finder(options("malformed-cpp", "watch-throws"));
        auto got = by_id(finder.containers(), "malformed-cpp");
        ASSERT_EQ(ids(got), std::set<std::string>{"survivor"});
        EXPECT_EQ(got["survivor"].labels.at("k"), "v");
        EXPECT_TRUE(tftest::eventually([&] { return entered() >= before + 3; }))
            << "the watch was not retried after the plugin threw";
        EXPECT_EQ(ids(by_id(finder.containers(), "malformed-cpp")), std::set<std::string>{"survivor"});
    }
    leaks.check();
}

} // namespace
