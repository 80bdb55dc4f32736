// SPDX-License-Identifier: Apache-2.0
// Shared test helpers: skipping honestly, and checking that nothing leaks.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

namespace tftest {

// True when running under CI (CI=true): a test that cannot run must fail there.
bool under_ci();

// Number of open fds and threads of this process.
int open_fd_count();
int thread_count();

// Polls `condition` until it holds or `deadline` passes; returns its last value.
bool eventually(const std::function<bool()> &condition,
                std::chrono::milliseconds deadline = std::chrono::seconds(5),
                std::chrono::milliseconds step = std::chrono::milliseconds(10));

// Snapshot of fds and threads, taken once the counts are steady; check()
// expects neither to have grown (threads may take a moment to be reaped, so
// it polls briefly).
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
#define TF_SKIP_OR_FAIL(reason)                                                     \
    do {                                                                            \
        if (::tftest::under_ci()) FAIL() << "cannot run under CI: " << (reason);    \
        GTEST_SKIP() << (reason);                                                   \
    } while (0)

#define TF_REQUIRE_ROOT()                                                           \
    do {                                                                            \
        if (::geteuid() != 0) TF_SKIP_OR_FAIL("needs root");                        \
    } while (0)
