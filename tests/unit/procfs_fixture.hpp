// SPDX-License-Identifier: Apache-2.0
// Fixture /proc trees built in a temporary directory by the test itself, so
// procfs code can be exercised on exactly the oddities a real /proc shows.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "procfs/procfs.hpp"
#include "testing.hpp"

namespace tftest {

// One entry of a process table built in memory (hierarchy and query tests).
inline turtlefinder::procfs::Process proc(int pid, int ppid, std::string name) {
    turtlefinder::procfs::Process p;
    p.pid = pid;
    p.ppid = ppid;
    p.name = std::move(name);
    p.state = 'S';
    return p;
}

// A fake procfs root. Paths given to the helpers are relative to it.
class ProcFixture {
public:
    ProcFixture() : dir_("tf-proc-") {}
    const std::string &root() const { return dir_.path(); }
    std::string path(std::string_view relative) const { return root() + "/" + std::string(relative); }

    void mkdirs(std::string_view relative) const { std::filesystem::create_directories(path(relative)); }

    void write(std::string_view relative, std::string_view content) const {
        auto full = std::filesystem::path(path(relative));
        std::filesystem::create_directories(full.parent_path());
        std::ofstream out(full, std::ios::binary | std::ios::trunc);
        out.write(content.data(), static_cast<std::streamsize>(content.size()));
        if (!out) throw std::runtime_error("cannot write " + full.string());
    }

    // Creates `relative` as a symlink with the given (possibly dangling) target.
    void symlink(std::string_view target, std::string_view relative) const {
        auto full = std::filesystem::path(path(relative));
        std::filesystem::create_directories(full.parent_path());
        if (::symlink(std::string(target).c_str(), full.c_str()) != 0)
            throw std::runtime_error("cannot symlink " + full.string());
    }

    // A full-length stat line as the kernel writes it (52 fields).
    static std::string stat_line(int pid, std::string_view name, char state, int ppid, std::uint64_t starttime) {
        std::string line = std::to_string(pid) + " (" + std::string(name) + ") " + state + " " + std::to_string(ppid) +
                           " 1 1 0 -1 4194560 1406 0 0 0 3 5 0 0 20 0 1 0 " + std::to_string(starttime) +
                           " 23515136 2318 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 "
                           "1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        return line;
    }

    void add_process(int pid, int ppid, std::string_view name, char state = 'S', std::uint64_t starttime = 1000) const {
        write(std::to_string(pid) + "/stat", stat_line(pid, name, state, ppid, starttime));
    }

    // fd links as /proc/PID/fd shows them: "socket:[N]", "pipe:[N]", paths.
    void add_fd(int pid, int fd, std::string_view target) const {
        symlink(target, std::to_string(pid) + "/fd/" + std::to_string(fd));
    }

private:
    TempDir dir_;
};

} // namespace tftest
