// SPDX-License-Identifier: Apache-2.0
// One sink shared by the core's logger and every plugin's logger, so a
// plugin's lines interleave with the core's and carry the plugin's name. It
// writes to stderr, or hands each record to the host's log callback.
// Loggers are kept here rather than in spdlog's global registry: a host
// application may use that registry itself, with names that could clash.
#include "log.hpp"

#include <cstdlib>
#include <map>
#include <mutex>

#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace turtlefinder {

namespace {

LogLevel public_level(spdlog::level::level_enum level) {
    switch (level) {
    case spdlog::level::trace: return LogLevel::trace;
    case spdlog::level::debug: return LogLevel::debug;
    case spdlog::level::info: return LogLevel::info;
    case spdlog::level::warn: return LogLevel::warn;
    case spdlog::level::err: return LogLevel::error;
    default: return LogLevel::critical;
    }
}

// stderr, or the host's callback when one is set.
class HostSink final : public spdlog::sinks::sink {
public:
    void log(const spdlog::details::log_msg &msg) override {
        std::shared_ptr<const LogCallback> callback;
        {
            std::lock_guard lock(mutex_);
            callback = callback_;
        }
        if (!callback) {
            stderr_.log(msg);
            return;
        }
        std::lock_guard delivering(delivery_); // one record at a time; see set_callback
        try {
            (*callback)(LogRecord{public_level(msg.level),
                                  {msg.logger_name.data(), msg.logger_name.size()},
                                  {msg.payload.data(), msg.payload.size()}});
        } catch (...) {
            // A host's failing callback must not break the line of code that logged.
        }
    }
    void flush() override { stderr_.flush(); }
    void set_pattern(const std::string &pattern) override { stderr_.set_pattern(pattern); }
    void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
        stderr_.set_formatter(std::move(formatter));
    }

    void set_callback(LogCallback callback) {
        auto next = callback ? std::make_shared<const LogCallback>(std::move(callback)) : nullptr;
        {
            std::lock_guard lock(mutex_);
            callback_ = std::move(next);
        }
        // Waits out a delivery of the previous callback still running, so the
        // host may free what that callback uses once this returns.
        std::lock_guard wait(delivery_);
    }

private:
    spdlog::sinks::stderr_color_sink_mt stderr_;
    std::mutex mutex_; // guards callback_
    std::mutex delivery_; // held while the callback runs
    std::shared_ptr<const LogCallback> callback_;
};

struct Loggers {
    std::mutex mutex;
    std::shared_ptr<HostSink> sink;
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
        l->sink = std::make_shared<HostSink>();
        l->core = std::make_shared<spdlog::logger>("turtlefinder", l->sink);
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

void set_log_callback(LogCallback callback) { loggers().sink->set_callback(std::move(callback)); }

} // namespace turtlefinder
