// SPDX-License-Identifier: Apache-2.0
#include "procfs/files.hpp"

#include <fcntl.h>

namespace turtlefinder::procfs {

namespace {

// Files we slurp whole (status, net/unix) are small; a cap keeps a hostile
// fixture (say, a link to an endless file) from eating memory.
constexpr std::size_t max_file_size = 64u << 20;

} // namespace

void Fd::reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

// Splits off the next run of non-space characters; `text` keeps the rest.
std::string_view next_token(std::string_view &text) {
    std::size_t start = text.find_first_not_of(' ');
    if (start == std::string_view::npos) {
        text = {};
        return {};
    }
    std::size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view token = text.substr(start, end - start);
    text.remove_prefix(end);
    return token;
}

std::string pid_path(const std::string &root, int pid, std::string_view leaf) {
    std::string path = root;
    path += '/';
    path += std::to_string(pid);
    if (!leaf.empty()) {
        path += '/';
        path += leaf;
    }
    return path;
}

std::optional<std::string> read_file(const std::string &path) {
    Fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY)};
    if (!fd.ok()) return std::nullopt;
    std::string content;
    char buffer[8192];
    while (true) {
        ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) continue;
            return std::nullopt; // ESRCH: the process went away while we read
        }
        if (n == 0) break;
        content.append(buffer, static_cast<std::size_t>(n));
        if (content.size() > max_file_size) return std::nullopt;
    }
    return content;
}

std::optional<std::uint64_t> parse_bracketed(std::string_view target, std::string_view prefix) {
    if (target.size() < prefix.size() + 2 || target.substr(0, prefix.size()) != prefix) return std::nullopt;
    target.remove_prefix(prefix.size());
    if (target.front() != '[' || target.back() != ']') return std::nullopt;
    return parse_number<std::uint64_t>(target.substr(1, target.size() - 2));
}

std::optional<std::string> read_link(const std::string &path) {
    char buffer[4096];
    ssize_t n = ::readlink(path.c_str(), buffer, sizeof buffer);
    if (n < 0 || static_cast<std::size_t>(n) >= sizeof buffer) return std::nullopt;
    return std::string(buffer, static_cast<std::size_t>(n));
}

} // namespace turtlefinder::procfs
