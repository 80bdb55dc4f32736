// SPDX-License-Identifier: Apache-2.0
// One stderr sink shared by the core's logger and every plugin's logger, so a
// plugin's lines interleave with the core's and carry the plugin's name.
// Loggers are kept here rather than in spdlog's global registry: a host
// application may use that registry itself, with names that could clash.
#include "log.hpp"

#include <cstdlib>
#include <map>
#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace turtlefinder {

namespace {

struct Loggers {
    std::mutex mutex;
    std::shared_ptr<spdlog::logger> core;
    std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> plugins;
};

spdlog::level::level_enum initial_level() {
    // Lets users turn on debug output without a host application change.
    const char *env = std::getenv("TURTLEFINDER_LOG_LEVEL");
    if (env != nullptr) {
        auto level = spdlog::level::from_str(env);
        // from_str answers "off" for anything unknown; only accept "off" if asked for.
        if (level != spdlog::level::off || std::string_view(env) == "off") return level;
    }
    return spdlog::level::warn; // a library embedded in host apps stays quiet unless asked
}

Loggers &loggers() {
    // Leaked on purpose: plugins and detached threads may still log while
    // static destructors run at exit.
    static Loggers *instance = [] {
        auto *l = new Loggers;
        auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
        l->core = std::make_shared<spdlog::logger>("turtlefinder", sink);
        l->core->set_pattern("%Y-%m-%d %H:%M:%S.%e [%n] %l: %v");
        l->core->set_level(initial_level());
        l->core->flush_on(spdlog::level::warn);
        return l;
    }();
    return *instance;
}

} // namespace

spdlog::logger &log() { return *loggers().core; }

std::shared_ptr<spdlog::logger> plugin_logger(const std::string &plugin_name) {
    Loggers &l = loggers();
    std::lock_guard lock(l.mutex);
    auto it = l.plugins.find(plugin_name);
    if (it != l.plugins.end()) return it->second;
    auto logger = l.core->clone(plugin_name); // same sinks, level, pattern and flush policy
    l.plugins.emplace(plugin_name, logger);
    return logger;
}

bool set_log_level(const std::string &level) {
    auto parsed = spdlog::level::from_str(level);
    if (parsed == spdlog::level::off && level != "off") return false;
    Loggers &l = loggers();
    std::lock_guard lock(l.mutex);
    l.core->set_level(parsed);
    for (auto &[name, logger] : l.plugins) logger->set_level(parsed);
    return true;
}

} // namespace turtlefinder
