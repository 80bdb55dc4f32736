// SPDX-License-Identifier: Apache-2.0
// Reading procfs files safely: what the process table, socket and path code
// share. Internal to procfs.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "procfs/procfs.hpp"

namespace turtlefinder::procfs {

template <typename T>
std::optional<T> parse_number(std::string_view text, int base = 10) {
    T value{};
    const char *end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value, base);
    if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
    return value;
}

// Splits off the next run of non-space characters; `text` keeps the rest.
std::string_view next_token(std::string_view &text);

// ROOT/PID/LEAF (ROOT/PID without a leaf).
std::string pid_path(const std::string &root, int pid, std::string_view leaf);

// The whole file; nullopt if it cannot be read or is implausibly large.
std::optional<std::string> read_file(const std::string &path);

// Calls `on_entry(name)` for every entry of the directory `dir_fd` (consumed
// position, fd not closed). getdents64 into a stack buffer: no DIR allocation.
template <typename F>
void for_each_entry(int dir_fd, F &&on_entry) {
    alignas(dirent64) char buffer[16384];
    while (true) {
        ssize_t n = ::getdents64(dir_fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        for (ssize_t offset = 0; offset < n;) {
            auto *entry = reinterpret_cast<dirent64 *>(buffer + offset);
            offset += entry->d_reclen;
            on_entry(static_cast<const char *>(entry->d_name));
        }
    }
}

// The N of a link target "PREFIX[N]" ("socket:[N]", "pid:[N]").
std::optional<std::uint64_t> parse_bracketed(std::string_view target, std::string_view prefix);

// The target of a symlink; nullopt if unreadable or longer than 4 KiB.
std::optional<std::string> read_link(const std::string &path);

} // namespace turtlefinder::procfs
