// SPDX-License-Identifier: Apache-2.0
// Hostile containers and containerised finders, on real engines.
//
// Hostile: a Docker container runs a process named `dockerd` (a static
// listener built here) that binds sockets, then swaps the directories (or the
// socket file) on their bind paths for symlinks aiming out of its root — at a
// host directory where the test listens on a real socket — by absolute paths,
// `..` chains, /proc magic links and a loop. The Finder must resolve every
// path inside the container's root: the host listener is never connected to,
// while the container's own sockets are probed and the discovery stays in time.
//
// Containerised finder: a Finder in its own mount and PID namespace, with
// the host's procfs bound elsewhere (Options::procfs_root), must see exactly
// the engines and container PIDs the host sees.
#include <gtest/gtest.h>

#include <turtlefinder/finder.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "containerd.hpp"
#include "lab.hpp"
#include "nested.hpp"
#include "procfs/procfs.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace lab = turtlefinder::lab;
using Clock = std::chrono::steady_clock;

long long ms_since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

using tftest::slurp;

// The hostile "engine": runs its arguments as steps, in order —
//   listen:PATH    bind and listen on a unix socket (parents created)
//   mv:FROM:TO     rename
//   ln:TARGET:LINK symlink
// then creates /ready and accepts forever, closing each connection at once
// and writing the number accepted so far to /accepts.
constexpr const char *hostile_source = R"SRC(
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void mkparents(const char *path) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; ++p)
        if (*p == '/') { *p = 0; mkdir(buf, 0755); *p = '/'; }
}

int main(int argc, char **argv) {
    struct pollfd fds[64];
    int n = 0;
    for (int i = 1; i < argc; ++i) {
        char *arg = argv[i], *a = strchr(arg, ':');
        if (!a) return 2;
        *a++ = 0;
        char *b = strchr(a, ':');
        if (b) *b++ = 0;
        if (!strcmp(arg, "listen")) {
            mkparents(a);
            int fd = socket(AF_UNIX, SOCK_STREAM, 0);
            struct sockaddr_un addr = {.sun_family = AF_UNIX};
            snprintf(addr.sun_path, sizeof addr.sun_path, "%s", a);
            if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) || listen(fd, 64)) { perror(a); return 1; }
            fds[n].fd = fd;
            fds[n++].events = POLLIN;
        } else if (!strcmp(arg, "mv")) {
            if (!b || rename(a, b)) { perror(a); return 1; }
        } else if (!strcmp(arg, "ln")) {
            if (!b) return 2;
            mkparents(b);
            if (symlink(a, b)) { perror(b); return 1; }
        } else {
            return 2;
        }
    }
    FILE *ready = fopen("/ready", "w");
    if (ready) fclose(ready);
    long accepted = 0;
    for (;;) {
        if (poll(fds, n, -1) < 0) continue;
        for (int i = 0; i < n; ++i) {
            if (!(fds[i].revents & POLLIN)) continue;
            int c = accept(fds[i].fd, NULL, NULL);
            if (c < 0) continue;
            close(c);
            ++accepted;
            FILE *f = fopen("/accepts.tmp", "w");
            if (f) { fprintf(f, "%ld\n", accepted); fclose(f); rename("/accepts.tmp", "/accepts"); }
        }
    }
}
)SRC";

