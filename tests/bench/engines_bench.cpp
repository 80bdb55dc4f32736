// SPDX-License-Identifier: Apache-2.0
// Figures 2-5 against real engines this bench starts itself: one containerd
// (native + CRI) that also serves a dockerd, filled with C containers split
// between Docker, containerd and CRI pods.
//
//   2  warm Finder::containers() at C x P, against one floor scan at the same P
//      and against copying the returned container vector
//   3  the one-shot CLI (`turtlefinder --json`) against `docker ps` and
//      `docker inspect $(docker ps -q)`: wall time and peak RSS (wait4)
//   4  event latency: start through the engine's API until visible in
//      containers() and in a subscribe() callback, against the engine's own
//      event emission (raw /events stream, `ctr events`)
//   5  footprint: RSS and threads of a watching CLI against an idle Finder;
//      with --podman-host, instead of all the above: an idle Finder on a host
//      where only podman runs (no dockerd, no containerd)
//
// Run it as PID 1 of its own PID and mount namespace (tools/bench.sh does:
// `unshare --pid --fork --mount-proc`): a Finder sees only this bench's
// engines then, and everything left over dies with the namespace. As PID 1
// it forks the bench and reaps orphans (engine shims) until the bench ends.
//
// usage: tf-bench-engines --out FILE [--reps N] [--stages 10,100,500]
//                         [--sizes 1000,5000] [--cli-reps N] [--starts N]
//                         [--footprint-reps N] [--pairs N] [--podman-host]
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include <turtlefinder/clients/docker/client.hpp>
#include <turtlefinder/finder.hpp>

#include "bench_common.hpp"
#include "containerd.hpp"
#include "cri_admin.hpp"
#include "podman.hpp"
#include "procfs/procfs.hpp"
#include "lab.hpp"
#include "log.hpp"

extern char **environ;

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace tb = turtlefinder::bench;
namespace lab = turtlefinder::lab;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0, Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(t - t0).count();
}

struct Args {
    std::string out;
    int reps = 5;
    std::vector<std::size_t> stages = {10, 100, 500};
    std::vector<std::size_t> sizes = {1000, 5000};
    int cli_reps = 7;
    int starts = 50;
    int footprint_reps = 3;
    int pairs = 60; // per repetition, for the growth with C
    bool podman_host = false; // only figure 5 on a host where only podman runs
};

Args parse(int argc, char **argv) {
    Args a;
    tb::Flags()
        .text("--out", a.out)
        .count("--reps", a.reps)
        .counts("--stages", a.stages)
        .counts("--sizes", a.sizes)
        .count("--cli-reps", a.cli_reps)
        .count("--starts", a.starts)
        .count("--footprint-reps", a.footprint_reps)
        .count("--pairs", a.pairs)
        .flag("--podman-host", a.podman_host)
        .parse(argc, argv);
    if (a.out.empty()) throw std::runtime_error("--out FILE is required");
    return a;
}

// ---- child processes ---------------------------------------------------------

struct Spawned {
    pid_t pid = -1;
    int out_fd = -1; // read end of the child's stdout when piped
};

