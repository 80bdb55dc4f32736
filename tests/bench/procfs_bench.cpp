// SPDX-License-Identifier: Apache-2.0
// Figure 1: ProcessTable::scan against the floor (read every /proc/PID/stat
// for name and PPID, nothing else) at several process-table sizes. The table
// is grown with idle children of this process, removed afterwards.
//
// usage: tf-bench-procfs --out FILE [--reps N] [--sizes host,1000,5000,10000]
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include "bench_common.hpp"
#include "procfs/procfs.hpp"

namespace tb = turtlefinder::bench;

namespace {

struct Args {
    std::string out;
    int reps = 10;
    std::vector<long> sizes = {0, 1000, 5000, 10000}; // 0: whatever the host has
};

Args parse(int argc, char **argv) {
    Args a;
    tb::Flags()
        .text("--out", a.out)
        .count("--reps", a.reps)
        .valued("--sizes",
                [&a](const std::string &text) {
                    a.sizes.clear();
                    std::istringstream in(text);
                    for (std::string item; std::getline(in, item, ',');)
                        a.sizes.push_back(item == "host" ? 0 : std::stol(item));
                })
        .parse(argc, argv);
    if (a.out.empty()) throw std::runtime_error("--out FILE is required");
    return a;
}

} // namespace

int main(int argc, char **argv) {
    benchmark::Initialize(&argc, argv); // takes --benchmark_* flags, leaves ours
    try {
        Args args = parse(argc, argv);
        tb::IdleProcesses idle;
        std::vector<tb::Row> rows;
        for (long size : args.sizes) {
            if (size <= 0) idle.resize(0);
            std::size_t p = size <= 0 ? tb::process_count() : idle.fill_to(static_cast<std::size_t>(size));
            std::cerr << "bench: process scan at P=" << p << " (" << idle.size() << " idle children)\n";
            std::size_t scanned = 0, floored = 0;
            auto samples = tb::run_interleaved(
                {
                    {"floor",
                     [&](benchmark::State &state) {
                         for (auto _ : state) {
                             auto v = tb::floor_scan();
                             floored = v.size();
                             benchmark::DoNotOptimize(v.data());
                         }
                     }},
                    {"scan",
                     [&](benchmark::State &state) {
                         for (auto _ : state) {
                             auto t = turtlefinder::procfs::ProcessTable::scan("/proc");
                             scanned = t.size();
                             benchmark::DoNotOptimize(&t);
                         }
                     }},
                },
                args.reps, 0.05);
            // Both saw the same table (zombies aside): otherwise the ratio means nothing.
            if (scanned + 50 < floored || floored + 50 < scanned)
                throw std::runtime_error("scan saw " + std::to_string(scanned) + " processes, the floor " +
                                         std::to_string(floored));
            tb::Row row;
            row.figure = "1 process scan";
            row.parameter = (size <= 0 ? "P=host " : "P=") + std::to_string(p);
            row.unit = tb::time_unit();
            for (double s : samples["scan"]) row.value.push_back(s * 1e3);
            for (double s : samples["floor"]) row.baseline.push_back(s * 1e3);
            row.baseline_name = "floor: read stat for name+PPID";
            row.goal = "ratio<=1.2";
            rows.push_back(std::move(row));
        }
        idle.resize(0);
        tb::append_rows(args.out, rows);
        return 0;
    } catch (const std::exception &e) {
        std::cerr << "tf-bench-procfs: " << e.what() << '\n';
        return 1;
    }
}