// A listening socket on the host that counts the connections made to it
// (they wait in its backlog; counted by draining it without blocking), by
// the connecting process: other Finders on the machine (other test runs) may
// fall into the trap too, and only this process's count is the test's.
class HostListener {
public:
    explicit HostListener(const std::string &path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (fd_ < 0 || path.size() >= sizeof addr.sun_path) throw std::runtime_error("host listener: " + path);
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        if (::bind(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::listen(fd_, 128) != 0)
            throw std::runtime_error("host listener: cannot listen on " + path + ": " + std::strerror(errno));
    }
    ~HostListener() {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    HostListener(const HostListener &) = delete;
    HostListener &operator=(const HostListener &) = delete;
    // Connections made by this process.
    int accepted() {
        for (int c; (c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
            ucred peer{};
            socklen_t len = sizeof peer;
            if (::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0 && peer.pid == ::getpid())
                ++count_;
            else
                std::cout << "[ info ] the trap caught another process (PID " << peer.pid << ")\n";
            ::close(c);
        }
        return count_;
    }

private:
    std::string path_;
    int fd_ = -1;
    int count_ = 0;
};

class Hostile : public ::testing::Test {
protected:
    void SetUp() override {
        TF_REQUIRE_ROOT();
        for (const char *program : {"dockerd", "docker", "runc", "gcc"})
            if (!lab::which(program)) TF_SKIP_OR_FAIL(std::string(program) + " is not installed");
        lab_ = std::make_unique<lab::Lab>("hostile");
        dockerd_ = std::make_unique<lab::Dockerd>(*lab_);
    }
    void TearDown() override {
        dockerd_.reset();
        lab_.reset();
    }
    // Imports `tag`: busybox plus `source` compiled statically as /dockerd,
    // its command. Empty when no static program can be built here.
    std::string import_static_dockerd(const std::string &name, const char *source, const std::string &tag) {
        std::string rootfs = lab::busybox_rootfs(lab_->mkdir(name + "-root"));
        std::string src = lab_->write_file(name + ".c", source);
        auto cc = lab::run({"gcc", "-static", "-O2", "-o", rootfs + "/dockerd", src});
        if (!cc.ok()) return "cannot build a static program: " + cc.err;
        auto tar = lab::run({"tar", "-C", rootfs, "-cf", lab_->path(name + ".tar"), "."});
        if (!tar.ok()) throw std::runtime_error("tar: " + tar.err);
        dockerd_->docker_ok({"import", "-c", R"(CMD ["/dockerd"])", lab_->path(name + ".tar"), tag});
        return {};
    }
    std::unique_ptr<lab::Lab> lab_;
    std::unique_ptr<lab::Dockerd> dockerd_;
};

TEST_F(Hostile, SymlinksInAContainerNeverLeadTheFinderOutOfItsRoot) {
    const auto test_start = Clock::now();
    // The image: busybox plus the static hostile listener as /dockerd.
    if (auto why = import_static_dockerd("hostile", hostile_source, "tf-hostile:1"); !why.empty()) TF_SKIP_OR_FAIL(why);

    // Where a symlink followed by the kernel (from the host) would lead.
    const std::string host_dir = lab_->mkdir("h");
    HostListener host(host_dir + "/docker.sock");

    const std::string H = host_dir; // absolute, starts with '/'
    std::vector<std::string> steps{
        // The same path inside the container holds the container's own socket.
        "listen:" + H + "/docker.sock",
        "listen:/docker.sock",
        // Directories swapped for links after bind(): absolute with "..", absolute, relative climbing.
        "listen:/run/a/docker.sock",
        "mv:/run/a:/run/a.orig",
        "ln:/../../.." + H + ":/run/a",
        "listen:/run/b/docker.sock",
        "mv:/run/b:/run/b.orig",
        "ln:" + H + ":/run/b",
        "listen:/run/c/docker.sock",
        "mv:/run/c:/run/c.orig",
        "ln:../../../../../../../../../.." + H + ":/run/c",
        // The socket file itself swapped for a link.
        "listen:/run/d/docker.sock",
        "mv:/run/d/docker.sock:/run/d/real.sock",
        "ln:" + H + "/docker.sock:/run/d/docker.sock",
        // Through /proc magic links, which a kernel walk from the host resolves against the host.
        "listen:/run/e/docker.sock",
        "mv:/run/e:/run/e.orig",
        "ln:/proc/1/root" + H + ":/run/e",
        "listen:/run/f/docker.sock",
        "mv:/run/f:/run/f.orig",
        "ln:/proc/self/root" + H + ":/run/f",
        "listen:/run/g/docker.sock",
        "mv:/run/g:/run/g.orig",
        "ln:/proc/1/cwd/../../../../../.." + H + ":/run/g",
        // A loop.
        "listen:/run/l/docker.sock",
        "mv:/run/l:/run/l.orig",
        "ln:/run/l2:/run/l",
        "ln:/run/l:/run/l2",
    };
    std::vector<std::string> cmd{"/dockerd"};
    cmd.insert(cmd.end(), steps.begin(), steps.end());
    auto id = dockerd_->run_container({"--name", "hostile"}, "tf-hostile:1", cmd);
    int pid = std::stoi(dockerd_->docker_ok({"inspect", "-f", "{{.State.Pid}}", id}));
    ASSERT_GT(pid, 0);
    const std::string root = "/proc/" + std::to_string(pid) + "/root";
    ASSERT_TRUE(tftest::eventually([&] { return ::access((root + "/ready").c_str(), F_OK) == 0; }, 10s))
        << dockerd_->docker({"logs", id}).err;
    ASSERT_EQ(lab::comm_of(pid), "dockerd");

    // The resolver alone: every path stays below the container's root.
    for (const char *dir : {"a", "b", "c", "d", "e", "f", "g", "l"}) {
        std::string bind_path = std::string("/run/") + dir + "/docker.sock";
        auto resolved = tf::procfs::resolve_in_root(root, bind_path);
        if (resolved) {
            EXPECT_EQ(resolved->rfind(root + "/", 0), 0u) << bind_path << " → " << *resolved;
            EXPECT_NE(*resolved, H + "/docker.sock") << bind_path;
        }
        if (std::string(dir) <= "d") { // pure path games land on the container's own copy of H
            EXPECT_EQ(resolved.value_or("(none)"), root + H + "/docker.sock") << bind_path;
        }
        if (std::string(dir) == "l") {
            EXPECT_FALSE(resolved) << "a symlink loop must not resolve";
        }
    }

    tf::Options o;
    o.online_wait = 2s;
    o.probe_timeout = 500ms;
    { // gRPC's process-wide poller lives from first use until exit
        tf::Finder warm_up(o);
        warm_up.containers();
    }
    const int inside_before = std::atoi(slurp(root + "/accepts").c_str());
    tftest::LeakGuard leaks;
    {
        for (int round = 0; round < 2; ++round) {
            tf::Finder finder(o);
            auto start = Clock::now();
            finder.containers();
            auto took = ms_since(start);
            std::cout << "[ info ] discovery with the hostile container took " << took << " ms\n";
            EXPECT_LT(took, std::chrono::milliseconds(tftest::hang_guard).count())
                << "the hostile container hung the discovery";
            bool real = false;
            for (auto &e : finder.engines()) {
                EXPECT_NE(e->pid, pid) << "the hostile listener was taken for an engine: " << e->api;
                real |= e->type == "docker.com" && e->api.ends_with(dockerd_->socket());
            }
            EXPECT_TRUE(real) << "the real dockerd was not reported";
        }
    }
    leaks.check();
    EXPECT_EQ(host.accepted(), 0) << "the Finder connected to a host socket through a container's symlink";
    // The trap is armed: a plain connect() through /proc/PID/root, where the
    // kernel follows the container's absolute links against our root, lands
    // on the host listener.
    for (const char *naive : {"/run/b/docker.sock", "/run/d/docker.sock"}) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::string path = root + naive;
        ASSERT_LT(path.size(), sizeof addr.sun_path);
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0)
            << path << ": " << std::strerror(errno);
        ::close(fd);
    }
    EXPECT_EQ(host.accepted(), 2) << "the symlinks do not lead out of the container: the test proves nothing";
    // Not vacuous: the hostile process was probed, on its own sockets.
    const int inside_after = std::atoi(slurp(root + "/accepts").c_str());
    EXPECT_GT(inside_after, inside_before) << "the hostile container's sockets were never probed";
    std::cout << "[ info ] probes inside the container: " << inside_after - inside_before << "; test took "
              << ms_since(test_start) << " ms\n";
}

// --- a directory flipped under a watched engine ----------------------------

// A hostile "dockerd": answers just enough of the Docker API to be watched
// (/_ping, /version, /info, an empty container list) and closes every event
// stream after 50 ms, so the Finder reconnects all the time. Meanwhile a
// child flips the socket's directory between the real one and a symlink to
// HOST_DIR (a host path), in bursts, for SECONDS, then leaves the real one. Usage:
//   /dockerd SOCKET_DIR HOST_DIR SECONDS
// Writes /ready once listening and the number of connections to /accepts.
constexpr const char *flipper_source = R"SRC(
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void answer(int c, const char *status, const char *extra, const char *body) {
    char head[512];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\n%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     status, extra, strlen(body));
    if (write(c, head, n) < 0 || write(c, body, strlen(body)) < 0) _exit(0);
}

