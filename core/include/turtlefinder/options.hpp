// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <turtlefinder/export.hpp>

// A plugin's entry (turtlefinder/plugin.h), for plugins linked into the host.
struct tf_plugin_descriptor;

namespace turtlefinder {

struct Options {
    // Directories searched for plugins, in order; a plugin name found twice is
    // loaded from the first. The environment's TURTLEFINDER_PLUGIN_PATH (colon
    // separated) and the built-in directory are appended unless disabled.
    std::vector<std::string> plugin_dirs;
    bool default_plugin_dirs = true;
    std::set<std::string> disabled_plugins;
    // Plugins linked into the host program, admitted before any directory is
    // read and checked like files (ABI version, size, name); listed by
    // Finder::plugins() as "<builtin:NAME>". A plugin file named like one of
    // them (NAME.so) is skipped. Each descriptor must outlive the Finder.
    std::vector<const tf_plugin_descriptor *> builtin_plugins;
    // Accepted for compatibility: probes and activations run side by side,
    // each bounded by probe_timeout, so one that hangs delays no other.
    unsigned workers = 4;
    // How long a discovery waits for new engines' first sync; only that:
    // probing and activation are bounded by probe_timeout. 0: engines are
    // found (and activated) but their first sync is not waited for.
    std::chrono::milliseconds online_wait{2000};
    // Per-socket probe timeout, bound of each step of a socket activation
    // (connect, service start, probe) and per-call timeout of engine clients.
    std::chrono::milliseconds probe_timeout{1000};
    // Relist period for engines without an event stream.
    std::chrono::milliseconds relist_interval{1000};
    // How often an engine whose event stream stands is asked for a list, so
    // that one whose API stops answering while its process lives (a quiet
    // stream says nothing) is marked stale.
    std::chrono::milliseconds health_interval{5000};
    // Backoff after a failed watch: doubles from min up to max.
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5000};
    // Where the host's procfs is mounted (tests and containerised finders).
    std::string procfs_root = "/proc";
    // Per-plugin settings, passed to the plugin's probes as key/value pairs.
    std::map<std::string, std::map<std::string, std::string>> plugin_settings;
};

} // namespace turtlefinder

namespace turtlefinder {

// Settings of the configuration file that are not Finder options.
struct FileSettings {
    std::string log_level; // empty: not set
    // The "serve" object (settings of the node service, which reads them
    // itself), as JSON text; empty: not set.
    std::string serve;
};

// Reads a configuration file (JSON, keys as documented in README) into
// `options`, leaving keys the file does not set as they are. Throws
// std::runtime_error naming the file, the key and what was expected on an
// unknown key, a wrong type, a bad value or unreadable/invalid JSON.
TF_PUBLIC FileSettings load_config(const std::string &path, Options &options);

// The installed default configuration file (may not exist).
TF_PUBLIC std::string default_config_path();

// Sets the level of the library's and every plugin's log lines (to stderr or
// the log callback):
// "trace", "debug", "info", "warn", "error", "critical" or "off". Returns
// false, changing nothing, for another name. The initial level is "warn", or
// the environment's TURTLEFINDER_LOG_LEVEL.
TF_PUBLIC bool set_log_level(const std::string &level);

enum class LogLevel { trace, debug, info, warn, error, critical };

// One log line of the library or of a plugin. The views are valid during the
// callback only.
struct LogRecord {
    LogLevel level;
    std::string_view component; // "turtlefinder" for the library, else the plugin's name
    std::string_view message;
};

using LogCallback = std::function<void(const LogRecord &)>;

// Sends every log line at or above the log level to `callback` instead of
// stderr; an empty callback restores stderr. Process-wide, like the level.
// The callback runs on the thread that logs — a thread calling a Finder, or
// one of the Finder's or a plugin's threads — one record at a time (calls are
// serialized). It must not call into a Finder or set_log_callback, and what it
// throws is dropped. Once set_log_callback returns, the previous callback is
// not running and is never called again.
TF_PUBLIC void set_log_callback(LogCallback callback);

} // namespace turtlefinder
