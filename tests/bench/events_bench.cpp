// SPDX-License-Identifier: Apache-2.0
// Figures 7-8: the process table kept current by the kernel's process events.
//
//   6  warm Finder::containers() with nothing changed at P processes, against
//      one floor scan at the same P (and a Finder scanning on every call);
//      and after K processes were replaced (K exits, K starts) before each
//      call: its cost must grow with K, not with P
//   7  a new dockerd exec'd → online in a subscribed Finder (engine_found,
//      no containers() call), against the dockerd's own first answer to
//      GET /_ping, polled from its exec on
//
// The kernel sends process events only to listeners in the initial PID
// namespace, so unlike tf-bench-engines this runs in the host's: a Finder
// here sees the host's other engines too. It loads the Docker plugin only,
// and figure 8 looks at its own dockerd only.
//
// usage: tf-bench-events --out FILE [--reps N] [--sizes 1000,10000]
//                        [--changes 10,100] [--calls N] [--starts N]
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <iostream>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include <turtlefinder/finder.hpp>

#include "bench_common.hpp"
#include "lab.hpp"

extern char **environ;

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace tb = turtlefinder::bench;
namespace lab = turtlefinder::lab;
using Clock = std::chrono::steady_clock;

struct Args {
    std::string out;
    int reps = 5;
    std::vector<std::size_t> sizes = {1000, 10000};
    std::vector<std::size_t> changes = {10, 100};
    int calls = 20; // per repetition, for the figures after K changes
    int starts = 20;
};

Args parse(int argc, char **argv) {
    Args a;
    tb::Flags()
        .text("--out", a.out)
        .count("--reps", a.reps)
        .counts("--sizes", a.sizes)
        .counts("--changes", a.changes)
        .count("--calls", a.calls)
        .count("--starts", a.starts)
        .parse(argc, argv);
    if (a.out.empty()) throw std::runtime_error("--out FILE is required");
    return a;
}

tf::Options docker_only(bool events) {
    tf::Options o;
    o.plugin_dirs = {TF_BENCH_MOBY_DIR};
    o.default_plugin_dirs = false;
    o.process_events = events;
    return o;
}