// posix_spawn (no page-table copy of this big process); stdout to a pipe or
// /dev/null, stderr to /dev/null.
Spawned spawn(const std::vector<std::string> &args, const std::map<std::string, std::string> &env, bool pipe_out) {
    std::vector<std::string> env_strings;
    std::set<std::string> overridden;
    for (const auto &[k, v] : env) {
        env_strings.push_back(k + "=" + v);
        overridden.insert(k);
    }
    for (char **e = environ; *e != nullptr; ++e) {
        std::string entry = *e;
        if (!overridden.contains(entry.substr(0, entry.find('=')))) env_strings.push_back(entry);
    }
    std::vector<char *> envp, argv;
    for (auto &s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> args_copy = args;
    for (auto &s : args_copy) argv.push_back(s.data());
    argv.push_back(nullptr);

    int fds[2] = {-1, -1};
    if (pipe_out && ::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (pipe_out)
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    else
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    Spawned s;
    int rc = ::posix_spawnp(&s.pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (pipe_out) ::close(fds[1]);
    if (rc != 0) {
        if (pipe_out) ::close(fds[0]);
        throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
    }
    s.out_fd = pipe_out ? fds[0] : -1;
    return s;
}

struct Measured {
    double wall_ms = 0;
    double cpu_ms = 0; // user + system, of the child and its reaped descendants
    double max_rss_mb = 0;
    int status = -1;
};

// One fresh process to completion: wall time and peak RSS of it and its
// descendants (wait4 reports the maximum over the child and the children it
// reaped). Killed after `timeout`.
Measured measure(const std::vector<std::string> &args, const std::map<std::string, std::string> &env,
                 std::chrono::milliseconds timeout = 60s) {
    auto t0 = Clock::now();
    Spawned s = spawn(args, env, false);
    int status = 0;
    rusage usage{};
    auto deadline = t0 + timeout;
    while (true) {
        pid_t r = ::wait4(s.pid, &status, WNOHANG, &usage);
        if (r == s.pid) break;
        if (Clock::now() > deadline) {
            ::kill(s.pid, SIGKILL);
            ::wait4(s.pid, &status, 0, &usage);
            throw std::runtime_error(args[0] + " timed out");
        }
        // wait4 cannot block with a deadline; a short poll keeps the wall
        // time accurate to 0.2 ms, small against what is measured.
        std::this_thread::sleep_for(200us);
    }
    Measured m;
    m.wall_ms = ms_since(t0, Clock::now());
    m.max_rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;
    auto ms = [](const timeval &t) {
        return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
    };
    m.cpu_ms = ms(usage.ru_utime) + ms(usage.ru_stime);
    m.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return m;
}

// Reads the whole stdout of a command (for checks, not measured).
std::string capture(const std::vector<std::string> &args, const std::map<std::string, std::string> &env) {
    Spawned s = spawn(args, env, true);
    std::string out;
    char buffer[65536];
    while (true) {
        ssize_t n = ::read(s.out_fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(s.out_fd);
    int status = 0;
    ::waitpid(s.pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(args[0] + " failed");
    return out;
}

// VmRSS (MB), its split and Threads of a process. PSS charges each shared
// page to the processes mapping it in equal parts: what the process adds to
// a host whose other processes already map the same libraries.
struct Footprint {
    double rss_mb = 0;
    double anon_mb = 0; // private memory (heap, stacks)
    double file_mb = 0; // pages of mapped files: libraries' code and data
    double pss_mb = 0;
    int threads = 0;
};
Footprint footprint_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    Footprint f;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("VmRSS:", 0) == 0) f.rss_mb = std::stod(line.substr(6)) / 1024.0;
        if (line.rfind("RssAnon:", 0) == 0) f.anon_mb = std::stod(line.substr(8)) / 1024.0;
        if (line.rfind("RssFile:", 0) == 0) f.file_mb = std::stod(line.substr(8)) / 1024.0;
        if (line.rfind("Threads:", 0) == 0) f.threads = std::stoi(line.substr(8));
    }
    std::ifstream rollup("/proc/" + std::to_string(pid) + "/smaps_rollup");
    for (std::string line; std::getline(rollup, line);)
        if (line.rfind("Pss:", 0) == 0) f.pss_mb = std::stod(line.substr(4)) / 1024.0;
    return f;
}

// RSS by mapping (file name, or [heap]/[anon]/...), largest first.
std::vector<std::pair<std::string, double>> rss_by_mapping(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
    std::map<std::string, double> kb;
    std::string current;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        if (std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < line.find(' ')) {
            // "start-end perms offset dev inode [path]"
            std::istringstream s(line);
            std::string range, perms, offset, dev, inode, path;
            s >> range >> perms >> offset >> dev >> inode;
            std::getline(s, path);
            path.erase(0, path.find_first_not_of(' '));
            if (path.empty()) path = "[anon]";
            if (auto slash = path.rfind('/'); slash != std::string::npos && path[0] == '/')
                path = path.substr(slash + 1);
            current = path;
        } else if (line.rfind("Rss:", 0) == 0) {
            kb[current] += std::stod(line.substr(4));
        }
    }
    std::vector<std::pair<std::string, double>> out(kb.begin(), kb.end());
    std::sort(out.begin(), out.end(), [](auto &a, auto &b) { return a.second > b.second; });
    for (auto &[name, v] : out) v /= 1024.0;
    return out;
}

// A long-running child whose stdout lines are read by a thread; stopped with
// SIGTERM (SIGKILL after 5 s) and reaped by the destructor.
class LineReader {
public:
    using OnLine = std::function<void(const std::string &, Clock::time_point)>;
    LineReader(const std::vector<std::string> &args, const std::map<std::string, std::string> &env, OnLine on_line)
        : child_(spawn(args, env, true)), thread_([this, on_line] { read_loop(on_line); }) {}
    ~LineReader() { stop(); }
    LineReader(const LineReader &) = delete;
    LineReader &operator=(const LineReader &) = delete;
    pid_t pid() const { return child_.pid; }
    void stop() {
        if (stopped_) return;
        stopped_ = true;
        ::kill(child_.pid, SIGTERM);
        auto deadline = Clock::now() + 5s;
        int status = 0;
        while (::waitpid(child_.pid, &status, WNOHANG) == 0) {
            if (Clock::now() > deadline) {
                ::kill(child_.pid, SIGKILL);
                ::waitpid(child_.pid, &status, 0);
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
        thread_.join(); // the pipe's write end died with the child: EOF
        ::close(child_.out_fd);
    }

private:
    void read_loop(const OnLine &on_line) {
        std::string pending;
        char buffer[8192];
        while (true) {
            ssize_t n = ::read(child_.out_fd, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            auto now = Clock::now();
            pending.append(buffer, static_cast<std::size_t>(n));
            for (std::size_t eol; (eol = pending.find('\n')) != std::string::npos;) {
                on_line(pending.substr(0, eol), now);
                pending.erase(0, eol + 1);
            }
        }
    }

    Spawned child_;
    bool stopped_ = false;
    std::thread thread_;
};

// POST with an empty body over a unix socket (the Docker API's
// /containers/ID/start); returns the HTTP status. Bounded by `timeout`.
int http_post(const std::string &socket_path, const std::string &target, std::chrono::milliseconds timeout = 10s) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof addr.sun_path) {
        ::close(fd);
        throw std::runtime_error("socket path too long: " + socket_path);
    }
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw std::runtime_error("connect " + socket_path + ": " + std::strerror(errno));
    }
    std::string request =
        "POST " + target + " HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
        ::close(fd);
        throw std::runtime_error("write to " + socket_path + " failed");
    }
    std::string answer;
    auto deadline = Clock::now() + timeout;
    while (answer.find("\r\n") == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{fd, POLLIN, 0};
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1) break;
        char buffer[512];
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n <= 0) break;
        answer.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    // "HTTP/1.1 204 No Content"
    auto space = answer.find(' ');
    if (space == std::string::npos) throw std::runtime_error("no answer to POST " + target);
    return std::atoi(answer.c_str() + space + 1);
}

// ---- the engines and their containers -------------------------------------

struct Split {
    std::size_t docker = 0, ctr = 0, pods = 0; // each pod: sandbox + one container
    std::size_t total() const { return docker + ctr + 2 * pods; }
};

// C containers split: half Docker, one CRI pod (2 containers) per 50, the
// rest native containerd. C=100 gives the 50 Docker containers of figure 3.
Split split_for(std::size_t c) {
    Split s;
    s.pods = std::max<std::size_t>(1, c / 50);
    s.docker = c / 2;
    std::size_t used = s.docker + 2 * s.pods;
    s.ctr = c > used ? c - used : 0;
    return s;
}

class Population {
public:
    Population(lab::Dockerd &dockerd, lab::Containerd &containerd)
        : dockerd_(dockerd), containerd_(containerd), cri_(containerd.socket()) {}
    ~Population() { clear(); }

    const Split &current() const { return have_; }
    const std::vector<std::string> &docker_ids() const { return docker_; }

    void grow_to(const Split &want) {
        std::mutex mu;
        // Engines start containers faster from a few clients at once.
        parallel(want.docker > have_.docker ? want.docker - have_.docker : 0, [&](std::size_t) {
            std::string id = dockerd_.docker_ok({"run", "-d", "--network", "none", "busybox-img"});
            std::lock_guard lock(mu);
            docker_.push_back(id);
        });
        std::size_t first = ctr_.size();
        parallel(want.ctr > have_.ctr ? want.ctr - have_.ctr : 0, [&](std::size_t i) {
            std::string id = "bench-" + std::to_string(first + i);
            containerd_.ctr_ok("default", {"run", "-d", "--null-io", "--runc-root", containerd_.runc_root(),
                                           lab::Containerd::busybox_image, id, "sleep", "infinity"});
            std::lock_guard lock(mu);
            ctr_.push_back(id);
        });
        while (pods_.size() < want.pods) {
            std::string n = std::to_string(pods_.size());
            std::string pod = cri_.run_pod("bench-" + n, "bench", "uid-bench-" + n);
            std::string c = cri_.create_container(pod, "app", lab::Containerd::busybox_image, {"sleep", "infinity"});
            cri_.start_container(c);
            pods_.push_back(pod);
            cri_containers_.push_back(c);
        }
        have_ = {docker_.size(), ctr_.size(), pods_.size()};
    }