static void serve(int c) {
    char buf[8192];
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have == sizeof buf) _exit(0);
            ssize_t n = read(c, buf + have, sizeof buf - have);
            if (n <= 0) _exit(0);
            have += n;
        }
        char target[1024] = "";
        sscanf(buf, "GET %1023s", target);
        const char *t = target;
        if (t[0] == '/' && t[1] == 'v' && strchr(t + 1, '/')) t = strchr(t + 1, '/'); /* drop /vX.Y */
        if (!strncmp(t, "/_ping", 6)) {
            answer(c, "200 OK", "Api-Version: 1.41\r\n", "OK");
        } else if (!strncmp(t, "/version", 8)) {
            answer(c, "200 OK", "", "{\"Version\":\"20.10.0\",\"ApiVersion\":\"1.41\",\"MinAPIVersion\":\"1.12\"}");
        } else if (!strncmp(t, "/info", 5)) {
            answer(c, "200 OK", "", "{\"ID\":\"flipper\",\"Name\":\"flipper\"}");
        } else if (!strncmp(t, "/containers/json", 16)) {
            answer(c, "200 OK", "", "[]");
        } else if (!strncmp(t, "/events", 7)) {
            const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            if (write(c, head, strlen(head)) < 0) _exit(0);
            usleep(50000);
            _exit(0); /* the stream ends: the watcher must reconnect */
        } else {
            answer(c, "404 Not Found", "", "{}");
        }
        size_t used = (size_t)(end + 4 - buf);
        memmove(buf, buf + used, have - used);
        have -= used;
    }
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    const char *dir = argv[1], *host = argv[2];
    int seconds = atoi(argv[3]);
    char sock[256], real[256];
    snprintf(sock, sizeof sock, "%s/docker.sock", dir);
    snprintf(real, sizeof real, "%s.real", dir);
    mkdir("/run", 0755);
    if (mkdir(dir, 0755) != 0) { perror(dir); return 1; }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) || listen(fd, 64)) { perror(sock); return 1; }
    signal(SIGCHLD, SIG_IGN);
    if (fork() == 0) { /* the flipper: not a dockerd, holds no socket */
        close(fd);
        prctl(PR_SET_NAME, "flipper");
        time_t stop = time(NULL) + seconds;
        while (time(NULL) < stop) {
            /* Bursts of flips between spells of the real directory: flipping
               without pause leaves it in place so briefly that a fast machine's
               probes may never find the engine at all. */
            usleep(1000);
            for (int i = 0; i < 16; ++i) {
                if (rename(dir, real) != 0 || symlink(host, dir) != 0) _exit(1);
                if (unlink(dir) != 0 || rename(real, dir) != 0) _exit(1);
            }
        }
        _exit(0);
    }
    FILE *ready = fopen("/ready", "w");
    if (ready) fclose(ready);
    long accepted = 0;
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        ++accepted;
        FILE *f = fopen("/accepts.tmp", "w");
        if (f) { fprintf(f, "%ld\n", accepted); fclose(f); rename("/accepts.tmp", "/accepts"); }
        if (fork() == 0) {
            close(fd);
            prctl(PR_SET_NAME, "conn");
            serve(c);
            _exit(0);
        }
        close(c);
    }
}
)SRC";

