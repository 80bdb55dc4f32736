// SPDX-License-Identifier: Apache-2.0
#include "bench_common.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <boost/json.hpp>

#include "procfs/procfs.hpp"

namespace turtlefinder::bench {

std::size_t process_count() { return procfs::ProcessTable::scan("/proc").size(); }

// ---- idle processes --------------------------------------------------------

IdleProcesses::~IdleProcesses() { resize(0); }

std::size_t IdleProcesses::fill_to(std::size_t total) {
    std::size_t now = process_count();
    std::size_t others = now - std::min(now, pids_.size());
    resize(total > others ? total - others : 0);
    return process_count();
}

void IdleProcesses::resize(std::size_t idle) {
    const pid_t parent = ::getpid();
    while (pids_.size() < idle) {
        pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error(std::string("fork of an idle process: ") + std::strerror(errno));
        if (pid == 0) {
            // Only async-signal-safe calls here: the parent may have threads.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(0); // the parent died before prctl
            // Hold none of the parent's sockets and pipes: peers must see them close.
            ::close_range(3, ~0u, 0);
            while (true) ::pause();
        }
        pids_.push_back(pid);
    }
    if (pids_.size() > idle) {
        // Kill all first, then reap: the kernel tears them down in parallel.
        for (std::size_t i = idle; i < pids_.size(); ++i) ::kill(pids_[i], SIGKILL);
        for (std::size_t i = idle; i < pids_.size(); ++i)
            while (::waitpid(pids_[i], nullptr, 0) < 0 && errno == EINTR) {
            }
        pids_.resize(idle);
    }
}

// ---- floor ---------------------------------------------------------------

std::vector<FloorProcess> floor_scan(const char *root) {
    std::vector<FloorProcess> out;
    DIR *dir = ::opendir(root);
    if (dir == nullptr) return out;
    out.reserve(1024);
    char path[32];
    char buffer[1024];
    while (dirent *entry = ::readdir(dir)) {
        const char *name = entry->d_name;
        if (name[0] < '1' || name[0] > '9') continue;
        std::size_t length = std::strlen(name);
        if (length > 10) continue;
        std::memcpy(path, name, length);
        std::memcpy(path + length, "/stat", sizeof "/stat");
        int fd = ::openat(::dirfd(dir), path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
        ::close(fd);
        if (n <= 0) continue;
        buffer[n] = '\0';
        // "PID (comm) S PPID ...": comm ends at the last ')'.
        char *open = std::strchr(buffer, '(');
        char *close = std::strrchr(buffer, ')');
        if (open == nullptr || close == nullptr || close < open || close + 4 >= buffer + n) continue;
        FloorProcess p;
        p.pid = std::atoi(buffer);
        p.ppid = std::atoi(close + 4);
        p.name.assign(open + 1, close);
        out.push_back(std::move(p));
    }
    ::closedir(dir);
    return out;
}

// ---- Google Benchmark ----------------------------------------------------

void Collector::ReportRuns(const std::vector<Run> &runs) {
    for (const auto &run : runs) {
        if (run.run_type != Run::RT_Iteration) continue;
        std::string name = run.benchmark_name();
        if (run.error_occurred) {
            errors.push_back(name + ": " + run.error_message);
            continue;
        }
        if (run.iterations <= 0) continue;
        cpu_seconds[name].push_back(run.cpu_accumulated_time / static_cast<double>(run.iterations));
        wall_seconds[name].push_back(run.real_accumulated_time / static_cast<double>(run.iterations));
    }
}

std::map<std::string, std::vector<double>> run_interleaved(const std::vector<Case> &cases, int repetitions,
                                                           double min_seconds) {
    benchmark::ClearRegisteredBenchmarks();
    for (int rep = 0; rep < repetitions; ++rep)
        for (const auto &c : cases)
            benchmark::RegisterBenchmark((c.name + "/rep:" + std::to_string(rep)).c_str(), c.body)
                ->MinTime(min_seconds)
                ->Unit(benchmark::kMicrosecond);
    Collector collector;
    benchmark::RunSpecifiedBenchmarks(&collector);
    benchmark::ClearRegisteredBenchmarks();
    if (!collector.errors.empty()) throw std::runtime_error("benchmark failed: " + collector.errors.front());
    std::map<std::string, std::vector<double>> out;
    for (auto &[name, samples] : use_wall_clock() ? collector.wall_seconds : collector.cpu_seconds) {
        // "NAME/rep:i" -> NAME (Google Benchmark may append "/real_time").
        auto at = name.find("/rep:");
        auto &dest = out[name.substr(0, at)];
        dest.insert(dest.end(), samples.begin(), samples.end());
    }
    return out;
}

bool use_wall_clock() {
    const char *clock = std::getenv("TF_BENCH_CLOCK");
    return clock != nullptr && std::string_view(clock) == "wall";
}

const char *time_unit() { return use_wall_clock() ? "ms wall" : "ms cpu"; }

// ---- results ---------------------------------------------------------------

namespace {

boost::json::array to_json(const std::vector<double> &samples) {
    boost::json::array a;
    for (double s : samples) a.emplace_back(s);
    return a;
}

void append_line(const std::string &path, const boost::json::object &object) {
    std::ofstream out(path, std::ios::app);
    out << boost::json::serialize(object) << '\n';
    if (!out) throw std::runtime_error("cannot write results to " + path);
}

} // namespace

void append_rows(const std::string &path, const std::vector<Row> &rows) {
    for (const auto &r : rows) {
        boost::json::object o;
        o["figure"] = r.figure;
        o["parameter"] = r.parameter;
        o["unit"] = r.unit;
        o["value"] = to_json(r.value);
        o["baseline"] = to_json(r.baseline);
        o["baseline_name"] = r.baseline_name;
        o["goal"] = r.goal;
        o["note"] = r.note;
        append_line(path, o);
    }
}

void append_note(const std::string &path, const std::string &text) {
    boost::json::object o;
    o["note"] = text;
    append_line(path, o);
}

double median(std::vector<double> samples) {
    if (samples.empty()) return 0;
    std::sort(samples.begin(), samples.end());
    std::size_t n = samples.size();
    return n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
}

std::vector<std::size_t> parse_list(const std::string &text) {
    std::vector<std::size_t> out;
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoul(item));
    return out;
}

Flags &Flags::text(const std::string &name, std::string &to) {
    return valued(name, [&to](const std::string &v) { to = v; });
}

Flags &Flags::count(const std::string &name, int &to) {
    return valued(name, [&to](const std::string &v) { to = std::max(1, std::stoi(v)); });
}

Flags &Flags::counts(const std::string &name, std::vector<std::size_t> &to) {
    return valued(name, [&to](const std::string &v) { to = parse_list(v); });
}

Flags &Flags::valued(const std::string &name, std::function<void(const std::string &)> take) {
    valued_[name] = std::move(take);
    return *this;
}

Flags &Flags::flag(const std::string &name, bool &to) {
    flags_[name] = [&to] { to = true; };
    return *this;
}

void Flags::parse(int argc, char **argv) const {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (auto f = flags_.find(arg); f != flags_.end()) {
            f->second();
        } else if (auto v = valued_.find(arg); v != valued_.end()) {
            if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
            const std::string value = argv[++i];
            try {
                v->second(value);
            } catch (const std::logic_error &) { // std::stoi and friends
                throw std::runtime_error("bad value for " + arg + ": \"" + value + "\"");
            }
        } else {
            throw std::runtime_error("unknown argument " + arg);
        }
    }
}

} // namespace turtlefinder::bench