    // Containers started by figure 4, removed with the rest.
    void adopt_docker(const std::string &id) { docker_.push_back(id); }
    void adopt_ctr(const std::string &id) { ctr_.push_back(id); }
    void adopt_cri(const std::string &id) { cri_containers_.push_back(id); }
    void adopt_pod(const std::string &id) { pods_.push_back(id); }
    lab::CriAdmin &cri() { return cri_; }

    // Bulk removal: much faster than the lab's one-by-one teardown.
    void clear() noexcept {
        try {
            std::vector<std::vector<std::string>> batches;
            for (std::size_t i = 0; i < docker_.size(); i += 40)
                batches.emplace_back(docker_.begin() + static_cast<long>(i),
                                     docker_.begin() + static_cast<long>(std::min(docker_.size(), i + 40)));
            parallel(batches.size(), [&](std::size_t b) {
                std::vector<std::string> args = {"rm", "-f"};
                args.insert(args.end(), batches[b].begin(), batches[b].end());
                dockerd_.docker(args, 120s);
            });
            docker_.clear();
            if (!ctr_.empty()) {
                std::vector<std::string> args = {"task", "rm", "-f"};
                args.insert(args.end(), ctr_.begin(), ctr_.end());
                containerd_.ctr("default", args, 120s);
                args = {"container", "rm"};
                args.insert(args.end(), ctr_.begin(), ctr_.end());
                containerd_.ctr("default", args, 120s);
                ctr_.clear();
            }
            for (const auto &c : cri_containers_) {
                cri_.stop_container(c);
                cri_.remove_container(c);
            }
            cri_containers_.clear();
            for (const auto &p : pods_) {
                cri_.stop_pod(p);
                cri_.remove_pod(p);
            }
            pods_.clear();
        } catch (const std::exception &e) {
            std::cerr << "bench: removing containers: " << e.what() << " (the engines' teardown removes the rest)\n";
        }
        have_ = {};
    }

private:
    template <typename F>
    static void parallel(std::size_t n, F &&work) {
        std::atomic<std::size_t> next{0};
        std::mutex mu;
        std::string error;
        std::vector<std::thread> threads;
        for (int t = 0; t < 3; ++t)
            threads.emplace_back([&] {
                for (std::size_t i; (i = next++) < n;) {
                    try {
                        work(i);
                    } catch (const std::exception &e) {
                        std::lock_guard lock(mu);
                        error = e.what();
                        next = n;
                    }
                }
            });
        for (auto &t : threads) t.join();
        if (!error.empty()) throw std::runtime_error(error);
    }

    lab::Dockerd &dockerd_;
    lab::Containerd &containerd_;
    lab::CriAdmin cri_;
    Split have_;
    std::vector<std::string> docker_, ctr_, pods_, cri_containers_;
};

std::string breakdown(const std::vector<tf::Container> &containers) {
    std::map<std::string, int> by;
    for (const auto &c : containers) ++by[c.type];
    std::string out;
    for (auto &[t, n] : by) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", n, t);
    return out.empty() ? "none" : out;
}

// Polls containers() until it reports `count` containers.
std::vector<tf::Container> wait_for_count(tf::Finder &finder, std::size_t count, std::chrono::seconds deadline = 60s) {
    auto end = Clock::now() + deadline;
    while (true) {
        auto all = finder.containers();
        if (all.size() == count) return all;
        if (Clock::now() > end)
            throw std::runtime_error(
                fmt::format("the Finder reports {} containers ({}), expected {}", all.size(), breakdown(all), count));
        std::this_thread::sleep_for(20ms);
    }
}

// ---- the figures -------------------------------------------------------------

struct Context {
    Args args;
    lab::Dockerd *dockerd;
    lab::Containerd *containerd;
    Population *population;
    tf::Finder *finder;
    tb::IdleProcesses *idle;
    std::vector<tb::Row> rows;
    std::vector<std::string> notes;
    // figure 2 samples (ms) by (C, P target): warm - floor, and copy
    struct Growth {
        std::vector<double> first, second; // containers() - floor, copy
        std::vector<double> own; // containers() - the Finder's own process scan
    };
    std::map<std::pair<std::size_t, std::size_t>, Growth> growth;
    // figure 5 thread counts by C
    std::map<std::size_t, std::vector<double>> threads_by_c;
    std::map<std::string, std::string> docker_env() const { return {{"DOCKER_CONFIG", dockerd->dir() + "/cli"}}; }
};

