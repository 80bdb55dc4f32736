// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the ABI tests: temp dirs and log capture.
#pragma once

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "log.hpp"

namespace abitest {

namespace fs = std::filesystem;

// A fresh directory removed with everything in it at scope exit.
class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "tf-abi-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
        fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                   fs::perms::others_read | fs::perms::others_exec);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const fs::path &path() const { return path_; }
    std::string operator/(const std::string &name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

// Copies a plugin into `dir` under `name`, mode 0755.
inline std::string install(const std::string &from, const TempDir &dir, const std::string &name) {
    std::string to = dir / name;
    fs::copy_file(from, to, fs::copy_options::overwrite_existing);
    fs::permissions(to, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                            fs::perms::others_exec);
    return to;
}

// Captures what one logger writes while in scope.
class LogCapture {
public:
    explicit LogCapture(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {
        sink_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
        logger_->sinks().push_back(sink_);
    }
    explicit LogCapture(spdlog::logger &logger) : LogCapture(std::shared_ptr<spdlog::logger>(&logger, [](auto *) {})) {}
    ~LogCapture() {
        auto &sinks = logger_->sinks();
        sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    }
    LogCapture(const LogCapture &) = delete;
    LogCapture &operator=(const LogCapture &) = delete;

    struct Line {
        std::string logger;
        spdlog::level::level_enum level;
        std::string text;
    };
    std::vector<Line> lines() const {
        std::vector<Line> out;
        for (const auto &m : sink_->last_raw())
            out.push_back({std::string(m.logger_name.data(), m.logger_name.size()), m.level,
                           std::string(m.payload.data(), m.payload.size())});
        return out;
    }
    // Lines at `level` containing every one of `parts`.
    std::size_t count(spdlog::level::level_enum level, const std::vector<std::string> &parts) const {
        std::size_t n = 0;
        for (const auto &l : lines()) {
            if (l.level != level) continue;
            if (std::all_of(parts.begin(), parts.end(),
                            [&](const auto &p) { return l.text.find(p) != std::string::npos; }))
                ++n;
        }
        return n;
    }

private:
    std::shared_ptr<spdlog::logger> logger_;
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

// Sets the core's and plugins' log level for a scope: tests that look for
// info lines must not depend on the library's default level.
class LevelScope {
public:
    explicit LevelScope(const std::string &level) : saved_(turtlefinder::log().level()) {
        turtlefinder::set_log_level(level);
    }
    ~LevelScope() {
        auto name = spdlog::level::to_string_view(saved_);
        turtlefinder::set_log_level(std::string(name.data(), name.size()));
    }
    LevelScope(const LevelScope &) = delete;
    LevelScope &operator=(const LevelScope &) = delete;

private:
    spdlog::level::level_enum saved_;
};

} // namespace abitest
