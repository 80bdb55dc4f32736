// SPDX-License-Identifier: Apache-2.0
// Every plugin this build produced, held to the same contract: it loads,
// offers a capability, answers NULL for an unknown extension id, survives
// init/deinit twice, and a probe with nothing to probe finds nothing at once.
#include <algorithm>
#include <chrono>
#include <filesystem>

#include "plugins/registry.hpp"
#include "testing.hpp"

namespace {

using namespace turtlefinder::plugins;

std::vector<std::string> built_plugin_dirs() {
    std::vector<std::string> dirs;
    for (const char *sub : {"/plugins", "/activators"}) {
        std::error_code ec;
        for (const auto &e : std::filesystem::directory_iterator(std::string(TF_BUILD_ROOT_FOR_TEST) + sub, ec)) {
            if (!e.is_directory()) continue;
            std::error_code ec2;
            for (const auto &f : std::filesystem::directory_iterator(e.path(), ec2))
                if (f.path().extension() == ".so") {
                    dirs.push_back(e.path().string());
                    break;
                }
        }
    }
    std::sort(dirs.begin(), dirs.end());
    return dirs;
}

// Loads the plugins of `dir` and holds them to the contract; the number loaded.
std::size_t exercise(const std::string &dir) {
    Registry r;
    r.load_directories({dir});
    for (const auto &s : r.statuses()) EXPECT_TRUE(s.loaded) << s.file << ": " << s.reason;
    for (const auto &p : r.plugins()) {
        EXPECT_FALSE(p->has_extension("tf.no-such-extension.v1"));
        EXPECT_FALSE(p->version().empty());
        EXPECT_FALSE(p->description().empty());
        for (bool activated : {false, true}) {
            if (activated ? !p->is_activated_engine() : !p->is_detector()) continue;
            auto probe = [&](const ProbeInput &in) { return activated ? p->probe_activated(in) : p->probe(in); };
            ProbeInput in;
            in.timeout = std::chrono::milliseconds(200);
            auto start = std::chrono::steady_clock::now();
            auto out = probe(in);
            EXPECT_LT(std::chrono::steady_clock::now() - start, tftest::hang_guard);
            EXPECT_GE(out.result.code, 0) << out.result.message;
            EXPECT_TRUE(out.engines.empty());
            // A socket path that does not exist is no engine, and no hang.
            in.api_paths = {"/nonexistent/turtlefinder-conformance.sock"};
            out = probe(in);
            EXPECT_TRUE(out.engines.empty());
        }
    }
    return r.plugins().size();
}

TEST(Conformance, EveryBuiltPluginHonoursTheContract) {
    auto dirs = built_plugin_dirs();
    if (dirs.empty()) TF_SKIP_OR_FAIL("no plugin built");
    for (const auto &dir : dirs) {
        SCOPED_TRACE(dir);
        // The first round may set up process-wide state for good (a library's
        // global init); every later load/unload cycle must leave nothing behind.
        EXPECT_GT(exercise(dir), 0u);
        tftest::LeakGuard guard;
        for (int round = 0; round < 2; ++round) exercise(dir); // init/deinit again, twice
        guard.check();
    }
}

} // namespace