// Seconds on the clock the in-process figures use (tb::use_wall_clock()).
double bench_clock() {
    if (tb::use_wall_clock()) return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// What containers() costs beyond a floor scan, and what copying its result
// costs right after a floor scan (ms); one sample of each per repetition,
// the median of `pairs` calls. containers() and the floor scan alternate
// call by call (in both orders) and are paired: the growth with C is tens of
// microseconds on top of a scan of ~10 ms, which a difference of separately
// timed medians drowns in the scan's noise. The copy is timed after a scan,
// as containers() copies after its scan, with caches no longer warm.
struct Excess {
    std::vector<double> beyond_floor, beyond_scan, copy_after_scan;
};
Excess excess_over_floor(tf::Finder &finder, const std::vector<tf::Container> &reference, int reps, int pairs) {
    Excess out;
    for (int r = 0; r < reps; ++r) {
        std::vector<double> diffs, own, copies;
        for (int i = 0; i < pairs; ++i) {
            double warm = 0, floor = 0, scan = 0, copy = 0;
            for (int half = 0; half < 2; ++half) {
                double t0 = bench_clock();
                if ((half == 0) == (i % 2 == 0)) {
                    auto v = finder.containers();
                    warm = bench_clock() - t0;
                    if (v.size() != reference.size())
                        throw std::runtime_error(
                            fmt::format("containers() returned {}, not {}", v.size(), reference.size()));
                    benchmark::DoNotOptimize(v.data());
                } else {
                    auto v = tb::floor_scan();
                    floor = bench_clock() - t0;
                    benchmark::DoNotOptimize(v.data());
                    double t1 = bench_clock();
                    auto c = reference;
                    copy = bench_clock() - t1;
                    benchmark::DoNotOptimize(c.data());
                    // The Finder's own scan: what containers() adds beyond it is its own work.
                    double t2 = bench_clock();
                    auto table = tf::procfs::ProcessTable::scan();
                    scan = bench_clock() - t2;
                    benchmark::DoNotOptimize(table.size());
                }
            }
            diffs.push_back((warm - floor) * 1e3);
            own.push_back((warm - scan) * 1e3);
            copies.push_back(copy * 1e3);
        }
        out.beyond_floor.push_back(tb::median(diffs));
        out.beyond_scan.push_back(tb::median(own));
        out.copy_after_scan.push_back(tb::median(copies));
    }
    return out;
}

void figure2(Context &cx, std::size_t c) {
    for (std::size_t p_target : cx.args.sizes) {
        std::size_t p = cx.idle->fill_to(p_target);
        auto reference = wait_for_count(*cx.finder, c);
        std::cerr << fmt::format("bench: warm containers() at C={} P={}\n", c, p);
        std::size_t seen = 0;
        auto samples = tb::run_interleaved(
            {
                {"warm",
                 [&](benchmark::State &state) {
                     for (auto _ : state) {
                         auto v = cx.finder->containers();
                         seen = v.size();
                         benchmark::DoNotOptimize(v.data());
                     }
                 }},
                {"floor",
                 [&](benchmark::State &state) {
                     for (auto _ : state) {
                         auto v = tb::floor_scan();
                         benchmark::DoNotOptimize(v.data());
                     }
                 }},
                {"copy",
                 [&](benchmark::State &state) {
                     for (auto _ : state) {
                         auto v = reference;
                         benchmark::DoNotOptimize(v.data());
                     }
                 }},
            },
            cx.args.reps, 0.05);
        if (seen != c)
            throw std::runtime_error(fmt::format("containers() returned {} while measured, not {}", seen, c));
        auto to_ms = [](const std::vector<double> &s) {
            std::vector<double> out;
            for (double v : s) out.push_back(v * 1e3);
            return out;
        };
        auto warm = to_ms(samples["warm"]), floor = to_ms(samples["floor"]), copy = to_ms(samples["copy"]);
        std::string param = fmt::format("C={} P={}", c, p);
        cx.rows.push_back(
            {"2 warm containers()", param, tb::time_unit(), warm, floor, "one floor scan", "ratio<=1.3", ""});
        cx.rows.push_back(
            {"2 warm containers()", param, tb::time_unit(), warm, copy, "copy of the container vector", "info", ""});
        auto &g = cx.growth[{c, p_target}];
        if (p_target == cx.args.sizes.front()) {
            auto excess = excess_over_floor(*cx.finder, reference, cx.args.reps, cx.args.pairs);
            g.first = excess.beyond_floor;
            g.second = excess.copy_after_scan;
            g.own = excess.beyond_scan;
            cx.rows.push_back({"2 warm containers() beyond the floor", param, tb::time_unit(), g.first, g.second,
                               "copy of the container vector after a scan", "info",
                               "medians of paired calls: containers() - floor scan"});
        } else {
            for (std::size_t i = 0; i < std::min(warm.size(), floor.size()); ++i) g.first.push_back(warm[i] - floor[i]);
            g.second = copy;
        }
    }
}

// Growth of (containers() - floor) from the smallest to the largest C against
// the growth of a copy of the containers: containers() must not grow faster
// with C. At the first P both are measured in paired calls (see
// excess_over_floor); at the others from the separate medians, for context.
void figure2_growth(Context &cx) {
    if (cx.args.stages.size() < 2) return;
    std::size_t lo = cx.args.stages.front(), hi = cx.args.stages.back();
    for (std::size_t p : cx.args.sizes) {
        auto &a = cx.growth[{lo, p}];
        auto &b = cx.growth[{hi, p}];
        bool judged = p == cx.args.sizes.front();
        tb::Row row{"2 growth with C",
                    fmt::format("C {}->{} P~{}", lo, hi, p),
                    tb::time_unit(),
                    {},
                    {},
                    judged ? "growth of the copy after a scan" : "growth of the copy",
                    judged ? "ratio<=1.2" : "info",
                    judged ? "containers() minus floor, paired calls"
                           : "containers() minus floor, separate medians; scan noise at this P dwarfs it"};
        for (std::size_t i = 0; i < std::min(a.first.size(), b.first.size()); ++i)
            row.value.push_back(b.first[i] - a.first[i]);
        for (std::size_t i = 0; i < std::min(a.second.size(), b.second.size()); ++i)
            row.baseline.push_back(b.second[i] - a.second[i]);
        if (judged && !a.own.empty()) {
            // Where the growth goes: the Finder's work beyond its own scan
            // (query, copy) against the part of the scan that grows with
            // the container processes (more parents with children).
            tb::Row own{"2 growth with C",
                        fmt::format("C {}->{} P~{} beyond its own scan", lo, hi, p),
                        tb::time_unit(),
                        {},
                        row.baseline,
                        "growth of the copy after a scan",
                        "info",
                        "containers() minus procfs::ProcessTable::scan, paired calls"};
            for (std::size_t i = 0; i < std::min(a.own.size(), b.own.size()); ++i)
                own.value.push_back(b.own[i] - a.own[i]);
            cx.rows.push_back(std::move(row));
            cx.rows.push_back(std::move(own));
            continue;
        }
        cx.rows.push_back(std::move(row));
    }
}

void figure3(Context &cx) {
    cx.idle->resize(0);
    const std::string docker = lab::find_program("docker");
    const std::string host = cx.dockerd->host();
    auto env = cx.docker_env();
    const std::vector<std::string> cli = {TF_BENCH_CLI, "--json"};
    const std::vector<std::string> ps = {docker, "-H", host, "ps", "--format", "{{json .}}"};
    const std::vector<std::string> inspect = {"/bin/sh", "-c",
                                              fmt::format("exec {0} -H {1} inspect $({0} -H {1} ps -q)", docker, host)};

    // The CLI must report what it is timed for: every Docker container, with PIDs.
    std::string json = capture(cli, env);
    for (const auto &id : cx.population->docker_ids())
        if (json.find(id) == std::string::npos) throw std::runtime_error("turtlefinder --json misses container " + id);
    std::size_t docker_count = cx.population->docker_ids().size();
    std::cerr << fmt::format("bench: one-shot CLI vs docker ps ({} Docker containers)\n", docker_count);

    std::vector<double> tf_wall, tf_rss, tf_cpu, ps_wall, ps_rss, ps_cpu, in_wall, in_rss, in_cpu;
    for (int r = 0; r < cx.args.cli_reps; ++r) {
        auto add = [](const Measured &m, std::vector<double> &wall, std::vector<double> &rss, std::vector<double> &cpu,
                      const std::string &what) {
            if (m.status != 0) throw std::runtime_error(what + " failed (exit " + std::to_string(m.status) + ")");
            wall.push_back(m.wall_ms);
            rss.push_back(m.max_rss_mb);
            cpu.push_back(m.cpu_ms);
        };
        add(measure(cli, env), tf_wall, tf_rss, tf_cpu, "turtlefinder --json");
        add(measure(ps, env), ps_wall, ps_rss, ps_cpu, "docker ps");
        add(measure(inspect, env), in_wall, in_rss, in_cpu, "docker inspect");
    }
    std::string param =
        fmt::format("{} Docker + {} other", docker_count, cx.population->current().total() - docker_count);
    cx.rows.push_back({"3 one-shot CLI wall", param, "ms", tf_wall, ps_wall, "docker ps --format json", "ratio<1", ""});
    cx.rows.push_back(
        {"3 one-shot CLI peak RSS", param, "MB", tf_rss, ps_rss, "docker ps --format json", "ratio<=0.5", ""});
    cx.rows.push_back({"3 one-shot CLI cpu", param, "ms", tf_cpu, ps_cpu, "docker ps --format json", "info",
                       "user+system; wall minus cpu is waiting (engines, first syncs, a busy machine)"});
    cx.rows.push_back(
        {"3 one-shot CLI wall", param, "ms", tf_wall, in_wall, "docker inspect $(docker ps -q)", "info", ""});
    cx.rows.push_back(
        {"3 one-shot CLI peak RSS", param, "MB", tf_rss, in_rss, "docker inspect $(docker ps -q)", "info", ""});

    // Where the CLI's time goes: a cold Finder in this process (libraries
    // loaded already) = discovery + waiting for every engine's first sync.
    std::vector<double> cold;
    for (int r = 0; r < std::min(cx.args.cli_reps, 5); ++r) {
        auto t0 = Clock::now();
        tf::Finder fresh;
        auto all = fresh.containers();
        cold.push_back(ms_since(t0, Clock::now()));
        if (all.size() != cx.population->current().total())
            throw std::runtime_error(fmt::format("a cold Finder saw {} containers", all.size()));
    }
    cx.rows.push_back({"3 cold Finder in-process", param, "ms", cold, ps_wall, "docker ps --format json", "info",
                       "construct + first containers(): discovery and first syncs"});
}

struct FootprintSample {
    std::vector<double> rss, threads;
    pid_t last_pid = -1;
};

// Starts `args`, waits until its stdout has shown `ready_lines` lines
// matching `ready`, then samples its RSS for 1 s (the maximum counts: a
// steady state after the first syncs) and threads; stops it.
Footprint sample_process(const std::vector<std::string> &args, const std::string &ready, std::size_t ready_lines,
                         std::vector<std::pair<std::string, double>> *mappings = nullptr,
                         std::string *ready_line = nullptr) {
    std::mutex mu;
    std::size_t seen = 0;
    LineReader child(args, {}, [&](const std::string &line, Clock::time_point) {
        if (line.find(ready) != std::string::npos) {
            std::lock_guard lock(mu);
            ++seen;
            if (ready_line != nullptr) *ready_line = line;
        }
    });
    auto deadline = Clock::now() + 30s;
    while (true) {
        {
            std::lock_guard lock(mu);
            if (seen >= ready_lines) break;
        }
        if (Clock::now() > deadline) throw std::runtime_error(args[0] + " did not get ready");
        std::this_thread::sleep_for(10ms);
    }
    Footprint peak;
    for (auto end = Clock::now() + 1s; Clock::now() < end; std::this_thread::sleep_for(100ms)) {
        auto f = footprint_of(child.pid());
        if (f.rss_mb > peak.rss_mb) {
            peak.anon_mb = f.anon_mb;
            peak.file_mb = f.file_mb;
            peak.pss_mb = f.pss_mb;
        }
        peak.rss_mb = std::max(peak.rss_mb, f.rss_mb);
        peak.threads = std::max(peak.threads, f.threads);
    }
    if (mappings != nullptr) *mappings = rss_by_mapping(child.pid());
    child.stop();
    return peak;
}

struct FootprintSamples {
    std::vector<double> rss, file, anon, pss, threads;
    void add(const Footprint &f) {
        rss.push_back(f.rss_mb);
        file.push_back(f.file_mb);
        anon.push_back(f.anon_mb);
        pss.push_back(f.pss_mb);
        threads.push_back(f.threads);
    }
};

// The mapped files whose name holds `part` (e.g. "libgrpc"), with their RSS.
std::string mapped_like(const std::vector<std::pair<std::string, double>> &mappings, const std::string &part) {
    std::string out;
    for (const auto &[name, mb] : mappings)
        if (name.find(part) != std::string::npos)
            out += fmt::format("{}{} {:.1f} MB", out.empty() ? "" : ", ", name, mb);
    return out.empty() ? "none" : out;
}

// Figure 5. Besides the goal row (every plugin, three engines watched), the
// same measured with only the Docker plugin loaded and only Docker watched,
// and the split of RSS: what the gRPC plugins' libraries cost is the
// difference of the two idle Finders.
void figure5(Context &cx, std::size_t c) {
    cx.idle->resize(0);
    std::cerr << fmt::format("bench: footprint at C={}\n", c);
    std::string found = fmt::format("\"event\":\"{}\"", tf::to_string(tf::EventKind::engine_found));
    // Only the Docker plugin: its directory alone.
    const std::vector<std::string> docker_only = {TF_BENCH_IDLE_FINDER, "--plugin-dir", TF_BENCH_MOBY_DIR};
    FootprintSamples all, idle, docker, docker_idle, host;
    std::vector<std::pair<std::string, double>> mappings, idle_mappings, host_mappings;
    Footprint f, b;
    std::string host_ready;
    for (int r = 0; r < cx.args.footprint_reps; ++r) {
        f = sample_process({TF_BENCH_CLI, "--watch", "--json"}, found, 3, &mappings);
        all.add(f);
        b = sample_process({TF_BENCH_IDLE_FINDER}, "ready", 1, &idle_mappings);
        idle.add(b);
        // Every plugin installed; one discovery loads those this host needs.
        host.add(sample_process({TF_BENCH_IDLE_FINDER, "--discover"}, "ready", 1, &host_mappings, &host_ready));
        auto watching = docker_only;
        watching.push_back("--discover");
        docker.add(sample_process(watching, "ready", 1));
        docker_idle.add(sample_process(docker_only, "ready", 1));
    }
    std::string param = fmt::format("C={} 3 engines", c);
    std::string idle_all = "idle Finder before any discovery (no plugin loaded)";
    cx.rows.push_back({"5 footprint RSS", param, "MB", all.rss, idle.rss, idle_all, "value<10", ""});
    cx.rows.push_back(
        {"5 footprint RSS file-backed", param, "MB", all.file, idle.file, idle_all, "info", "mapped libraries' pages"});
    cx.rows.push_back({"5 footprint RSS anonymous", param, "MB", all.anon, idle.anon, idle_all, "info",
                       "heap, stacks, relocated library data"});
    cx.rows.push_back(
        {"5 footprint PSS", param, "MB", all.pss, idle.pss, idle_all, "info", "shared pages charged in part"});
    cx.rows.push_back({"5 footprint threads", param, "threads", all.threads, idle.threads, idle_all, "info", ""});
    std::string docker_param = fmt::format("C={} Docker plugin only, {} Docker", c, cx.population->current().docker);
    cx.rows.push_back({"5 footprint RSS", docker_param, "MB", docker.rss, docker_idle.rss,
                       "idle Finder, Docker plugin only, before any discovery", "value<10",
                       "a Finder watching Docker in a bench program, without the gRPC plugins"});
    cx.rows.push_back({"5 footprint threads", docker_param, "threads", docker.threads, docker_idle.threads,
                       "idle Finder, Docker plugin only, before any discovery", "info", ""});
    cx.rows.push_back({"5 idle Finder RSS", fmt::format("Docker host (dockerd + containerd), C={}", c), "MB", host.rss,
                       idle.rss, idle_all, "info",
                       "every plugin installed; one discovery loaded those this host needs (" + host_ready +
                           "), which watch Docker, containerd and CRI"});
    cx.notes.push_back(fmt::format("5 idle Finder on the Docker host at C={}: gRPC mapped: {}", c,
                                   mapped_like(host_mappings, "libgrpc")));
    auto top = [](const std::vector<std::pair<std::string, double>> &m) {
        std::string out;
        for (std::size_t i = 0; i < std::min<std::size_t>(10, m.size()); ++i)
            out += fmt::format("{}{} {:.1f}", i ? ", " : "", m[i].first, m[i].second);
        return out;
    };
    cx.notes.push_back(fmt::format("5 watching CLI at C={}: RSS {:.1f} MB = {:.1f} file-backed + {:.1f} anon, PSS "
                                   "{:.1f}; by mapping (MB): {}",
                                   c, f.rss_mb, f.file_mb, f.anon_mb, f.pss_mb, top(mappings)));
    cx.notes.push_back(fmt::format("5 idle Finder: RSS {:.1f} MB = {:.1f} file-backed + {:.1f} anon, PSS {:.1f}; by "
                                   "mapping (MB): {}",
                                   b.rss_mb, b.file_mb, b.anon_mb, b.pss_mb, top(idle_mappings)));
    cx.threads_by_c[c] = all.threads;
}

void figure5_threads(Context &cx) {
    if (cx.args.stages.size() < 2) return;
    std::size_t lo = cx.args.stages[cx.args.stages.size() > 2 ? 1 : 0], hi = cx.args.stages.back();
    auto a = cx.threads_by_c.find(lo), b = cx.threads_by_c.find(hi);
    if (a == cx.threads_by_c.end() || b == cx.threads_by_c.end()) return;
    cx.rows.push_back({"5 threads vs containers", fmt::format("C={} vs C={}", hi, lo), "threads", b->second, a->second,
                       fmt::format("threads at C={}", lo), "ratio<=1", ""});
}

// Nearest-rank 99th percentile (the maximum below 100 samples).
double p99(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(v.size())));
    return v[std::min(v.size(), std::max<std::size_t>(rank, 1)) - 1];
}

