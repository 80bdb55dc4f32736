// SPDX-License-Identifier: Apache-2.0
// The v1 layout is frozen: members may only be appended (with a minor bump).
// A change to any line here breaks every plugin already built.
#include <turtlefinder/plugin.h>

#include <gtest/gtest.h>

#include <cstddef>

#if !defined(__x86_64__)
#error "the frozen layout below is written for x86_64"
#endif

#define TF_FROZEN(T, m, off, size) \
    static_assert(offsetof(T, m) == (off) && sizeof(T::m) == (size), #T "." #m " moved or changed size")

static_assert(sizeof(tf_abi_version) == 12);
TF_FROZEN(tf_abi_version, major, 0, 4);
TF_FROZEN(tf_abi_version, minor, 4, 4);
TF_FROZEN(tf_abi_version, patch, 8, 4);

static_assert(sizeof(tf_error) == 256 && TF_ERROR_MAX == 256);

static_assert(sizeof(tf_host) == 40);
TF_FROZEN(tf_host, struct_size, 0, 4);
TF_FROZEN(tf_host, abi, 4, 12);
TF_FROZEN(tf_host, ctx, 16, 8);
TF_FROZEN(tf_host, log, 24, 8);
TF_FROZEN(tf_host, get_extension, 32, 8);

static_assert(sizeof(tf_label) == 16);
TF_FROZEN(tf_label, key, 0, 8);
TF_FROZEN(tf_label, value, 8, 8);

static_assert(sizeof(tf_container) == 48);
TF_FROZEN(tf_container, struct_size, 0, 4);
TF_FROZEN(tf_container, id, 8, 8);
TF_FROZEN(tf_container, name, 16, 8);
TF_FROZEN(tf_container, pid, 24, 4);
TF_FROZEN(tf_container, flags, 28, 4);
TF_FROZEN(tf_container, n_labels, 32, 4);
TF_FROZEN(tf_container, labels, 40, 8);

static_assert(sizeof(tf_container_sink) == 24);
TF_FROZEN(tf_container_sink, struct_size, 0, 4);
TF_FROZEN(tf_container_sink, ctx, 8, 8);
TF_FROZEN(tf_container_sink, add, 16, 8);

static_assert(sizeof(tf_container_event) == 24);
TF_FROZEN(tf_container_event, struct_size, 0, 4);
TF_FROZEN(tf_container_event, kind, 4, 4);
TF_FROZEN(tf_container_event, id, 8, 8);
TF_FROZEN(tf_container_event, container, 16, 8);

static_assert(sizeof(tf_event_sink) == 32);
TF_FROZEN(tf_event_sink, struct_size, 0, 4);
TF_FROZEN(tf_event_sink, ctx, 8, 8);
TF_FROZEN(tf_event_sink, subscribed, 16, 8);
TF_FROZEN(tf_event_sink, on_event, 24, 8);

static_assert(sizeof(tf_engine_info) == 56);
TF_FROZEN(tf_engine_info, struct_size, 0, 4);
TF_FROZEN(tf_engine_info, type, 8, 8);
TF_FROZEN(tf_engine_info, flavor, 16, 8);
TF_FROZEN(tf_engine_info, id, 24, 8);
TF_FROZEN(tf_engine_info, version, 32, 8);
TF_FROZEN(tf_engine_info, api, 40, 8);
TF_FROZEN(tf_engine_info, pid, 48, 4);

static_assert(sizeof(tf_engine) == 64);
TF_FROZEN(tf_engine, struct_size, 0, 4);
TF_FROZEN(tf_engine, impl, 8, 8);
TF_FROZEN(tf_engine, info, 16, 8);
TF_FROZEN(tf_engine, list, 24, 8);
TF_FROZEN(tf_engine, inspect, 32, 8);
TF_FROZEN(tf_engine, watch, 40, 8);
TF_FROZEN(tf_engine, cancel, 48, 8);
TF_FROZEN(tf_engine, destroy, 56, 8);

static_assert(sizeof(tf_engine_sink) == 24);
TF_FROZEN(tf_engine_sink, struct_size, 0, 4);
TF_FROZEN(tf_engine_sink, ctx, 8, 8);
TF_FROZEN(tf_engine_sink, add, 16, 8);

// v1.0 ended at 48 bytes; 1.1 appended the per-path report.
static_assert(sizeof(tf_probe_request) == 64);
TF_FROZEN(tf_probe_request, struct_size, 0, 4);
TF_FROZEN(tf_probe_request, pid, 4, 4);
TF_FROZEN(tf_probe_request, process_name, 8, 8);
TF_FROZEN(tf_probe_request, n_api_paths, 16, 4);
TF_FROZEN(tf_probe_request, api_paths, 24, 8);
TF_FROZEN(tf_probe_request, timeout_ms, 32, 4);
TF_FROZEN(tf_probe_request, n_settings, 36, 4);
TF_FROZEN(tf_probe_request, settings, 40, 8);
TF_FROZEN(tf_probe_request, report_ctx, 48, 8);
TF_FROZEN(tf_probe_request, report, 56, 8);

static_assert(sizeof(tf_engine_detector) == 24);
TF_FROZEN(tf_engine_detector, struct_size, 0, 4);
TF_FROZEN(tf_engine_detector, n_process_names, 4, 4);
TF_FROZEN(tf_engine_detector, process_names, 8, 8);
TF_FROZEN(tf_engine_detector, probe, 16, 8);

static_assert(sizeof(tf_socket_activator) == 16);
TF_FROZEN(tf_socket_activator, struct_size, 0, 4);
TF_FROZEN(tf_socket_activator, n_process_names, 4, 4);
TF_FROZEN(tf_socket_activator, process_names, 8, 8);

static_assert(sizeof(tf_activated_engine) == 40);
TF_FROZEN(tf_activated_engine, struct_size, 0, 4);
TF_FROZEN(tf_activated_engine, n_socket_suffixes, 4, 4);
TF_FROZEN(tf_activated_engine, socket_suffixes, 8, 8);
TF_FROZEN(tf_activated_engine, n_service_names, 16, 4);
TF_FROZEN(tf_activated_engine, service_names, 24, 8);
TF_FROZEN(tf_activated_engine, probe, 32, 8);

static_assert(sizeof(tf_plugin_descriptor) == 64);
TF_FROZEN(tf_plugin_descriptor, abi, 0, 12);
TF_FROZEN(tf_plugin_descriptor, struct_size, 12, 4);
TF_FROZEN(tf_plugin_descriptor, name, 16, 8);
TF_FROZEN(tf_plugin_descriptor, version, 24, 8);
TF_FROZEN(tf_plugin_descriptor, description, 32, 8);
TF_FROZEN(tf_plugin_descriptor, init, 40, 8);
TF_FROZEN(tf_plugin_descriptor, deinit, 48, 8);
TF_FROZEN(tf_plugin_descriptor, get_extension, 56, 8);

// Values that are part of the ABI as much as the layout.
static_assert(TF_ABI_VERSION_MAJOR == 1);
static_assert(TF_LOG_TRACE == 0 && TF_LOG_DEBUG == 1 && TF_LOG_INFO == 2 && TF_LOG_WARN == 3 && TF_LOG_ERROR == 4);
static_assert(TF_EVENT_STARTED == 1 && TF_EVENT_EXITED == 2 && TF_EVENT_PAUSED == 3 && TF_EVENT_UNPAUSED == 4);
static_assert(TF_CONTAINER_PAUSED == 1u);

TEST(Layout, ExtensionIdsAreFrozen) {
    EXPECT_STREQ(TF_EXT_ENGINE_DETECTOR, "tf.engine-detector.v1");
    EXPECT_STREQ(TF_EXT_SOCKET_ACTIVATOR, "tf.socket-activator.v1");
    EXPECT_STREQ(TF_EXT_ACTIVATED_ENGINE, "tf.activated-engine.v1");
    EXPECT_STREQ(TF_PLUGIN_ENTRY_SYMBOL, "tf_plugin_entry");
}

// TF_HAS_MEMBER is how readers cope with writers built against an older minor.
TEST(Layout, HasMemberFollowsStructSize) {
    tf_container c{};
    c.struct_size = offsetof(tf_container, pid); // an older writer that ended before pid
    EXPECT_TRUE(TF_HAS_MEMBER(&c, tf_container, name));
    EXPECT_FALSE(TF_HAS_MEMBER(&c, tf_container, pid));
    c.struct_size = sizeof c;
    EXPECT_TRUE(TF_HAS_MEMBER(&c, tf_container, labels));
    const tf_container *none = nullptr;
    EXPECT_FALSE(TF_HAS_MEMBER(none, tf_container, id));
}