// Seconds on the clock the in-process figures use (tb::use_wall_clock()).
double bench_clock() {
    if (tb::use_wall_clock()) return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

std::vector<double> to_ms(const std::vector<double> &seconds) {
    std::vector<double> out;
    for (double s : seconds) out.push_back(s * 1e3);
    return out;
}

// Figure 7, nothing changed: interleaved Google Benchmark runs.
void nothing_changed(const Args &args, tf::Finder &events, tf::Finder &scanning, tb::IdleProcesses &idle,
                     std::vector<tb::Row> &rows) {
    for (std::size_t target : args.sizes) {
        std::size_t p = idle.fill_to(target);
        // The forks of the fill may have overflowed the socket: settle first.
        for (int i = 0; i < 3; ++i) {
            std::this_thread::sleep_for(100ms);
            events.containers();
            scanning.containers();
        }
        const auto before = events.stats();
        std::cerr << fmt::format("bench: warm containers(), nothing changed, at P={}\n", p);
        auto samples = tb::run_interleaved(
            {
                {"events",
                 [&](benchmark::State &state) {
                     for (auto _ : state) benchmark::DoNotOptimize(events.containers().data());
                 }},
                {"floor",
                 [&](benchmark::State &state) {
                     for (auto _ : state) benchmark::DoNotOptimize(tb::floor_scan().data());
                 }},
                {"scanning",
                 [&](benchmark::State &state) {
                     for (auto _ : state) benchmark::DoNotOptimize(scanning.containers().data());
                 }},
            },
            args.reps, 0.05);
        const auto after = events.stats();
        std::string note =
            fmt::format("{} calls, {} rescans (lost events) meanwhile", after.discoveries - before.discoveries,
                        after.process_scans - before.process_scans);
        auto value = to_ms(samples["events"]), floor = to_ms(samples["floor"]), scan = to_ms(samples["scanning"]);
        rows.push_back({"7 warm containers(), nothing changed", fmt::format("P={}", p), tb::time_unit(), value, floor,
                        "one floor scan", "ratio<=0.02", note});
        rows.push_back({"7 warm containers(), nothing changed", fmt::format("P={}", p), tb::time_unit(), value, scan,
                        "a Finder scanning on every call", "info", ""});
    }
}

// Processes replaced between calls: `sleep` children started with
// posix_spawn (vfork: unlike fork, it leaves this process's pages shared,
// so the measured call pays no copy-on-write faults the Finder did not
// cause), killed and reaped K at a time.
class Replaced {
public:
    explicit Replaced(std::size_t k) {
        for (std::size_t i = 0; i < k; ++i) start();
    }
    ~Replaced() {
        for (pid_t pid : pids_) ::kill(pid, SIGKILL);
        for (pid_t pid : pids_) ::waitpid(pid, nullptr, 0);
    }
    Replaced(const Replaced &) = delete;
    Replaced &operator=(const Replaced &) = delete;
    // K exits, then K starts.
    void replace() {
        std::size_t k = pids_.size();
        for (pid_t pid : pids_) ::kill(pid, SIGKILL);
        for (pid_t pid : pids_) ::waitpid(pid, nullptr, 0);
        pids_.clear();
        for (std::size_t i = 0; i < k; ++i) start();
    }

private:
    void start() {
        char program[] = "/bin/sleep", time[] = "3600";
        char *argv[] = {program, time, nullptr};
        pid_t pid = -1;
        if (::posix_spawn(&pid, program, nullptr, nullptr, argv, environ) != 0)
            throw std::runtime_error("cannot start /bin/sleep");
        pids_.push_back(pid);
    }
    std::vector<pid_t> pids_;
};

// Figure 7 after K changes: K processes replaced (killed and reaped, then K
// new ones started) before each timed call, off the clock; a floor scan
// timed after the same change, alternating, for context.
void after_changes(const Args &args, tf::Finder &events, tb::IdleProcesses &idle, std::vector<tb::Row> &rows,
                   std::map<std::pair<std::size_t, std::size_t>, std::vector<double>> &by_k_p) {
    for (std::size_t target : args.sizes) {
        for (std::size_t k : args.changes) {
            std::size_t p = idle.fill_to(target - std::min(target, k));
            Replaced replaced(k);
            p += k;
            std::cerr << fmt::format("bench: warm containers() after K={} changes at P={}\n", k, p);
            std::this_thread::sleep_for(100ms);
            events.containers();
            std::vector<double> value, floor;
            const auto before = events.stats();
            for (int r = 0; r < args.reps; ++r) {
                std::vector<double> calls, floors;
                for (int i = 0; i < args.calls; ++i) {
                    replaced.replace();
                    double t0 = bench_clock();
                    benchmark::DoNotOptimize(events.containers().data());
                    calls.push_back((bench_clock() - t0) * 1e3);
                    t0 = bench_clock();
                    benchmark::DoNotOptimize(tb::floor_scan().data());
                    floors.push_back((bench_clock() - t0) * 1e3);
                }
                value.push_back(tb::median(calls));
                floor.push_back(tb::median(floors));
            }
            const auto after = events.stats();
            by_k_p[{k, target}] = value;
            rows.push_back({"7 warm containers() after K changes", fmt::format("K={} P={}", k, p), tb::time_unit(),
                            value, floor, "one floor scan", "info",
                            fmt::format("K exits + K starts per call; {} rescans (lost events)",
                                        after.process_scans - before.process_scans)});
        }
    }
    if (args.sizes.size() < 2) return;
    for (std::size_t k : args.changes) {
        std::size_t lo = args.sizes.front(), hi = args.sizes.back();
        rows.push_back({"7 growth with P after K changes", fmt::format("K={} P {}->{}", k, lo, hi), tb::time_unit(),
                        by_k_p[{k, hi}], by_k_p[{k, lo}], fmt::format("the same at P={}", lo), "ratio<=1.5",
                        "cost grows with K, not with P"});
    }
}

// True once GET /_ping on `socket` answers 200.
bool pings(const std::string &socket) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, socket.c_str(), std::min(socket.size() + 1, sizeof addr.sun_path - 1));
    bool ok = false;
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) {
        const std::string request = "GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n";
        if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
            std::string answer;
            char buffer[512];
            pollfd p{fd, POLLIN, 0};
            while (answer.find("\r\n") == std::string::npos && ::poll(&p, 1, 5000) == 1) {
                ssize_t n = ::read(fd, buffer, sizeof buffer);
                if (n <= 0) break;
                answer.append(buffer, static_cast<std::size_t>(n));
            }
            ok = answer.starts_with("HTTP/1.1 200");
        }
    }
    ::close(fd);
    return ok;
}

double p99(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(0.99 * static_cast<double>(v.size())))];
}