// Start times, by container id, seen by the engine's own event subscriber and
// by the Finder's subscribe() callback.
struct Stamps {
    std::mutex mu;
    std::map<std::string, Clock::time_point> engine, callback;
    std::optional<Clock::time_point> get(std::map<std::string, Clock::time_point> &m, const std::string &id) {
        std::lock_guard lock(mu);
        auto it = m.find(id);
        if (it == m.end()) return std::nullopt;
        return it->second;
    }
    void put(std::map<std::string, Clock::time_point> &m, const std::string &id, Clock::time_point t) {
        std::lock_guard lock(mu);
        m.emplace(id, t);
    }
};

// `goal` is "delta<50" for engines with an event stream; a polled engine's
// latency is bounded by its relist period instead, so it is only reported.
void latency_rows(Context &cx, const std::string &engine, const std::vector<double> &visible,
                  const std::vector<double> &callback, const std::vector<double> &emitted, const std::string &note,
                  const std::string &goal = "delta<50") {
    auto delta_p99 = [&](const std::vector<double> &v) {
        std::vector<double> d;
        for (std::size_t i = 0; i < v.size(); ++i) d.push_back(v[i] - emitted[i]);
        return fmt::format("p99 {:.1f} ms, p99 beyond emission {:.1f} ms", p99(v), p99(d));
    };
    std::string param = fmt::format("{} x{}", engine, visible.size());
    cx.rows.push_back({"4 start->containers()", param, "ms", visible, emitted, "engine's own start event", goal,
                       delta_p99(visible) + (note.empty() ? "" : "; " + note)});
    cx.rows.push_back({"4 start->subscribe()", param, "ms", callback, emitted, "engine's own start event", goal,
                       delta_p99(callback) + (note.empty() ? "" : "; " + note)});
}