// The issue's window: a minute of probes, lists and event-stream reconnects
// while the directory flips.
constexpr auto flip_window = 60s;

TEST_F(Hostile, AFlippingDirectoryNeverRedirectsAWatchedEngine) {
    const auto test_start = Clock::now();
    if (auto why = import_static_dockerd("flipper", flipper_source, "tf-flipper:1"); !why.empty()) TF_SKIP_OR_FAIL(why);

    // The trap: where the flipped link leads a path walked from the host.
    const std::string host_dir = lab_->mkdir("trap");
    HostListener trap(host_dir + "/docker.sock");
    // The flipper outlives the Finder's window, so the trap can be shown armed after it.
    const auto flip_seconds = std::chrono::duration_cast<std::chrono::seconds>(flip_window + tftest::hang_guard);
    auto id = dockerd_->run_container({"--name", "flipper"}, "tf-flipper:1",
                                      {"/dockerd", "/run/x", host_dir, std::to_string(flip_seconds.count())});
    int pid = std::stoi(dockerd_->docker_ok({"inspect", "-f", "{{.State.Pid}}", id}));
    ASSERT_GT(pid, 0);
    const std::string root = "/proc/" + std::to_string(pid) + "/root";
    ASSERT_TRUE(tftest::eventually([&] { return ::access((root + "/ready").c_str(), F_OK) == 0; }, 10s))
        << dockerd_->docker({"logs", id}).err;
    ASSERT_EQ(lab::comm_of(pid), "dockerd");
    // The socket's own directory is shown, under whichever of its two names
    // it had when the Finder opened it: the flipper renames it to x.real
    // while x is the link to the host. Never the host's path.
    const std::string shown_api = root + "/run/x/docker.sock";
    const std::string shown_api_renamed = root + "/run/x.real/docker.sock";

    tf::Options o;
    o.online_wait = 2s;
    o.probe_timeout = 500ms;
    o.backoff_min = 10ms;
    o.backoff_max = 50ms;
    { // gRPC's process-wide poller lives from first use until exit
        tf::Finder warm_up(o);
        warm_up.containers();
    }
    const int inside_before = std::atoi(slurp(root + "/accepts").c_str());
    int finders = 0, watched_rounds = 0;
    tftest::LeakGuard leaks;
    {
        const auto window_end = Clock::now() + flip_window;
        while (Clock::now() < window_end) { // a fresh Finder every few seconds: fresh probes too
            tf::Finder finder(o);
            ++finders;
            const auto round_end = std::min(Clock::now() + 5s, window_end);
            while (Clock::now() < round_end) {
                finder.containers();
                for (auto &e : finder.engines())
                    if (e->pid == pid) {
                        ++watched_rounds;
                        EXPECT_TRUE(e->api == shown_api || e->api == shown_api_renamed)
                            << "the engine is not shown at its socket's path: " << e->api;
                    }
                std::this_thread::sleep_for(100ms);
            }
        }
    }
    leaks.check();
    const int inside = std::atoi(slurp(root + "/accepts").c_str()) - inside_before;
    EXPECT_EQ(trap.accepted(), 0) << "a connection meant for the container's engine reached a host socket";
    EXPECT_GT(watched_rounds, 0) << "the flipping engine was never found: the test proves nothing";
    // Probes, lists and every event-stream reconnect went to the engine.
    EXPECT_GT(inside, 2 * finders) << "the engine's event stream was not reconnected";
    // The trap is armed: a path walked from the host during the flips lands on it.
    const std::string naive = root + "/run/x/docker.sock";
    bool armed = tftest::eventually(
        [&] {
            int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            std::memcpy(addr.sun_path, naive.c_str(), naive.size() + 1);
            ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
            ::close(fd);
            return trap.accepted() > 0;
        },
        tftest::hang_guard, 1ms);
    EXPECT_TRUE(armed) << "the flipped link never led out of the container: the test proves nothing";
    std::cout << "[ info ] " << finders << " Finders, " << watched_rounds << " discoveries watching the engine, "
              << inside << " connections to it; test took " << ms_since(test_start) << " ms\n";
}

