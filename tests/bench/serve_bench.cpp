// SPDX-License-Identifier: Apache-2.0
// Figure 6: the node service under load, and the CLI answered by it.
//
//   6 load    `turtlefinder serve` over a lab dockerd while 200 clients poll
//             /v1/containers and 50 hold /v1/events streams for --seconds,
//             containers starting and stopping meanwhile: failed requests,
//             streams that broke, the service's threads and RSS at the start
//             of the load and at its end (flat is the goal), and requests
//             served.
//   6 CLI     one-shot `turtlefinder --json` answered by the service, vs
//             discovering by itself, vs `docker ps`: wall time and peak RSS.
//
// Not a test: numbers are reported, the goals judged by report.py.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <spawn.h>
#include <sstream>
#include <thread>

#include "bench_common.hpp"
#include "lab.hpp"

extern char **environ;

namespace {

using namespace std::chrono_literals;
namespace lab = turtlefinder::lab;
namespace bench = turtlefinder::bench;
using Clock = std::chrono::steady_clock;

int connect_unix(const std::string &path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// One GET with Connection: close; true when answered 200 with the whole body.
bool poll_once(const std::string &socket, const std::string &path) {
    int fd = connect_unix(socket);
    if (fd < 0) return false;
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    std::string out;
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
        char buf[65536];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    auto head_end = out.find("\r\n\r\n");
    if (out.rfind("HTTP/1.1 200 ", 0) != 0 || head_end == std::string::npos) return false;
    auto cl = out.find("Content-Length: ");
    if (cl == std::string::npos || cl > head_end) return false;
    return std::stoul(out.substr(cl + 16)) == out.size() - head_end - 4;
}

struct Status {
    double rss_mb = 0, hwm_mb = 0;
    int threads = 0;
};

Status status_of(pid_t pid) {
    Status s;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        auto value = [&] { return std::stod(line.substr(line.find(':') + 1)); };
        if (line.rfind("VmRSS:", 0) == 0) s.rss_mb = value() / 1024.0;
        if (line.rfind("VmHWM:", 0) == 0) s.hwm_mb = value() / 1024.0;
        if (line.rfind("Threads:", 0) == 0) s.threads = static_cast<int>(value());
    }
    return s;
}

struct Measured {
    double wall_ms = 0, max_rss_mb = 0;
    int status = -1;
};

Measured measure(const std::vector<std::string> &args) {
    std::vector<char *> argv;
    for (const auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    auto t0 = Clock::now();
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
    int status = 0;
    rusage usage{};
    ::wait4(pid, &status, 0, &usage);
    Measured m;
    m.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    m.max_rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;
    m.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return m;
}

int bench_main(int argc, char **argv) {
    std::string out_path = "serve.jsonl";
    int seconds = 60, pollers = 200, subscribers = 50, reps = 10;
    bench::Flags()
        .text("--out", out_path)
        .count("--seconds", seconds)
        .count("--pollers", pollers)
        .count("--subscribers", subscribers)
        .count("--reps", reps)
        .parse(argc, argv);
    lab::Lab lab("bserve");
    lab::Dockerd dockerd(lab);
    dockerd.import_busybox();
    for (int i = 0; i < 20; ++i) dockerd.run_container({"--name", "b" + std::to_string(i)});

    std::string socket = lab.path("tf.sock");
    lab::Process service(lab::SpawnOptions{
        {TF_BENCH_CLI, "serve", "--socket", socket, "--max-connections", "2048", "--max-sse-subscribers", "1024"},
        {},
        lab.path("serve.log"),
        {}});
    auto ready_until = Clock::now() + 60s;
    while (!poll_once(socket, "/readyz")) {
        if (Clock::now() > ready_until) throw std::runtime_error("serve did not become ready: " + service.log_tail());
        std::this_thread::sleep_for(50ms);
    }

    // ---- load ----
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> served{0}, failed{0}, broken_streams{0}, events{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < subscribers; ++i)
        threads.emplace_back([&] {
            int fd = connect_unix(socket);
            if (fd < 0) {
                ++broken_streams;
                return;
            }
            timeval tv{1, 0}; // to look at `stop` now and then
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            std::string req = "GET /v1/events HTTP/1.1\r\nHost: bench\r\n\r\n";
            (void)!::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
            std::string head;
            char buf[65536];
            while (!stop) {
                ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                    ++broken_streams;
                    break;
                }
                if (n < 0) continue;
                std::string_view chunk(buf, static_cast<std::size_t>(n));
                if (head.size() < 12) head.append(chunk.substr(0, 12));
                for (std::size_t at = chunk.find("\nid: "); at != std::string_view::npos;
                     at = chunk.find("\nid: ", at + 1))
                    ++events;
            }
            if (head.rfind("HTTP/1.1 200", 0) != 0) ++broken_streams;
            ::close(fd);
        });
    std::this_thread::sleep_for(2s); // the streams are open: the load's start
    Status start = status_of(service.pid());
    for (int i = 0; i < pollers; ++i)
        threads.emplace_back([&] {
            while (!stop) (poll_once(socket, "/v1/containers") ? served : failed)++;
        });
    std::vector<double> rss_samples, thread_samples;
    auto end = Clock::now() + std::chrono::seconds(seconds);
    int churn = 0;
    while (Clock::now() < end) {
        // Changes for the streams to carry.
        std::string name = "churn" + std::to_string(churn++ % 5);
        dockerd.docker({"rm", "-f", name});
        dockerd.run_container({"--name", name});
        Status s = status_of(service.pid());
        rss_samples.push_back(s.rss_mb);
        thread_samples.push_back(s.threads);
        std::this_thread::sleep_for(1s);
    }
    Status last = status_of(service.pid());
    stop = true;
    for (auto &t : threads) t.join();

    std::string param = std::to_string(pollers) + " pollers + " + std::to_string(subscribers) + " SSE, " +
                        std::to_string(seconds) + " s, 20+ Docker containers";
    std::vector<bench::Row> rows = {
        {"6 serve load: failed requests",
         param,
         "requests",
         {static_cast<double>(failed.load())},
         {},
         "-",
         "value<1",
         std::to_string(served.load()) + " served"},
        {"6 serve load: broken event streams",
         param,
         "streams",
         {static_cast<double>(broken_streams.load())},
         {},
         "-",
         "value<1",
         std::to_string(events.load()) + " events received in all"},
        {"6 serve load: threads",
         param,
         "threads",
         {static_cast<double>(last.threads)},
         {static_cast<double>(start.threads)},
         "at the load's start",
         "ratio<=1",
         "max " + std::to_string(static_cast<int>(*std::max_element(thread_samples.begin(), thread_samples.end())))},
        {"6 serve load: RSS",
         param,
         "MB",
         {last.rss_mb},
         {start.rss_mb},
         "at the load's start",
         "ratio<=1.2",
         "peak (VmHWM) " + std::to_string(static_cast<int>(last.hwm_mb)) + " MB"},
    };

    // ---- the one-shot CLI through the service ----
    std::vector<double> via_wall, via_rss, own_wall, own_rss, ps_wall, ps_rss;
    std::string docker = lab::find_program("docker");
    for (int i = 0; i < reps; ++i) {
        auto via = measure({TF_BENCH_CLI, "--json", "--service-socket", socket});
        auto own = measure({TF_BENCH_CLI, "--json", "--no-service"});
        auto ps = measure({docker, "-H", dockerd.host(), "ps", "--format", "json"});
        if (via.status != 0 || own.status != 0 || ps.status != 0) throw std::runtime_error("a one-shot run failed");
        via_wall.push_back(via.wall_ms);
        via_rss.push_back(via.max_rss_mb);
        own_wall.push_back(own.wall_ms);
        own_rss.push_back(own.max_rss_mb);
        ps_wall.push_back(ps.wall_ms);
        ps_rss.push_back(ps.max_rss_mb);
    }
    std::string cli_param = "this host's engines + the lab's dockerd";
    rows.push_back({"6 one-shot CLI via the service, wall", cli_param, "ms", via_wall, own_wall, "discovering itself",
                    "info", ""});
    rows.push_back({"6 one-shot CLI via the service, wall", cli_param, "ms", via_wall, ps_wall,
                    "docker ps --format json", "info", ""});
    rows.push_back({"6 one-shot CLI via the service, peak RSS", cli_param, "MB", via_rss, own_rss, "discovering itself",
                    "info", ""});
    rows.push_back({"6 one-shot CLI via the service, peak RSS", cli_param, "MB", via_rss, ps_rss,
                    "docker ps --format json", "info", ""});
    bench::append_rows(out_path, rows);
    service.stop(20s);
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    try {
        return bench_main(argc, argv);
    } catch (const std::exception &e) {
        std::cerr << "tf-bench-serve: " << e.what() << '\n';
        return 1;
    }
}