// Polls containers() tightly until `id` shows; the time the call that showed
// it returned (an upper bound: the resolution is one call, kept in `calls`).
Clock::time_point poll_visible(tf::Finder &finder, const std::string &id, Clock::time_point deadline,
                               std::vector<double> &calls) {
    while (true) {
        auto before = Clock::now();
        auto all = finder.containers();
        auto now = Clock::now();
        calls.push_back(ms_since(before, now));
        for (const auto &c : all)
            if (c.id == id) return now;
        if (now > deadline) throw std::runtime_error("container " + id + " never showed in containers()");
    }
}

Clock::time_point wait_stamp(Stamps &stamps, std::map<std::string, Clock::time_point> &m, const std::string &id,
                             const std::string &what, Clock::time_point deadline) {
    while (true) {
        if (auto t = stamps.get(m, id)) return *t;
        if (Clock::now() > deadline) throw std::runtime_error(what + " never reported the start of " + id);
        std::this_thread::sleep_for(1ms);
    }
}

void figure4(Context &cx) {
    cx.idle->resize(0);
    Stamps stamps;
    int handle = cx.finder->subscribe([&](const tf::Event &e) {
        if (e.kind == tf::EventKind::started) stamps.put(stamps.callback, e.container.id, Clock::now());
    });
    struct Unsubscribe {
        tf::Finder *f;
        int h;
        ~Unsubscribe() { f->unsubscribe(h); }
    } unsubscribe{cx.finder, handle};

    // The engines' own subscribers: Docker's raw /events stream, and `ctr events`
    // for containerd (every namespace, so CRI's tasks too).
    turtlefinder::clients::docker::Options o;
    o.socket_path = cx.dockerd->socket();
    o.timeout = 5s;
    turtlefinder::clients::docker::Client events_client(o);
    std::atomic<bool> subscribed{false};
    std::thread docker_events([&] {
        try {
            events_client.events(R"({"type":["container"],"event":["start"]})", [&] { return subscribed = true; },
                                 [&](const turtlefinder::clients::docker::Event &e) {
                                     if (e.action == "start") stamps.put(stamps.engine, e.id, Clock::now());
                                     return true;
                                 });
        } catch (const std::exception &) {
            // cancelled at the end (or failed: the waits below then say so)
        }
    });
    struct StopEvents {
        turtlefinder::clients::docker::Client &c;
        std::thread &t;
        ~StopEvents() {
            c.cancel();
            t.join();
        }
    } stop_events{events_client, docker_events};
    LineReader ctr_events({"ctr", "-a", cx.containerd->socket(), "events"}, {},
                          [&](const std::string &line, Clock::time_point t) {
                              if (line.find("/tasks/start") == std::string::npos) return;
                              constexpr std::string_view key = "\"container_id\":\"";
                              auto at = line.find(key);
                              if (at == std::string::npos) return;
                              at += key.size();
                              stamps.put(stamps.engine, line.substr(at, line.find('"', at) - at), t);
                          });
    auto ready_deadline = Clock::now() + 10s;
    while (!subscribed && Clock::now() < ready_deadline) std::this_thread::sleep_for(5ms);
    if (!subscribed) throw std::runtime_error("the Docker /events stream did not start");
    // `ctr events` prints nothing until something happens: a throwaway task
    // start proves its subscription stands.
    {
        std::string probe = "bench-probe";
        cx.containerd->ctr_ok("default", {"run", "-d", "--null-io", "--runc-root", cx.containerd->runc_root(),
                                          lab::Containerd::busybox_image, probe, "sleep", "infinity"});
        cx.population->adopt_ctr(probe);
        wait_stamp(stamps, stamps.engine, probe, "ctr events", Clock::now() + 10s);
    }

    std::vector<double> calls; // durations of the polling containers() calls
    auto one = [&](const std::string &id, const std::function<void()> &start, std::vector<double> &visible,
                   std::vector<double> &callback, std::vector<double> &emitted) {
        auto t0 = Clock::now();
        start();
        auto deadline = Clock::now() + 10s;
        auto seen = poll_visible(*cx.finder, id, deadline, calls);
        auto cb = wait_stamp(stamps, stamps.callback, id, "subscribe()", deadline);
        auto ev = wait_stamp(stamps, stamps.engine, id, "the engine's event stream", deadline);
        visible.push_back(ms_since(t0, seen));
        callback.push_back(ms_since(t0, cb));
        emitted.push_back(ms_since(t0, ev));
    };

    {
        std::cerr << fmt::format("bench: event latency, Docker x{}\n", cx.args.starts);
        std::vector<double> visible, callback, emitted;
        for (int i = 0; i < cx.args.starts; ++i) {
            std::string id = cx.dockerd->docker_ok({"create", "--network", "none", "busybox-img"});
            cx.population->adopt_docker(id);
            one(
                id,
                [&] {
                    int status = http_post(cx.dockerd->socket(), "/containers/" + id + "/start");
                    if (status != 204) throw std::runtime_error("POST start answered " + std::to_string(status));
                },
                visible, callback, emitted);
        }
        latency_rows(cx, "Docker", visible, callback, emitted, "");
    }
    {
        std::cerr << fmt::format("bench: event latency, containerd x{}\n", cx.args.starts);
        std::vector<double> visible, callback, emitted;
        for (int i = 0; i < cx.args.starts; ++i) {
            std::string id = "bench-lat-" + std::to_string(i);
            cx.containerd->ctr_ok("default",
                                  {"container", "create", lab::Containerd::busybox_image, id, "sleep", "infinity"});
            cx.population->adopt_ctr(id);
            one(
                id,
                [&] {
                    cx.containerd->ctr_ok("default", {"task", "start", "-d", "--null-io", id});
                },
                visible, callback, emitted);
        }
        latency_rows(cx, "containerd", visible, callback, emitted, "start = ctr task start -d");
    }
    {
        // Polled once a second: 20 starts show its latency (0-1 s) well enough.
        const int cri_starts = std::min(cx.args.starts, 20);
        std::cerr << fmt::format("bench: event latency, CRI x{} (relisted every second)\n", cri_starts);
        auto &cri = cx.population->cri();
        std::string pod = cri.run_pod("bench-latency", "bench", "uid-bench-latency");
        cx.population->adopt_pod(pod);
        std::vector<double> visible, callback, emitted;
        for (int i = 0; i < cri_starts; ++i) {
            std::string id = cri.create_container(pod, "lat-" + std::to_string(i), lab::Containerd::busybox_image,
                                                  {"sleep", "infinity"});
            cx.population->adopt_cri(id);
            one(
                id, [&] { cri.start_container(id); }, visible, callback, emitted);
        }
        latency_rows(cx, "CRI", visible, callback, emitted,
                     "containerd 1.6 CRI has no event stream: the watcher relists every 1 s", "info");
    }
    cx.notes.push_back(fmt::format("4 containers() polled tightly: {} calls, median {:.2f} ms each (the resolution of "
                                   "'start->containers()'), P={}",
                                   calls.size(), tb::median(calls), tb::process_count()));
}

