// SPDX-License-Identifier: Apache-2.0
#include "testing.hpp"

#include <dirent.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <tuple>
#include <utility>

namespace tftest {

NamedProcess::NamedProcess(const char *name) {
    pid_ = ::fork();
    if (pid_ == 0) {
        ::prctl(PR_SET_NAME, name, 0, 0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        while (true) ::pause();
    }
    if (pid_ < 0) throw std::runtime_error("fork failed");
}

NamedProcess::~NamedProcess() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
}

std::string schema_errors(const std::string &text) {
    const char *source = std::getenv("TF_SOURCE_ROOT");
    if (source == nullptr) return "TF_SOURCE_ROOT is not set (run through meson test)";
    TempDir dir("tf-schema-");
    std::string file = dir.path() + "/output.json";
    std::ofstream(file) << text;
    std::string root(source);
    std::string command =
        root + "/tests/common/validate-json.py " + root + "/doc/schema/turtlefinder-v1.schema.json " + file + " 2>&1";
    FILE *validator = ::popen(command.c_str(), "r");
    if (validator == nullptr) return "cannot run " + command;
    std::string said;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, validator)) > 0;) said.append(buf, n);
    int status = ::pclose(validator);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
    return said.empty() ? "the validator failed with status " + std::to_string(status) : said;
}

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

// Threads and fds that earlier work left winding down (gRPC retires its
// pollers and executor threads asynchronously, a while after its last
// channel closes) would inflate the baseline: wait until the counts have
// been steady for a moment first.
static std::pair<int, int> settled_counts() {
    auto counts = std::make_pair(open_fd_count(), thread_count());
    auto steady_since = std::chrono::steady_clock::now();
    auto give_up = steady_since + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        auto now = std::make_pair(open_fd_count(), thread_count());
        if (now != counts) {
            counts = now;
            steady_since = std::chrono::steady_clock::now();
        } else if (std::chrono::steady_clock::now() - steady_since >= std::chrono::milliseconds(300)) {
            break;
        }
    }
    return counts;
}

// "fd -> target" lines, to name what leaked.
static std::string describe_fds() {
    std::string out;
    DIR *d = ::opendir("/proc/self/fd");
    if (d == nullptr) return out;
    while (dirent *e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        char target[512];
        std::string link = std::string("/proc/self/fd/") + e->d_name;
        ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
        if (n < 0) continue;
        target[n] = '\0';
        out += std::string("  ") + e->d_name + " -> " + target + "\n";
    }
    ::closedir(d);
    return out;
}

LeakGuard::LeakGuard() {
#ifdef TF_TEST_UNDER_TSAN
    // ThreadSanitizer starts its one background thread with the process's
    // first pthread_create and keeps it for good. Make that happen before the
    // baseline, so the first guard of a test binary does not count it as ours.
    static std::once_flag tsan_background_started;
    std::call_once(tsan_background_started, [] { std::thread([] {}).join(); });
#endif
    std::tie(fds_, threads_) = settled_counts();
}

void LeakGuard::check() const {
    // A leak is growth; fewer than before means earlier work finished winding down.
    eventually([&] { return open_fd_count() <= fds_ && thread_count() <= threads_; }, hang_guard);
    EXPECT_LE(open_fd_count(), fds_) << "fds leaked; open now:\n" << describe_fds();
    EXPECT_LE(thread_count(), threads_) << "threads leaked";
}

std::string slurp(const std::string &path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string cli() {
    const char *root = std::getenv("TF_BUILD_ROOT");
    return std::string(root != nullptr ? root : ".") + "/tools/turtlefinder";
}

} // namespace tftest