// --- a Finder in its own mount and PID namespace ---------------------------

// What a Finder sees of the engines whose API lies below `lab_root` (other
// engines on the host may come and go meanwhile), one line per engine and
// per container, in a form that does not depend on where procfs is mounted.
std::set<std::string> summary(tf::Finder &finder, const std::string &procfs_root, const std::string &lab_root) {
    std::set<std::string> out;
    auto strip = [&](const std::string &api) {
        // "<procfs>/PID/root/path" → "path as the engine sees it"
        if (api.rfind(procfs_root + "/", 0) != 0) return api;
        auto rest = api.substr(procfs_root.size() + 1);
        auto root = rest.find("/root/");
        return root == std::string::npos ? api : rest.substr(root + 5);
    };
    auto ours = [&](const tf::Engine &e) { return strip(e.api).rfind(lab_root + "/", 0) == 0; };
    auto containers = finder.containers();
    for (auto &e : finder.engines())
        if (ours(*e)) out.insert("engine " + e->type + " pid=" + std::to_string(e->pid) + " api=" + strip(e->api));
    for (auto &c : containers)
        if (c.engine && ours(*c.engine))
            out.insert("container " + c.type + " " + c.id + " pid=" + std::to_string(c.pid) +
                       (c.paused ? " paused" : "") + " engine=" + std::to_string(c.engine ? c.engine->pid : 0));
    return out;
}

tf::Options inner_options() {
    tf::Options o;
    o.online_wait = 5s;
    o.probe_timeout = 1s;
    return o;
}

// Runs only when asked for by name, inside the namespaces set up below.
TEST(InsideNamespaces, DISABLED_ReportWhatTheFinderSees) {
    const char *procfs = std::getenv("TF_INNER_PROCFS");
    const char *out_path = std::getenv("TF_INNER_OUT");
    const char *lab_root = std::getenv("TF_INNER_LAB");
    ASSERT_TRUE(procfs && out_path && lab_root) << "run by FinderInItsOwnNamespaces only";
    std::ofstream out(out_path);
    out << "self-pid=" << ::getpid() << "\n";
    auto o = inner_options();
    o.procfs_root = procfs;
    tf::Finder finder(o);
    for (const auto &line : summary(finder, procfs, lab_root)) out << line << "\n";
    out << "end\n";
}

