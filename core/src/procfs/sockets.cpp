// SPDX-License-Identifier: Apache-2.0
// The sockets a process holds, and the listening unix sockets of its network namespace.
#include "procfs/procfs.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>

#include "procfs/files.hpp"

namespace turtlefinder::procfs {

std::optional<std::uint64_t> parse_socket_link(std::string_view target) { return parse_bracketed(target, "socket:"); }

bool fds_denied(const std::string &root, int pid) {
    if (pid <= 0) return false;
    Fd dir{::open(pid_path(root, pid, "fd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    return !dir.ok() && (errno == EACCES || errno == EPERM);
}

std::vector<std::uint64_t> socket_inodes(const std::string &root, int pid) {
    std::vector<std::uint64_t> inodes;
    if (pid <= 0) return inodes;
    Fd dir{::open(pid_path(root, pid, "fd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!dir.ok()) return inodes;
    char target[64];
    for_each_entry(dir.get(), [&](const char *name) {
        if (name[0] == '.') return;
        ssize_t n = ::readlinkat(dir.get(), name, target, sizeof target);
        if (n <= 0 || static_cast<std::size_t>(n) >= sizeof target) return; // closed meanwhile
        if (auto inode = parse_socket_link(std::string_view(target, static_cast<std::size_t>(n))))
            inodes.push_back(*inode);
    });
    std::sort(inodes.begin(), inodes.end());
    inodes.erase(std::unique(inodes.begin(), inodes.end()), inodes.end());
    return inodes;
}

std::vector<UnixSocket> parse_net_unix(std::string_view content) {
    // Each line: "Num: RefCount Protocol Flags Type St Inode[ Path]", numbers
    // in hex except the inode, which the kernel pads on the left. The path is
    // everything after the single space following the inode, spaces included.
    constexpr std::uint32_t so_acceptcon = 0x10000;
    constexpr std::uint32_t sock_stream = 1;
    std::vector<UnixSocket> sockets;
    std::size_t at = content.find('\n'); // the first line is the header
    while (at != std::string_view::npos && at < content.size()) {
        ++at;
        std::size_t eol = content.find('\n', at);
        std::string_view line = content.substr(at, eol == std::string_view::npos ? eol : eol - at);
        at = eol;

        std::string_view num = next_token(line);
        if (num.empty() || num.back() != ':') continue;
        next_token(line); // RefCount
        next_token(line); // Protocol
        auto flags = parse_number<std::uint32_t>(next_token(line), 16);
        auto type = parse_number<std::uint32_t>(next_token(line), 16);
        auto st = parse_number<std::uint32_t>(next_token(line), 16);
        auto inode = parse_number<std::uint64_t>(next_token(line));
        if (!flags || !type || !st || !inode) continue;
        if ((*flags & so_acceptcon) == 0 || *type != sock_stream) continue;
        if (line.size() < 2 || line.front() != ' ') continue; // unbound: no path
        std::string_view path = line.substr(1);
        if (path.front() == '@') continue; // abstract namespace: no file to resolve

        bool seen = std::any_of(sockets.begin(), sockets.end(), [&](const UnixSocket &s) { return s.inode == *inode; });
        if (!seen) sockets.push_back(UnixSocket{*inode, std::string(path)});
    }
    return sockets;
}

std::vector<UnixSocket> listening_unix_sockets(const std::string &root, int pid) {
    if (pid <= 0) return {};
    auto content = read_file(pid_path(root, pid, "net/unix"));
    if (!content) return {};
    return parse_net_unix(*content);
}

} // namespace turtlefinder::procfs
