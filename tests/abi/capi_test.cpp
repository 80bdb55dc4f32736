// SPDX-License-Identifier: Apache-2.0
// The C API (turtlefinder/turtlefinder.h): misuse answers a negative errno
// and a message, never a crash; snapshots, subscriptions (one unsubscribing
// itself from its callback) and the log callback, with built-in detectors.
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <csignal>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <turtlefinder/plugin.h>
// Built against today's header and each frozen copy (1.0, 1.1), which every
// later 1.x library must keep serving.
#ifdef TFC_TEST_FROZEN_V1_0
#include "frozen/capi-v1.0/turtlefinder/turtlefinder.h"
#elif defined(TFC_TEST_FROZEN_V1_1)
#include "frozen/capi-v1.1/turtlefinder/turtlefinder.h"
#else
#include <turtlefinder/turtlefinder.h>
#endif

// The v1 layout is frozen: members are only appended (with a minor bump).
#if defined(__x86_64__)
#define TFC_FROZEN(T, m, off, size) \
    static_assert(offsetof(T, m) == (off) && sizeof(T::m) == (size), #T "." #m " moved or changed size")
static_assert(sizeof(tfc_error) == 256 && TFC_ERROR_MAX == 256);
static_assert(sizeof(tfc_options) == 80);
TFC_FROZEN(tfc_options, struct_size, 0, 4);
TFC_FROZEN(tfc_options, no_default_plugin_dirs, 4, 4);
TFC_FROZEN(tfc_options, plugin_dirs, 8, 8);
TFC_FROZEN(tfc_options, n_plugin_dirs, 16, 8);
TFC_FROZEN(tfc_options, disabled_plugins, 24, 8);
TFC_FROZEN(tfc_options, n_disabled_plugins, 32, 8);
TFC_FROZEN(tfc_options, builtin_plugins, 40, 8);
TFC_FROZEN(tfc_options, n_builtin_plugins, 48, 8);
TFC_FROZEN(tfc_options, procfs_root, 56, 8);
TFC_FROZEN(tfc_options, config_file, 64, 8);
TFC_FROZEN(tfc_options, online_wait_ms, 72, 4);
TFC_FROZEN(tfc_options, workers, 76, 4);
static_assert(TFC_EVENT_ENGINE_FOUND == 1 && TFC_EVENT_UNPAUSED == 6);
static_assert(TFC_LOG_TRACE == 0 && TFC_LOG_OFF == 6);
#endif

#include "testing.hpp"

extern "C" const tf_plugin_descriptor tf_plugin_entry_builtin_a;
extern "C" const tf_plugin_descriptor tf_plugin_entry_builtin_b;

namespace {

using tftest::NamedProcess;

const tf_plugin_descriptor *const builtins[] = {&tf_plugin_entry_builtin_a, &tf_plugin_entry_builtin_b};

tfc_options builtin_only() {
    tfc_options o{};
    o.struct_size = sizeof o;
    o.no_default_plugin_dirs = 1;
    o.builtin_plugins = builtins;
    o.n_builtin_plugins = 2;
    return o;
}

TEST(CApi, VersionIsThisHeaders) {
    EXPECT_EQ(tfc_api_version() >> 16, static_cast<uint32_t>(TFC_API_VERSION_MAJOR));
    EXPECT_GE(tfc_api_version() & 0xffff, static_cast<uint32_t>(TFC_API_VERSION_MINOR));
    ASSERT_NE(tfc_library_version(), nullptr);
    EXPECT_STRNE(tfc_library_version(), "");
}

TEST(CApi, MisuseIsAnErrorNotACrash) {
    tfc_error err{};
    tfc_finder *f = nullptr;
    tfc_snapshot *s = reinterpret_cast<tfc_snapshot *>(&err); // must be reset
    EXPECT_EQ(tfc_finder_new(nullptr, nullptr, &err), -EINVAL);
    EXPECT_EQ(tfc_finder_snapshot(nullptr, &s, &err), -EINVAL);
    EXPECT_EQ(s, nullptr);
    EXPECT_NE(std::strstr(err.message, "NULL finder"), nullptr) << err.message;
    EXPECT_EQ(tfc_subscribe(nullptr, nullptr, nullptr, nullptr), -EINVAL); // a NULL err is fine too
    EXPECT_EQ(tfc_unsubscribe(nullptr, 1, &err), -EINVAL);
    tfc_finder_free(nullptr);
    tfc_snapshot_free(nullptr);
    EXPECT_EQ(tfc_set_log_level(static_cast<tfc_log_level>(42)), -EINVAL);
    EXPECT_EQ(tfc_set_log_level(static_cast<tfc_log_level>(-1)), -EINVAL);

    // Accessors of nothing answer nothing.
    EXPECT_EQ(tfc_snapshot_container_count(nullptr), 0u);
    EXPECT_EQ(tfc_snapshot_container(nullptr, 0), nullptr);
    EXPECT_EQ(tfc_snapshot_engine(nullptr, 0), nullptr);
    EXPECT_EQ(tfc_container_id(nullptr), nullptr);
    EXPECT_EQ(tfc_container_pid(nullptr), 0);
    EXPECT_EQ(tfc_container_label(nullptr, "x"), nullptr);
    EXPECT_EQ(tfc_container_label_key(nullptr, 0), nullptr);
    EXPECT_EQ(tfc_engine_api(nullptr), nullptr);
    EXPECT_EQ(tfc_engine_parent(nullptr), nullptr);
#ifndef TFC_TEST_FROZEN_V1_0
    EXPECT_EQ(tfc_engine_uid(nullptr), -1);
#endif
    EXPECT_EQ(tfc_event_get_kind(nullptr), 0);
    EXPECT_EQ(tfc_event_container(nullptr), nullptr);
#ifndef TFC_TEST_FROZEN_V1_0
    // Since 1.1: engine state and cancellation.
    EXPECT_EQ(tfc_engine_get_state(nullptr), 0);
    EXPECT_EQ(tfc_engine_error(nullptr), nullptr);
    EXPECT_EQ(tfc_engine_since_ms(nullptr), 0);
    EXPECT_EQ(tfc_container_stale(nullptr), 0);
    EXPECT_EQ(tfc_engine_state_name(static_cast<tfc_engine_state>(0)), nullptr);
    EXPECT_EQ(tfc_engine_state_name(static_cast<tfc_engine_state>(42)), nullptr);
    EXPECT_STREQ(tfc_engine_state_name(TFC_ENGINE_SYNCING), "syncing");
    EXPECT_STREQ(tfc_engine_state_name(TFC_ENGINE_ONLINE), "online");
    EXPECT_STREQ(tfc_engine_state_name(TFC_ENGINE_STALE), "stale");
    EXPECT_EQ(tfc_finder_snapshot_bounded(nullptr, nullptr, 0, &s, &err), -EINVAL);
    EXPECT_EQ(s, nullptr);
    EXPECT_NE(std::strstr(err.message, "NULL finder"), nullptr) << err.message;
    EXPECT_EQ(tfc_cancel_new(nullptr, &err), -EINVAL);
    tfc_cancel_request(nullptr);
    EXPECT_EQ(tfc_cancel_requested(nullptr), 0);
    tfc_cancel_free(nullptr);
#endif

    // Bad options are named.
    tfc_options o{};
    EXPECT_EQ(tfc_finder_new(&o, &f, &err), -EINVAL);
    EXPECT_NE(std::strstr(err.message, "struct_size"), nullptr) << err.message;
    o.struct_size = offsetof(tfc_options, workers); // shorter than v1.0's
    EXPECT_EQ(tfc_finder_new(&o, &f, &err), -EINVAL);
    o = builtin_only();
    o.n_plugin_dirs = 1;
    EXPECT_EQ(tfc_finder_new(&o, &f, &err), -EINVAL);
    EXPECT_NE(std::strstr(err.message, "plugin_dirs"), nullptr) << err.message;
    const char *dirs[] = {nullptr};
    o.plugin_dirs = dirs;
    EXPECT_EQ(tfc_finder_new(&o, &f, &err), -EINVAL);
    EXPECT_NE(std::strstr(err.message, "plugin_dirs[0] is NULL"), nullptr) << err.message;
    o = builtin_only();
    o.config_file = "/nonexistent/turtlefinder.json";
    EXPECT_LT(tfc_finder_new(&o, &f, &err), 0);
    EXPECT_NE(std::strstr(err.message, "/nonexistent/turtlefinder.json"), nullptr) << err.message;
    EXPECT_EQ(f, nullptr);

    // Handles of a real finder: unknown and twice-removed subscriptions.
    o = builtin_only();
    ASSERT_EQ(tfc_finder_new(&o, &f, &err), 0) << err.message;
    EXPECT_EQ(tfc_finder_snapshot(f, nullptr, &err), -EINVAL);
    EXPECT_EQ(tfc_subscribe(f, nullptr, nullptr, &err), -EINVAL);
    EXPECT_EQ(tfc_unsubscribe(f, 12345, &err), -ENOENT);
    int handle = tfc_subscribe(
        f, [](void *, const tfc_event *) {}, nullptr, &err);
    ASSERT_GT(handle, 0) << err.message;
    EXPECT_EQ(tfc_unsubscribe(f, handle, &err), 0);
    EXPECT_EQ(tfc_unsubscribe(f, handle, &err), -ENOENT);
#ifndef TFC_TEST_FROZEN_V1_0
    EXPECT_EQ(tfc_finder_snapshot_bounded(f, nullptr, 0, nullptr, &err), -EINVAL);
    {
        // A requested token: cut short, yet a snapshot to free.
        tfc_cancel *cancel = nullptr;
        ASSERT_EQ(tfc_cancel_new(&cancel, &err), 0) << err.message;
        tfc_cancel_request(cancel);
        ASSERT_EQ(tfc_finder_snapshot_bounded(f, cancel, 0, &s, &err), 1) << err.message;
        ASSERT_NE(s, nullptr);
        tfc_snapshot_free(s);
        tfc_cancel_free(cancel);
    }
#endif
    ASSERT_EQ(tfc_finder_snapshot(f, &s, &err), 0) << err.message;
    EXPECT_EQ(tfc_snapshot_container(s, tfc_snapshot_container_count(s)), nullptr);
    EXPECT_EQ(tfc_snapshot_engine(s, tfc_snapshot_engine_count(s)), nullptr);
    tfc_snapshot_free(s);
    tfc_finder_free(f);
}

struct SelfRemoving {
    tfc_finder *finder = nullptr;
    int handle = 0;
    int calls = 0;
    int unsubscribed = 1;
};

struct Logs {
    std::mutex mutex;
    std::vector<std::string> lines; // "component: message"
};

TEST(CApi, SnapshotOfBuiltInEnginesAndACallbackThatUnsubscribesItself) {
    NamedProcess a("builtin-a-eng"), b("builtin-b-eng");
    Logs logs;
    ASSERT_EQ(tfc_set_log_level(TFC_LOG_INFO), 0);
    tfc_set_log_callback(
        [](void *user, tfc_log_level, const char *component, const char *message) {
            auto *l = static_cast<Logs *>(user);
            std::lock_guard lock(l->mutex);
            l->lines.push_back(std::string(component) + ": " + message);
        },
        &logs);
    tftest::LeakGuard leaks;
    {
        tfc_error err{};
        tfc_options o = builtin_only();
        tfc_finder *f = nullptr;
        ASSERT_EQ(tfc_finder_new(&o, &f, &err), 0) << err.message;
        SelfRemoving self;
        self.finder = f;
        // Two engines are found in one discovery: two engine-found events,
        // of which only the first may reach the callback.
        self.handle = tfc_subscribe(
            f,
            [](void *user, const tfc_event *event) {
                auto *s = static_cast<SelfRemoving *>(user);
                ++s->calls;
                EXPECT_EQ(tfc_event_get_kind(event), TFC_EVENT_ENGINE_FOUND);
                EXPECT_EQ(tfc_event_container(event), nullptr);
                EXPECT_NE(tfc_engine_api(tfc_event_engine(event)), nullptr);
                s->unsubscribed = tfc_unsubscribe(s->finder, s->handle, nullptr);
            },
            &self, &err);
        ASSERT_GT(self.handle, 0) << err.message;

        tfc_snapshot *s = nullptr;
        ASSERT_EQ(tfc_finder_snapshot(f, &s, &err), 0) << err.message;
        EXPECT_EQ(self.calls, 1);
        EXPECT_EQ(self.unsubscribed, 0);
        ASSERT_EQ(tfc_snapshot_container_count(s), 2u);
        ASSERT_EQ(tfc_snapshot_engine_count(s), 2u);
        for (size_t i = 0; i < 2; ++i) {
            const tfc_container *c = tfc_snapshot_container(s, i);
            const tfc_engine *e = tfc_container_engine(c);
            ASSERT_NE(e, nullptr);
            std::string plugin = tfc_engine_plugin(e);
            pid_t want = plugin == "builtin-a" ? a.pid() : b.pid();
            EXPECT_EQ(std::string(tfc_container_id(c)), plugin + "-box");
            EXPECT_EQ(std::string(tfc_container_name(c)), plugin + "-box");
            EXPECT_EQ(tfc_container_pid(c), 0);
            EXPECT_EQ(tfc_container_paused(c), 0);
            EXPECT_EQ(tfc_engine_pid(e), want);
            EXPECT_STREQ(tfc_engine_type(e), "example.org/builtin");
            EXPECT_STREQ(tfc_engine_prefix(e), "");
            EXPECT_EQ(tfc_engine_parent(e), nullptr);
#ifndef TFC_TEST_FROZEN_V1_0
            EXPECT_EQ(tfc_engine_uid(e), static_cast<int64_t>(::getuid())); // the engines are our children
#endif
            EXPECT_STREQ(tfc_container_label(c, "built-in"), "yes");
            EXPECT_STREQ(tfc_container_label(c, "turtlefinder/container/prefix"), "");
            ASSERT_EQ(tfc_container_label_count(c), 2u);
            EXPECT_STREQ(tfc_container_label_key(c, 0), "built-in"); // sorted by key
            EXPECT_STREQ(tfc_container_label_value(c, 0), "yes");
            EXPECT_EQ(tfc_container_label_key(c, 2), nullptr);
#ifndef TFC_TEST_FROZEN_V1_0
            EXPECT_EQ(tfc_engine_get_state(e), TFC_ENGINE_ONLINE);
            EXPECT_STREQ(tfc_engine_error(e), "");
            EXPECT_GT(tfc_engine_since_ms(e), 0);
            EXPECT_EQ(tfc_container_stale(c), 0);
#endif
        }
        tfc_finder_free(f);
        // The snapshot owns its data: still readable after the finder is gone.
        EXPECT_EQ(std::string(tfc_container_id(tfc_snapshot_container(s, 0))).substr(9), "-box");
        tfc_snapshot_free(s);
        EXPECT_EQ(self.calls, 1);
    }
    tfc_set_log_callback(nullptr, nullptr);
    tfc_set_log_level(TFC_LOG_WARN);
    leaks.check();
    std::lock_guard lock(logs.mutex);
    auto has = [&](const std::string &line) {
        return std::find(logs.lines.begin(), logs.lines.end(), line) != logs.lines.end();
    };
    EXPECT_TRUE(has("builtin-a: builtin-a probed"));
    EXPECT_TRUE(has("builtin-b: builtin-b probed"));
}

} // namespace