TEST_F(Hostile, FinderInItsOwnNamespacesSeesTheHostView) {
    if (!lab::which("containerd")) TF_SKIP_OR_FAIL("containerd is not installed");
    const auto test_start = Clock::now();
    dockerd_->import_busybox();
    auto id = dockerd_->run_container({"--name", "seen"});
    lab::ContainerdConfig config;
    config.cri = false;
    lab::Containerd containerd(*lab_, config);
    const std::string ns = "tf-hostile"; // runc state per namespace is host-wide: keep ours to this test
    containerd.run_task(ns, "seen-too");

    const std::string host_proc = lab_->mkdir("hostproc");
    const std::string out_path = lab_->path("inner.out");
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    ASSERT_GT(n, 0);
    exe[n] = '\0';
    std::vector<std::string> env_strings;
    for (char **e = environ; *e != nullptr; ++e) // the test runner's result file is ours, not the child's
        if (std::strncmp(*e, "GTEST_OUTPUT=", 13) != 0) env_strings.emplace_back(*e);
    env_strings.push_back("TF_INNER_LAB=" + lab_->root());
    env_strings.push_back("TF_INNER_PROCFS=" + host_proc);
    env_strings.push_back("TF_INNER_OUT=" + out_path);
    std::vector<char *> envp;
    for (auto &s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string filter = "--gtest_filter=InsideNamespaces.DISABLED_ReportWhatTheFinderSees";
    std::string disabled = "--gtest_also_run_disabled_tests";
    char *argv[] = {exe, filter.data(), disabled.data(), nullptr};

    // Child: private mount namespace, host /proc bound at host_proc, then a
    // new PID namespace whose first process mounts its own /proc and runs the
    // Finder. Only async-signal-safe calls between fork and exec.
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        if (::unshare(CLONE_NEWNS) != 0) ::_exit(10);
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(11);
        if (::mount("/proc", host_proc.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) ::_exit(12);
        if (::unshare(CLONE_NEWPID) != 0) ::_exit(13);
        pid_t inner = ::fork();
        if (inner < 0) ::_exit(14);
        if (inner == 0) {
            if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) ::_exit(15);
            ::execve(exe, argv, envp.data());
            ::_exit(16);
        }
        int status = 0;
        if (::waitpid(inner, &status, 0) != inner) ::_exit(17);
        ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 18);
    }
    int status = -1;
    bool ended = tftest::eventually([&] { return ::waitpid(child, &status, WNOHANG) == child; }, 60s, 20ms);
    if (!ended) {
        ::kill(child, SIGKILL);
        ::waitpid(child, &status, 0);
    }
    ASSERT_TRUE(ended) << "the containerised Finder did not finish";
    ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
    ASSERT_EQ(WEXITSTATUS(status), 0) << "inner run failed (10-18: namespace set-up step)\n" << slurp(out_path);

    std::istringstream report(slurp(out_path));
    std::string line;
    std::getline(report, line);
    EXPECT_EQ(line, "self-pid=1") << "the Finder did not run in a PID namespace of its own";
    std::set<std::string> inner;
    bool complete = false;
    while (std::getline(report, line)) {
        if (line == "end")
            complete = true;
        else
            inner.insert(line);
    }
    ASSERT_TRUE(complete) << "inner report cut short";

    { // gRPC's process-wide poller lives from first use until exit
        tf::Finder warm_up(inner_options());
        warm_up.containers();
    }
    std::set<std::string> host;
    tftest::LeakGuard leaks;
    {
        tf::Finder host_finder(inner_options());
        host = summary(host_finder, "/proc", lab_->root());
    }
    leaks.check();
    EXPECT_EQ(inner, host);
    // And it did see our engines and containers, with host PIDs.
    int docker_pid = std::stoi(dockerd_->docker_ok({"inspect", "-f", "{{.State.Pid}}", id}));
    bool docker_seen = false, task_seen = false;
    for (const auto &l : inner) {
        docker_seen |= l.find(" " + id + " pid=" + std::to_string(docker_pid) + " ") != std::string::npos;
        task_seen |= l.find(" " + ns + "/seen-too pid=" + std::to_string(containerd.task_pid(ns, "seen-too")) + " ") !=
                     std::string::npos;
    }
    EXPECT_TRUE(docker_seen) << "Docker container with its host PID missing from the inner view";
    EXPECT_TRUE(task_seen) << "containerd task with its host PID missing from the inner view";
    containerd.kill_task(ns, "seen-too");
    std::cout << "[ info ] test took " << ms_since(test_start) << " ms\n";
}

} // namespace
