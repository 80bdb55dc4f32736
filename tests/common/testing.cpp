// SPDX-License-Identifier: Apache-2.0
#include "testing.hpp"

#include <dirent.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

namespace tftest {

bool under_ci() {
    const char *ci = std::getenv("CI");
    return ci != nullptr && (std::strcmp(ci, "true") == 0 || std::strcmp(ci, "1") == 0);
}

static int count_entries(const char *dir) {
    DIR *d = ::opendir(dir);
    if (d == nullptr) return -1;
    int n = 0;
    while (dirent *e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n;
}

int open_fd_count() { return count_entries("/proc/self/fd") - 1; } // minus opendir's own fd

int thread_count() { return count_entries("/proc/self/task"); }

bool eventually(const std::function<bool()> &condition, std::chrono::milliseconds deadline,
                std::chrono::milliseconds step) {
    auto end = std::chrono::steady_clock::now() + deadline;
    while (true) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= end) return condition();
        std::this_thread::sleep_for(step);
    }
}

LeakGuard::LeakGuard() : fds_(open_fd_count()), threads_(thread_count()) {}

void LeakGuard::check() const {
    eventually([&] { return open_fd_count() <= fds_ && thread_count() <= threads_; },
               std::chrono::seconds(2));
    EXPECT_EQ(open_fd_count(), fds_) << "fds leaked";
    EXPECT_EQ(thread_count(), threads_) << "threads leaked";
}

} // namespace tftest
