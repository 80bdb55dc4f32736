// SPDX-License-Identifier: Apache-2.0
// Shared test helpers: skipping honestly, and checking that nothing leaks.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#if defined(__SANITIZE_THREAD__)
#define TF_TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TF_TEST_UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TF_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TF_TEST_UNDER_ASAN 1
#endif
#endif

namespace tftest {

// Upper bound for a call that must end by its own (much shorter) timeout.
// Tests assert outcomes, not speed: this bound is far beyond what a loaded
// machine or a sanitizer costs, so it fails only when the call hangs. Speed
// goals live in the benchmarks.
inline constexpr std::chrono::seconds hang_guard{30};

// A process whose comm is `name`, so that a process scan hands it to the
// plugin claiming that name. Killed and reaped at scope exit.
class NamedProcess {
public:
    explicit NamedProcess(const char *name);
    ~NamedProcess();
    NamedProcess(const NamedProcess &) = delete;
    NamedProcess &operator=(const NamedProcess &) = delete;
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

// True when running under CI (CI=true): a test that cannot run must fail there.
bool under_ci();

// Number of open fds and threads of this process.
int open_fd_count();
int thread_count();

// Polls `condition` until it holds or `deadline` passes; returns its last value.
bool eventually(const std::function<bool()> &condition, std::chrono::milliseconds deadline = std::chrono::seconds(5),
                std::chrono::milliseconds step = std::chrono::milliseconds(10));

// Checks `text` — one JSON document, or JSON lines as `--watch --json`
// prints — against the turtlefinder/v1 schema (doc/schema) with
// tests/common/validate-json.py: "" when every document is valid, else what
// the validator said (empty text is invalid too).
std::string schema_errors(const std::string &text);

// The whole file ("" when it cannot be read).
std::string slurp(const std::string &path);
// The CLI of this build (tools/turtlefinder under TF_BUILD_ROOT, which the
// test environment sets).
std::string cli();

// A temporary directory, removed with everything below it on destruction.
class TempDir {
public:
    explicit TempDir(std::string_view prefix = "tf-test-") {
        const char *tmp = std::getenv("TMPDIR");
        std::string pattern =
            std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + std::string(prefix) + "XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
        path_ = pattern;
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::string &path() const { return path_; }

private:
    std::string path_;
};

// Snapshot of fds and threads, taken once the counts are steady; check()
// expects neither to have grown. It polls until they are back, up to
// hang_guard: threads take a moment to be reaped, and a probe a destroyed
// Finder left running (a socket that does not answer) holds its thread and
// fds until its own probe timeout ends it.
class LeakGuard {
public:
    LeakGuard();
    void check() const;

private:
    int fds_;
    int threads_;
};

} // namespace tftest

// Skips with `reason`, except under CI, where a test that cannot run fails.
#define TF_SKIP_OR_FAIL(reason)                                                  \
    do {                                                                         \
        if (::tftest::under_ci()) FAIL() << "cannot run under CI: " << (reason); \
        GTEST_SKIP() << (reason);                                                \
    } while (0)

#define TF_REQUIRE_ROOT()                                    \
    do {                                                     \
        if (::geteuid() != 0) TF_SKIP_OR_FAIL("needs root"); \
    } while (0)
