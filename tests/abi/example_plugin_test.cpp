// SPDX-License-Identifier: Apache-2.0
// The out-of-tree example plugin (examples/plugin), built the way a third
// party would: its own Makefile, the system c++, and nothing on the include
// path but the SDK as installed (staged with `meson install --destdir`).
// Then loaded by the registry and pointed at a small exampled server.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "abi_helpers.hpp"
#include "plugins/engine_handle.hpp"
#include "plugins/registry.hpp"
#include "testing.hpp"

namespace {

using namespace turtlefinder::plugins;
using abitest::TempDir;

// Runs argv, returns its exit status (or -1), with stdout+stderr in `output`.
int run(const std::vector<std::string> &argv, std::string &output) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return -1;
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(pipefd[1], 1);
        ::dup2(pipefd[1], 2);
        std::vector<char *> args;
        for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    ::close(pipefd[1]);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) output.append(buf, static_cast<std::size_t>(n));
    ::close(pipefd[0]);
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A listening unix socket served by one thread with a fixed behaviour.
class Server {
public:
    enum class Mode { exampled, garbage, silent };
    Server(const std::string &path, Mode mode) : mode_(mode) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        path.copy(addr.sun_path, sizeof addr.sun_path - 1);
        if (::bind(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::listen(fd_, 8) != 0)
            throw std::runtime_error("cannot listen on " + path);
        thread_ = std::thread([this] { serve(); });
    }
    ~Server() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR); // wakes accept()
        thread_.join();
        ::close(fd_);
    }

private:
    void serve() {
        while (!stop_) {
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            handle(c);
            ::close(c);
        }
    }
    void handle(int c) {
        std::string in;
        char buf[256];
        while (true) {
            auto nl = in.find('\n');
            if (nl != std::string::npos) {
                std::string req = in.substr(0, nl);
                in.erase(0, nl + 1);
                std::string answer;
                if (mode_ == Mode::garbage)
                    answer = "HTTP/1.1 400 Bad Request\r\n\r\n";
                else if (mode_ == Mode::silent)
                    continue;
                else if (req == "PING")
                    answer = "EXAMPLED 0.7\n";
                else if (req == "LIST")
                    answer = "alpha 11 web\nbeta 12 db\n.\n";
                ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
                continue;
            }
            // Bounded read so that a silent connection ends when the test does.
            pollfd p{c, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) {
                if (stop_) return;
                continue;
            }
            ssize_t n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0) return;
            in.append(buf, static_cast<std::size_t>(n));
        }
    }

    Mode mode_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

TEST(ExamplePlugin, BuildsOutOfTreeAndFindsExampled) {
    const char *source_root = std::getenv("TF_SOURCE_ROOT");
    const char *build_root = std::getenv("TF_BUILD_ROOT");
    if (source_root == nullptr || build_root == nullptr)
        TF_SKIP_OR_FAIL("TF_SOURCE_ROOT or TF_BUILD_ROOT not set (run through meson test)");
    if (::access("/usr/bin/make", X_OK) != 0 && ::access("/bin/make", X_OK) != 0) TF_SKIP_OR_FAIL("make not installed");
    TempDir dir;
    // The SDK as installed (headers and pkg-config files), staged in `dir`.
    std::string output;
    int rc = run(
        {"meson", "install", "-C", build_root, "--destdir", dir / "root", "--no-rebuild", "--quiet", "--tags", "devel"},
        output);
    ASSERT_EQ(rc, 0) << output;
    std::string pc_dir;
    for (const auto &e : std::filesystem::recursive_directory_iterator(dir / "root"))
        if (e.path().filename() == "turtlefinder-plugin.pc") pc_dir = e.path().parent_path().string();
    ASSERT_FALSE(pc_dir.empty()) << "turtlefinder-plugin.pc not installed";
    // Built as README tells plugin authors: the example's Makefile, pkg-config.
    const std::string plugin = dir / "example.so";
    output.clear();
    rc = run({"env", "PKG_CONFIG_PATH=" + pc_dir, "PKG_CONFIG_SYSROOT_DIR=" + (dir / "root"), "make", "-s", "-C",
              std::string(source_root) + "/examples/plugin", "OUT=" + plugin},
             output);
    ASSERT_EQ(rc, 0) << output;

    tftest::LeakGuard guard;
    {
        Registry r;
        ASSERT_TRUE(r.load_file(plugin)) << (r.statuses().empty() ? "" : r.statuses().back().reason);
        auto p = r.detector_for("exampled");
        ASSERT_TRUE(p);
        EXPECT_EQ(p->name(), "example");

        Server good(dir / "exampled.sock", Server::Mode::exampled);
        Server garbage(dir / "garbage.sock", Server::Mode::garbage);
        Server silent(dir / "silent.sock", Server::Mode::silent);
        ProbeInput in;
        in.pid = 1234;
        in.process_name = "exampled";
        in.timeout = std::chrono::milliseconds(300);
        in.api_paths = {dir / "silent.sock", dir / "garbage.sock", dir / "exampled.sock", dir / "absent.sock"};
        auto start = std::chrono::steady_clock::now();
        auto out = p->probe(in);
        auto took = std::chrono::steady_clock::now() - start;
        ASSERT_TRUE(out.result.ok()) << out.result.message;
        ASSERT_EQ(out.engines.size(), 1u) << "only the socket answering like exampled is an engine";
        EXPECT_LT(took, tftest::hang_guard) << "a silent socket must not hang the probe";
        auto &e = *out.engines[0];
        EXPECT_EQ(e.identity().version, "0.7");
        EXPECT_EQ(e.identity().api, dir / "exampled.sock");
        EXPECT_EQ(e.identity().pid, 1234);

        std::vector<ReportedContainer> got;
        auto listed = e.list([&](ReportedContainer &&c) { got.push_back(std::move(c)); });
        ASSERT_TRUE(listed.ok()) << listed.message;
        ASSERT_EQ(got.size(), 2u);
        EXPECT_EQ(got[0].id, "alpha");
        EXPECT_EQ(got[0].pid, 11);
        EXPECT_EQ(got[1].name, "db");
        EngineHandle::WatchHandler h{[] { return true; }, [](turtlefinder::EventKind, const std::string &,
                                                             const ReportedContainer *) { return true; }};
        EXPECT_EQ(e.watch(h).code, -ENOTSUP);
    }
    guard.check();
}

} // namespace