bool isolated = false; // PID 1's child: in a PID namespace of our own

// Figure 5 on a host where podman runs and nothing else (a namespace of its
// own): an idle Finder with every plugin installed after one discovery,
// which should load the podman plugin alone and never map gRPC.
int podman_host_main(const Args &args) {
    for (const char *program : {"podman", "conmon", "runc"})
        if (!lab::which(program)) {
            std::cerr << "tf-bench-engines: " << program << " is not installed\n";
            return 77;
        }
    lab::Lab lab("bench-podman");
    std::cerr << "bench: starting podman (system service) alone\n";
    lab::PodmanService podman(lab, lab.path("podman/podman.sock"));
    FootprintSamples host, idle;
    std::vector<std::pair<std::string, double>> mappings;
    std::string ready;
    for (int r = 0; r < args.footprint_reps; ++r) {
        host.add(sample_process({TF_BENCH_IDLE_FINDER, "--discover"}, "ready", 1, &mappings, &ready));
        idle.add(sample_process({TF_BENCH_IDLE_FINDER}, "ready", 1));
    }
    if (ready.find(" 1 engines") == std::string::npos)
        throw std::runtime_error("the idle Finder on the podman host did not find podman alone: " + ready);
    std::string baseline = "idle Finder before any discovery (no plugin loaded)";
    std::vector<tb::Row> rows;
    rows.push_back({"5 idle Finder RSS", "podman-only host", "MB", host.rss, idle.rss, baseline, "value<6",
                    "every plugin installed; one discovery loaded " + ready.substr(ready.find(' ') + 1)});
    rows.push_back({"5 idle Finder RSS file-backed", "podman-only host", "MB", host.file, idle.file, baseline, "info",
                    "mapped libraries' pages"});
    rows.push_back({"5 idle Finder RSS anonymous", "podman-only host", "MB", host.anon, idle.anon, baseline, "info",
                    "heap, stacks, relocated library data"});
    tb::append_rows(args.out, rows);
    tb::append_note(args.out, fmt::format("5 idle Finder on the podman-only host: gRPC mapped: {}; largest mappings "
                                          "(MB): {}",
                                          mapped_like(mappings, "libgrpc"), [&] {
                                              std::string out;
                                              for (std::size_t i = 0; i < std::min<std::size_t>(8, mappings.size());
                                                   ++i)
                                                  out += fmt::format("{}{} {:.1f}", i ? ", " : "", mappings[i].first,
                                                                     mappings[i].second);
                                              return out;
                                          }()));
    return 0;
}

