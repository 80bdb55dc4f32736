// SPDX-License-Identifier: Apache-2.0
#include "procfs/procfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <deque>

namespace turtlefinder::procfs {

namespace {

// Owns one fd; procfs code never leaks one, even on early returns.
class Fd {
public:
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const noexcept { return fd_; }
    bool ok() const noexcept { return fd_ >= 0; }

private:
    int fd_;
};

// Files we slurp whole (status, net/unix) are small; a cap keeps a hostile
// fixture (say, a link to an endless file) from eating memory.
constexpr std::size_t max_file_size = 64u << 20;

// A stat line holds 52 fields; the kernel's comm is at most 64 bytes, so the
// fields up to starttime (the 22nd) fit easily.
constexpr std::size_t stat_buffer_size = 1024;

// Linux's own limit on symlinks followed during one lookup (MAXSYMLINKS).
constexpr int max_symlinks = 40;

template <typename T>
std::optional<T> parse_number(std::string_view text, int base = 10) {
    T value{};
    const char *end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value, base);
    if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
    return value;
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

// Reads a file with one read() into `buffer`; returns the byte count or -1.
ssize_t read_once_at(int dir_fd, const char *relative, char *buffer, std::size_t size) {
    int fd = ::openat(dir_fd, relative, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return -1;
    ssize_t n;
    do {
        n = ::read(fd, buffer, size);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    return n;
}

bool is_pid_name(const char *name) {
    if (*name < '1' || *name > '9') return false;
    for (const char *p = name + 1; *p != '\0'; ++p)
        if (*p < '0' || *p > '9') return false;
    return true;
}

void link_children(std::unordered_map<int, Process> &processes) {
    for (auto &[pid, process] : processes) {
        if (process.ppid == pid) continue; // a fixture's self-parent must not loop
        auto parent = processes.find(process.ppid);
        if (parent != processes.end()) parent->second.children.push_back(pid);
    }
    for (auto &[pid, process] : processes)
        std::sort(process.children.begin(), process.children.end());
}

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

std::optional<std::uint64_t> parse_bracketed(std::string_view target, std::string_view prefix) {
    if (target.size() < prefix.size() + 2 || target.substr(0, prefix.size()) != prefix)
        return std::nullopt;
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

} // namespace

// ---- process table ----------------------------------------------------------

std::optional<Process> parse_stat(std::string_view content) {
    // comm may hold spaces and ')' itself, so it ends at the LAST ')'.
    std::size_t open = content.find('(');
    std::size_t close = content.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open)
        return std::nullopt;

    std::string_view head = content.substr(0, open);
    while (!head.empty() && head.back() == ' ') head.remove_suffix(1);
    auto pid = parse_number<int>(head);
    if (!pid || *pid <= 0) return std::nullopt;

    std::string_view rest = content.substr(close + 1);
    if (std::size_t eol = rest.find('\n'); eol != std::string_view::npos) rest = rest.substr(0, eol);

    std::string_view state = next_token(rest);
    if (state.size() != 1) return std::nullopt;
    auto ppid = parse_number<int>(next_token(rest));
    if (!ppid || *ppid < 0) return std::nullopt;

    Process process;
    process.pid = *pid;
    process.ppid = *ppid;
    process.state = state.front();
    // starttime is field 22 (state and ppid were 3 and 4). Minimal stat
    // lines (hand-written fixtures) may stop earlier; then it stays 0.
    for (int field = 5; field < 22; ++field) next_token(rest);
    std::string_view token = next_token(rest);
    if (!token.empty()) {
        auto starttime = parse_number<std::uint64_t>(token);
        if (!starttime) return std::nullopt;
        process.starttime = *starttime;
    }
    process.name.assign(content.substr(open + 1, close - open - 1));
    return process;
}

std::optional<Process> read_process(const std::string &root, int pid) {
    if (pid <= 0) return std::nullopt;
    char buffer[stat_buffer_size];
    ssize_t n = read_once_at(AT_FDCWD, pid_path(root, pid, "stat").c_str(), buffer, sizeof buffer);
    if (n <= 0) return std::nullopt;
    return parse_stat(std::string_view(buffer, static_cast<std::size_t>(n)));
}

ProcessTable ProcessTable::scan(const std::string &root) {
    ProcessTable table;
    table.root_ = root;
    Fd root_fd{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!root_fd.ok()) return table;
    table.processes_.reserve(1024);

    // "PID/stat" built in place: no allocation per process but the name.
    char relative[32];
    char buffer[stat_buffer_size];
    for_each_entry(root_fd.get(), [&](const char *name) {
        if (!is_pid_name(name)) return;
        std::size_t length = std::strlen(name);
        if (length > 10) return; // not a PID (pid_max is at most 2^22)
        std::memcpy(relative, name, length);
        std::memcpy(relative + length, "/stat", sizeof "/stat");
        // Gone since getdents (ENOENT) or while reading (ESRCH): skip quietly.
        ssize_t n = read_once_at(root_fd.get(), relative, buffer, sizeof buffer);
        if (n <= 0) return;
        auto process = parse_stat(std::string_view(buffer, static_cast<std::size_t>(n)));
        if (!process || process->state == 'Z') return;
        int pid = process->pid;
        table.processes_.insert_or_assign(pid, std::move(*process));
    });
    link_children(table.processes_);
    return table;
}

ProcessTable ProcessTable::from(std::vector<Process> processes, std::string root) {
    ProcessTable table;
    table.root_ = std::move(root);
    for (auto &process : processes) {
        process.children.clear(); // derived below, never trusted from the caller
        int pid = process.pid;
        table.processes_.insert_or_assign(pid, std::move(process));
    }
    link_children(table.processes_);
    return table;
}

const Process *ProcessTable::find(int pid) const {
    auto it = processes_.find(pid);
    return it == processes_.end() ? nullptr : &it->second;
}

bool ProcessTable::is_self_or_ancestor(int ancestor, int pid) const {
    // Bounded by the table size: a PPID cycle (a broken fixture, or PID reuse
    // between reads) cannot make this spin.
    for (std::size_t steps = 0; steps <= processes_.size(); ++steps) {
        if (pid == ancestor) return true;
        const Process *process = find(pid);
        if (process == nullptr || process->ppid == pid) return false;
        pid = process->ppid;
    }
    return false;
}

// ---- namespaces -------------------------------------------------------------

std::optional<std::vector<int>> parse_nspid(std::string_view status_content) {
    constexpr std::string_view key = "NSpid:";
    std::size_t at = 0;
    while (at < status_content.size()) {
        std::size_t eol = status_content.find('\n', at);
        if (eol == std::string_view::npos) eol = status_content.size();
        std::string_view line = status_content.substr(at, eol - at);
        at = eol + 1;
        if (line.substr(0, key.size()) != key) continue;

        line.remove_prefix(key.size());
        std::vector<int> chain;
        while (true) {
            std::size_t start = line.find_first_not_of(" \t");
            if (start == std::string_view::npos) break;
            std::size_t end = line.find_first_of(" \t", start);
            if (end == std::string_view::npos) end = line.size();
            auto pid = parse_number<int>(line.substr(start, end - start));
            if (!pid || *pid <= 0) return std::nullopt;
            chain.push_back(*pid);
            line.remove_prefix(end);
        }
        if (chain.empty()) return std::nullopt;
        return chain;
    }
    return std::nullopt; // kernels before 4.1 have no NSpid line
}

std::optional<std::vector<int>> read_nspid(const std::string &root, int pid) {
    if (pid <= 0) return std::nullopt;
    auto content = read_file(pid_path(root, pid, "status"));
    if (!content) return std::nullopt;
    return parse_nspid(*content);
}

std::optional<std::uint64_t> pid_namespace(const std::string &root, int pid) {
    if (pid <= 0) return std::nullopt;
    // The link text "pid:[INODE]" names the namespace; reading it needs no
    // access to the namespace file itself, and works in fixture trees too.
    auto target = read_link(pid_path(root, pid, "ns/pid"));
    if (!target) return std::nullopt;
    return parse_bracketed(*target, "pid:");
}

// ---- sockets ----------------------------------------------------------------

std::optional<std::uint64_t> parse_socket_link(std::string_view target) {
    return parse_bracketed(target, "socket:");
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

        bool seen = std::any_of(sockets.begin(), sockets.end(),
                                [&](const UnixSocket &s) { return s.inode == *inode; });
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

// ---- paths inside a root ----------------------------------------------------

std::optional<std::string> resolve_in_root(const std::string &root_dir, std::string_view path) {
    if (path.empty() || path.front() != '/') return std::nullopt;
    // A NUL would silently cut the C string handed to lstat.
    if (path.find('\0') != std::string_view::npos) return std::nullopt;

    std::string base = root_dir;
    while (!base.empty() && base.back() == '/') base.pop_back();

    // Components still to walk, front first; a symlink's target is pushed in
    // front of what remains, as the kernel does.
    std::deque<std::string> pending;
    auto push_front_components = [&](std::string_view text) {
        std::vector<std::string_view> parts;
        while (!text.empty()) {
            std::size_t slash = text.find('/');
            std::string_view part = text.substr(0, slash);
            if (!part.empty() && part != ".") parts.emplace_back(part);
            if (slash == std::string_view::npos) break;
            text.remove_prefix(slash + 1);
        }
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) pending.emplace_front(*it);
    };
    push_front_components(path);

    // `resolved` holds only components verified (by lstat) to be real
    // directories below base, so base + resolved never passes through a link.
    std::vector<std::string> resolved;
    auto current = [&] {
        std::string result = base;
        for (const auto &part : resolved) {
            result += '/';
            result += part;
        }
        return result;
    };

    int links = 0;
    while (!pending.empty()) {
        std::string part = std::move(pending.front());
        pending.pop_front();
        if (part == "..") {
            if (!resolved.empty()) resolved.pop_back(); // never above the root
            continue;
        }
        std::string candidate = current() + '/' + part;
        struct stat info{};
        if (::lstat(candidate.c_str(), &info) != 0) {
            if (errno == ENOENT && pending.empty()) {
                resolved.push_back(std::move(part)); // a missing last name is fine
                break;
            }
            return std::nullopt;
        }
        if (S_ISLNK(info.st_mode)) {
            if (++links > max_symlinks) return std::nullopt;
            auto target = read_link(candidate);
            if (!target || target->empty()) return std::nullopt;
            if (target->front() == '/') resolved.clear(); // absolute: restart at the root
            push_front_components(*target);
            continue;
        }
        resolved.push_back(std::move(part));
        if (!S_ISDIR(info.st_mode) && !pending.empty()) return std::nullopt;
    }
    std::string result = current();
    if (resolved.empty()) result += '/';
    return result;
}

} // namespace turtlefinder::procfs