// Figure 8: exec → engine_found in a subscribed Finder, against exec → the
// engine's first answer; both from just before the lab starts dockerd.
void new_engine(const Args &args, std::vector<tb::Row> &rows, std::vector<std::string> &notes) {
    lab::Lab lab("evbench");
    tf::Finder finder(docker_only(true));
    finder.containers();
    std::mutex mu;
    std::map<std::string, Clock::time_point> found; // by API
    int handle = finder.subscribe([&](const tf::Event &e) {
        if (e.kind != tf::EventKind::engine_found || !e.engine) return;
        std::lock_guard lock(mu);
        found.emplace(e.engine->api, Clock::now());
    });
    std::vector<double> online, answered;
    const auto discoveries_before = finder.stats().discoveries;
    for (int i = 0; i < args.starts; ++i) {
        lab::DockerdConfig config;
        config.dir_name = "e" + std::to_string(i);
        const std::string socket = lab.path(config.dir_name + "/docker.sock");
        std::atomic<bool> stop{false};
        std::optional<Clock::time_point> answer;
        const auto t0 = Clock::now();
        std::thread pinger([&] {
            while (!stop) {
                if (pings(socket)) {
                    answer = Clock::now();
                    return;
                }
                std::this_thread::sleep_for(1ms);
            }
        });
        auto dockerd = std::make_unique<lab::Dockerd>(lab, config);
        if (dockerd->socket() != socket) {
            stop = true;
            pinger.join();
            throw std::runtime_error("the lab's dockerd listens at " + dockerd->socket() + ", not " + socket);
        }
        std::optional<Clock::time_point> seen;
        for (auto deadline = Clock::now() + 30s; Clock::now() < deadline && !seen;) {
            {
                std::lock_guard lock(mu);
                for (const auto &[api, t] : found)
                    if (api.ends_with(socket)) seen = t;
            }
            if (!seen) std::this_thread::sleep_for(1ms);
        }
        stop = true;
        pinger.join();
        if (!seen || !answer) throw std::runtime_error("dockerd " + std::to_string(i) + " was not found in 30 s");
        online.push_back(std::chrono::duration<double, std::milli>(*seen - t0).count());
        answered.push_back(std::chrono::duration<double, std::milli>(*answer - t0).count());
        std::cerr << fmt::format("bench: dockerd {} answered after {:.0f} ms, online in the Finder after {:.0f} ms\n",
                                 i, answered.back(), online.back());
        dockerd.reset();
    }
    finder.unsubscribe(handle);
    std::vector<double> beyond;
    for (std::size_t i = 0; i < online.size(); ++i) beyond.push_back(online[i] - answered[i]);
    rows.push_back({"8 new engine exec -> online, subscribed", fmt::format("dockerd, {} starts", args.starts),
                    "ms wall", online, answered, "exec -> the engine's first /_ping answer", "delta<50",
                    "no containers() call: found on process events"});
    rows.push_back({"8 new engine exec -> online, subscribed",
                    "p99 beyond the first answer",
                    "ms wall",
                    {p99(beyond)},
                    {},
                    "",
                    "info",
                    ""});
    notes.push_back(fmt::format("figure 8: {} discoveries on process events for {} dockerd starts",
                                finder.stats().discoveries - discoveries_before, args.starts));
}

} // namespace

int main(int argc, char **argv) {
    benchmark::Initialize(&argc, argv); // takes --benchmark_* flags, leaves ours
    try {
        Args args = parse(argc, argv);
        std::vector<tb::Row> rows;
        std::vector<std::string> notes;
        {
            tf::Finder events(docker_only(true));
            tf::Finder scanning(docker_only(false));
            events.containers();
            if (events.stats().process_scans == 0 || (events.containers(), events.stats().process_scans != 1))
                throw std::runtime_error("the Finder does not keep its process table from process events "
                                         "(run as root, in the initial PID namespace)");
            tb::IdleProcesses idle;
            nothing_changed(args, events, scanning, idle, rows);
            std::map<std::pair<std::size_t, std::size_t>, std::vector<double>> by_k_p;
            after_changes(args, events, idle, rows, by_k_p);
            idle.resize(0);
        }
        new_engine(args, rows, notes);
        tb::append_rows(args.out, rows);
        for (const auto &n : notes) tb::append_note(args.out, n);
        return 0;
    } catch (const std::exception &e) {
        std::cerr << "tf-bench-events: " << e.what() << '\n';
        return 1;
    }
}