int bench_main(int argc, char **argv) {
    benchmark::Initialize(&argc, argv);
    Args args = parse(argc, argv);
    if (::geteuid() != 0) {
        std::cerr << "tf-bench-engines: needs root (it starts dockerd and containerd)\n";
        return 77;
    }
    if (!isolated)
        std::cerr << "tf-bench-engines: not in a PID namespace of its own: other engines on this host are "
                     "found and measured too (tools/bench.sh isolates it)\n";
    if (args.podman_host) return podman_host_main(args);
    for (const char *program : {"dockerd", "docker", "containerd", "ctr", "runc", "containerd-shim-runc-v2", "gcc"})
        if (!lab::which(program)) {
            std::cerr << "tf-bench-engines: " << program << " is not installed\n";
            return 77;
        }
    // TF_BENCH_LOG=debug shows what the Finder does while measured (profiling).
    const char *log_level = std::getenv("TF_BENCH_LOG");
    tf::set_log_level(log_level != nullptr ? log_level : "warn");

    tb::IdleProcesses idle; // first: its children must outlive nothing else
    lab::Lab lab("bench");
    std::cerr << "bench: starting containerd (native + CRI) and dockerd\n";
    lab::Containerd containerd(lab);
    containerd.import_busybox("default");
    containerd.import_busybox("k8s.io");
    containerd.import_pause();
    lab::DockerdConfig dockerd_config;
    dockerd_config.containerd_socket = containerd.socket();
    lab::Dockerd dockerd(lab, dockerd_config);
    dockerd.import_busybox();
    Population population(dockerd, containerd);

    tf::Options options;
    options.online_wait = 10s;
    tf::Finder finder(options);
    finder.containers();
    std::set<std::string> types;
    for (const auto &e : finder.engines()) types.insert(e->type);
    for (const char *t : {"docker.com", "containerd.io", "k8s.io/cri-api"})
        if (!types.contains(t)) throw std::runtime_error(std::string("the Finder did not find the ") + t + " engine");

    Context cx{args, &dockerd, &containerd, &population, &finder, &idle, {}, {}, {}, {}};
    bool cli_done = false;
    // Event latency first, with few processes: a containers() call is then
    // short, so tight polling resolves the latency finely.
    figure4(cx);
    population.clear();
    wait_for_count(finder, 0);
    for (std::size_t c : args.stages) {
        Split s = split_for(c);
        std::cerr << fmt::format("bench: {} containers: {} Docker, {} containerd, {} CRI pods\n", s.total(), s.docker,
                                 s.ctr, s.pods);
        auto t0 = Clock::now();
        idle.resize(0);
        population.grow_to(s);
        wait_for_count(finder, s.total());
        std::cerr << fmt::format("bench: started in {:.1f} s\n", ms_since(t0, Clock::now()) / 1e3);
        figure2(cx, s.total());
        if (s.docker >= 50 && !cli_done) {
            figure3(cx);
            cli_done = true;
        }
        if (c >= 100) figure5(cx, s.total());
    }
    figure2_growth(cx);
    figure5_threads(cx);

    tb::append_rows(args.out, cx.rows);
    for (const auto &n : cx.notes) tb::append_note(args.out, n);
    std::cerr << "bench: removing containers and engines\n";
    idle.resize(0);
    population.clear();
    return 0;
}

// As PID 1 of a namespace: run the bench in a child, reap every orphan
// (engine shims are re-parented to us), pass termination signals on.
pid_t bench_child = -1;
void forward(int sig) {
    if (bench_child > 0) ::kill(bench_child, sig);
}

int reap_as_init(int argc, char **argv) {
    bench_child = ::fork();
    if (bench_child < 0) {
        std::perror("fork");
        return 1;
    }
    if (bench_child == 0) {
        isolated = true;
        try {
            return bench_main(argc, argv);
        } catch (const std::exception &e) {
            std::cerr << "tf-bench-engines: " << e.what() << '\n';
            return 1;
        }
    }
    struct sigaction sa {};
    sa.sa_handler = forward;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    int result = 1;
    while (true) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, 0);
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) break;
        if (pid == bench_child) {
            result = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
            break; // leaving PID 1 kills whatever is left in the namespace
        }
    }
    return result;
}

} // namespace

int main(int argc, char **argv) {
    if (::getpid() == 1) return reap_as_init(argc, argv);
    try {
        return bench_main(argc, argv);
    } catch (const std::exception &e) {
        std::cerr << "tf-bench-engines: " << e.what() << '\n';
        return 1;
    }
}
