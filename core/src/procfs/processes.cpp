// SPDX-License-Identifier: Apache-2.0
// The process table, and the PID namespaces of processes.
#include "procfs/procfs.hpp"

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstddef>
#include <cstring>

#include "procfs/files.hpp"

namespace turtlefinder::procfs {

namespace {

// A stat line holds 52 fields; the kernel's comm is at most 64 bytes, so the
// fields up to starttime (the 22nd) fit easily.
constexpr std::size_t stat_buffer_size = 1024;

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

// Every scan starts a lineage of its own: a cursor of one table says
// nothing about another.
std::atomic<std::uint64_t> next_lineage{1};

// What the scan and reread() share: one process read from its stat, relative
// to the procfs root `root_fd`; nullopt if it is gone or a zombie (state Z).
std::optional<Process> read_live(int root_fd, const char *pid_name, std::size_t length) {
    if (length > 10) return std::nullopt; // not a PID (pid_max is at most 2^22)
    // "PID/stat" built in place: no allocation per process but the name.
    char relative[32];
    std::memcpy(relative, pid_name, length);
    std::memcpy(relative + length, "/stat", sizeof "/stat");
    char buffer[stat_buffer_size];
    // Gone since getdents (ENOENT) or while reading (ESRCH): skip quietly.
    ssize_t n = read_once_at(root_fd, relative, buffer, sizeof buffer);
    if (n <= 0) return std::nullopt;
    auto process = parse_stat(std::string_view(buffer, static_cast<std::size_t>(n)));
    if (!process || process->state == 'Z') return std::nullopt;
    return process;
}

void link_child(std::unordered_map<int, Process> &processes, int pid, int ppid) {
    if (ppid == pid) return; // a fixture's self-parent must not loop
    auto parent = processes.find(ppid);
    if (parent == processes.end()) return;
    auto &children = parent->second.children;
    auto at = std::lower_bound(children.begin(), children.end(), pid);
    if (at == children.end() || *at != pid) children.insert(at, pid);
}

void unlink_child(std::unordered_map<int, Process> &processes, int pid, int ppid) {
    auto parent = processes.find(ppid);
    if (parent == processes.end()) return;
    auto &children = parent->second.children;
    auto at = std::lower_bound(children.begin(), children.end(), pid);
    if (at != children.end() && *at == pid) children.erase(at);
}

void link_children(std::unordered_map<int, Process> &processes) {
    for (auto &[pid, process] : processes) {
        if (process.ppid == pid) continue; // a fixture's self-parent must not loop
        auto parent = processes.find(process.ppid);
        if (parent != processes.end()) parent->second.children.push_back(pid);
    }
    for (auto &[pid, process] : processes) std::sort(process.children.begin(), process.children.end());
}

} // namespace

std::optional<Process> parse_stat(std::string_view content) {
    // comm may hold spaces and ')' itself, so it ends at the LAST ')'.
    std::size_t open = content.find('(');
    std::size_t close = content.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;

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
    table.lineage_ = next_lineage++;
    Fd root_fd{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!root_fd.ok()) return table;
    table.processes_.reserve(1024);

    for_each_entry(root_fd.get(), [&](const char *name) {
        if (!is_pid_name(name)) return;
        auto process = read_live(root_fd.get(), name, std::strlen(name));
        if (!process) return;
        int pid = process->pid;
        table.processes_.insert_or_assign(pid, std::move(*process));
    });
    link_children(table.processes_);
    return table;
}

void ProcessTable::reread(std::vector<int> pids) {
    std::sort(pids.begin(), pids.end());
    pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
    ++version_;
    Fd root_fd{::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    // First every entry as /proc shows it now, then the children links: a
    // parent and its new child may come in either order.
    for (int pid : pids) {
        if (pid <= 0) continue;
        history_.emplace_back(version_, pid);
        std::optional<Process> now;
        if (root_fd.ok()) {
            char name[16];
            auto [end, ec] = std::to_chars(name, name + sizeof name, pid);
            if (ec == std::errc()) now = read_live(root_fd.get(), name, static_cast<std::size_t>(end - name));
        }
        auto it = processes_.find(pid);
        if (it != processes_.end()) {
            if (!now || now->ppid != it->second.ppid) unlink_child(processes_, pid, it->second.ppid);
            if (!now) {
                processes_.erase(it); // its children were re-parented: they are reread too
                continue;
            }
            // A reused PID keeps the list until its old children are reread.
            now->children = std::move(it->second.children);
            it->second = std::move(*now);
        } else if (now) {
            processes_.emplace(pid, std::move(*now));
        }
    }
    for (int pid : pids)
        if (auto it = processes_.find(pid); it != processes_.end()) link_child(processes_, pid, it->second.ppid);

    // The history is for readers one or a few rereads behind; one further
    // behind than the table is large rescans anyway.
    if (history_.size() > 4096 + 2 * processes_.size()) {
        auto half = history_.begin() + static_cast<std::ptrdiff_t>(history_.size() / 2);
        history_floor_ = half->first - 1;
        auto keep = std::lower_bound(history_.begin(), history_.end(), std::make_pair(half->first, 0),
                                     [](const auto &a, const auto &b) { return a.first < b.first; });
        history_.erase(history_.begin(), keep);
    }
}

std::optional<std::vector<int>> ProcessTable::changed_since(Cursor since) const {
    if (since.lineage != lineage_ || since.version < history_floor_ || since.version > version_) return std::nullopt;
    auto first = std::upper_bound(history_.begin(), history_.end(), since.version,
                                  [](std::uint64_t v, const auto &entry) { return v < entry.first; });
    std::vector<int> out;
    out.reserve(static_cast<std::size_t>(history_.end() - first));
    for (auto it = first; it != history_.end(); ++it) out.push_back(it->second);
    return out;
}

ProcessTable ProcessTable::from(std::vector<Process> processes, std::string root) {
    ProcessTable table;
    table.root_ = std::move(root);
    table.lineage_ = next_lineage++;
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

std::optional<std::uint32_t> parse_uid(std::string_view status_content) {
    constexpr std::string_view key = "\nUid:";
    std::size_t at = status_content.find(key);
    if (at == std::string_view::npos) return std::nullopt;
    std::string_view rest = status_content.substr(at + key.size());
    std::size_t start = rest.find_first_not_of(" \t");
    if (start == std::string_view::npos) return std::nullopt;
    std::size_t end = rest.find_first_of(" \t\n", start);
    return parse_number<std::uint32_t>(rest.substr(start, end == std::string_view::npos ? end : end - start));
}

std::optional<std::uint32_t> read_uid(const std::string &root, int pid) {
    if (pid <= 0) return std::nullopt;
    auto content = read_file(pid_path(root, pid, "status"));
    if (!content) return std::nullopt;
    return parse_uid(*content);
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

} // namespace turtlefinder::procfs
