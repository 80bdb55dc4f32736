// SPDX-License-Identifier: Apache-2.0
// Shared pieces of the benchmarks: idle processes that make the process table
// big, the floor a process scan is measured against, Google Benchmark runs
// collected in memory, and the result rows the report script turns into one
// table.
#pragma once

#include <benchmark/benchmark.h>

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace turtlefinder::bench {

// ---- process table size --------------------------------------------------

// Non-zombie processes currently visible in /proc (what a scan reports).
std::size_t process_count();

// Children that only pause(), to give the process table a chosen size. They
// die with the thread that forked them (PR_SET_PDEATHSIG), so a crashed bench
// leaves none behind; the destructor kills and reaps them. Use from one
// thread (the one that stays alive for the whole bench).
class IdleProcesses {
public:
    IdleProcesses() = default;
    ~IdleProcesses();
    IdleProcesses(const IdleProcesses &) = delete;
    IdleProcesses &operator=(const IdleProcesses &) = delete;

    // Spawns or removes idle children until the host shows about `total`
    // processes (never fewer idle children than 0). Returns the count seen.
    std::size_t fill_to(std::size_t total);
    void resize(std::size_t idle);
    std::size_t size() const { return pids_.size(); }

private:
    std::vector<pid_t> pids_;
};

// ---- the floor of a process scan -----------------------------------------

struct FloorProcess {
    int pid = 0;
    int ppid = 0;
    std::string name; // comm: at most 15 bytes, no allocation (SSO)
};

// The least a process scan must do: read each /proc/PID/stat once and keep
// PID, PPID and name in a vector. No map, no children, no state filter.
std::vector<FloorProcess> floor_scan(const char *root = "/proc");

// ---- collecting Google Benchmark runs ------------------------------------

// Seconds per iteration of each non-aggregate run, by run name, in the
// order they ran: CPU time of the measuring thread (user + system, which is
// where /proc reads are paid) and wall time. Errors are kept by run name.
class Collector : public benchmark::BenchmarkReporter {
public:
    bool ReportContext(const Context &) override { return true; }
    void ReportRuns(const std::vector<Run> &runs) override;

    std::map<std::string, std::vector<double>> cpu_seconds, wall_seconds;
    std::vector<std::string> errors;
};

// Which clock the in-process figures report. CPU time of the calling thread
// is the default: on a shared, busy machine wall time mostly measures the
// wait for a core, alike for a figure and its baseline, which hides their
// ratio. TF_BENCH_CLOCK=wall selects wall time.
bool use_wall_clock();
// "ms cpu" or "ms wall", for the rows' unit.
const char *time_unit();

// Registers `body` once per repetition under "NAME/rep:i", interleaving the
// given benchmarks (a1 b1 c1 a2 b2 c2 ...) so that a drift of the machine's
// load hits all of them alike; runs them; returns the per-iteration seconds of
// each benchmark by NAME, on the clock use_wall_clock() selects. Throws if a
// run failed.
struct Case {
    std::string name;
    std::function<void(benchmark::State &)> body;
};
std::map<std::string, std::vector<double>> run_interleaved(const std::vector<Case> &cases, int repetitions,
                                                           double min_seconds);

// ---- results ---------------------------------------------------------------

// One line of the final table. `value` and `baseline` are samples (one per
// repetition) in `unit`; the report computes min/median/max and the ratio of
// medians and judges `goal`:
//   "ratio<=X"  median(value)/median(baseline) <= X
//   "ratio<X"   the same, strictly
//   "delta<X"   median of (value[i] - baseline[i]) < X (paired samples, unit)
//   "value<X"   median(value) < X
//   "value<=X"  median(value) <= X
//   "info"      reported, not judged
struct Row {
    std::string figure;
    std::string parameter;
    std::string unit;
    std::vector<double> value;
    std::vector<double> baseline;
    std::string baseline_name;
    std::string goal;
    std::string note;
};

// Appends rows (JSON lines) to `path`; the report script reads them.
void append_rows(const std::string &path, const std::vector<Row> &rows);
// Appends a free-text note printed under the table.
void append_note(const std::string &path, const std::string &text);

// Sorted-copy statistics used by the benches themselves (fill-in checks).
double median(std::vector<double> samples);

// A comma-separated list of counts from the command line ("10,100").
std::vector<std::size_t> parse_list(const std::string &text);

// A bench's command line: each flag writes into the member it names.
class Flags {
public:
    Flags &text(const std::string &name, std::string &to);
    Flags &count(const std::string &name, int &to); // at least 1
    Flags &counts(const std::string &name, std::vector<std::size_t> &to); // "10,100"
    Flags &valued(const std::string &name, std::function<void(const std::string &)> take);
    Flags &flag(const std::string &name, bool &to);
    // Throws std::runtime_error naming an unknown flag or one missing its value.
    void parse(int argc, char **argv) const;

private:
    std::map<std::string, std::function<void(const std::string &)>> valued_;
    std::map<std::string, std::function<void()>> flags_;
};

} // namespace turtlefinder::bench
