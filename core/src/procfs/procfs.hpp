// SPDX-License-Identifier: Apache-2.0
// Reading /proc: the process table, socket fds, listening unix sockets, and
// path resolution inside a process's root. Everything takes the procfs root
// (normally "/proc") so tests can use fixture trees. Nothing here logs above
// debug; callers decide what matters.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace turtlefinder::procfs {

// Owns one fd; procfs code never leaks one, even on early returns.
class Fd {
public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd &operator=(Fd &&other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    ~Fd() { reset(); }
    int get() const noexcept { return fd_; }
    bool ok() const noexcept { return fd_ >= 0; }

private:
    void reset() noexcept;
    int fd_ = -1;
};

struct Process {
    int pid = 0;
    int ppid = 0;
    char state = '?';
    std::uint64_t starttime = 0; // clock ticks after boot: tells a reused PID apart
    std::string name; // comm, may contain spaces and ')'
    std::vector<int> children; // sorted
};

// A process identity that survives PID reuse.
struct ProcessKey {
    int pid = 0;
    std::uint64_t starttime = 0;
    auto operator<=>(const ProcessKey &) const = default;
};

// The process table: only /proc/PID/stat is read per process. Made by one
// scan; kept current by reread() of the processes that changed (see
// ProcessTracker), which gives what a new scan would give for them.
class ProcessTable {
public:
    ProcessTable() = default;
    // Reads every numeric entry of `root`; processes vanishing mid-scan and
    // zombies (state Z) are skipped.
    static ProcessTable scan(const std::string &root = "/proc");
    // Builds a table from given processes (tests); children links are derived.
    static ProcessTable from(std::vector<Process> processes, std::string root = "/proc");

    // Reads these processes again, as a scan would: added, changed (PPID,
    // name, a reused PID) or gone (vanished, or a zombie). The others stay.
    void reread(std::vector<int> pids);

    // Where a reader of this table stands, to ask later what changed since.
    struct Cursor {
        std::uint64_t lineage = 0; // which scan the table descends from
        std::uint64_t version = 0; // rereads since that scan
    };
    Cursor cursor() const { return {lineage_, version_}; }
    // The PIDs reread() touched since `since` (unsorted, may repeat), or
    // nullopt when that is not known (`since` is of another scan, or so old
    // that its history was dropped): then any process may have changed.
    std::optional<std::vector<int>> changed_since(Cursor since) const;

    const Process *find(int pid) const;
    const std::unordered_map<int, Process> &processes() const { return processes_; }
    std::size_t size() const { return processes_.size(); }
    const std::string &root() const { return root_; }
    // True if `ancestor` is `pid` itself or one of its ancestors (bounded walk).
    bool is_self_or_ancestor(int ancestor, int pid) const;

private:
    std::string root_;
    std::unordered_map<int, Process> processes_;
    std::uint64_t lineage_ = 0;
    std::uint64_t version_ = 0;
    std::uint64_t history_floor_ = 0; // changed_since() answers for versions from here on
    std::vector<std::pair<std::uint64_t, int>> history_; // (version, PID), by version
};

// Reads one process's stat; nullopt if it vanished or cannot be parsed.
// Unlike scan(), a zombie is returned (state 'Z'): the caller asked for it.
std::optional<Process> read_process(const std::string &root, int pid);
// Parses the content of /proc/PID/stat (exposed for tests and fuzzing).
// PID, comm, state and PPID are required; starttime is 0 when a (hand-made)
// line stops before it.
std::optional<Process> parse_stat(std::string_view content);

// The NSpid chain of /proc/PID/status: the PID in each PID namespace from the
// outermost visible to the process's own. nullopt if unreadable or if the
// status has no NSpid line (kernels before 4.1).
std::optional<std::vector<int>> read_nspid(const std::string &root, int pid);
std::optional<std::vector<int>> parse_nspid(std::string_view status_content);
// The real UID on the Uid line of /proc/PID/status, as the reader's user
// namespace sees it (a rootless engine's "root" shows as its user's UID);
// nullopt if unreadable or malformed.
std::optional<std::uint32_t> read_uid(const std::string &root, int pid);
std::optional<std::uint32_t> parse_uid(std::string_view status_content);
// Inode of /proc/PID/ns/pid (from its link text "pid:[N]"); nullopt if unreadable.
std::optional<std::uint64_t> pid_namespace(const std::string &root, int pid);

// True if the process's fd directory cannot be listed for lack of permission
// (another user's process, and we are not root): its sockets are unknowable,
// not absent. False when readable, and when the process is gone.
bool fds_denied(const std::string &root, int pid);
// Inodes of the sockets among the process's fds ("socket:[N]"), sorted, unique.
std::vector<std::uint64_t> socket_inodes(const std::string &root, int pid);
// Parses an fd link target "socket:[N]"; nullopt for anything else.
std::optional<std::uint64_t> parse_socket_link(std::string_view target);

struct UnixSocket {
    std::uint64_t inode = 0;
    std::string path; // the bind() path, meaningful in the owner's mount namespace
};
// Listening (SO_ACCEPTCON), SOCK_STREAM, non-abstract unix sockets in the
// network namespace of `pid`, from ROOT/PID/net/unix.
std::vector<UnixSocket> listening_unix_sockets(const std::string &root, int pid);
std::vector<UnixSocket> parse_net_unix(std::string_view content);

// Resolves `path` (absolute, as seen inside the process's mount namespace)
// below `root_dir` (e.g. "/proc/PID/root"), evaluating every symlink inside
// that root: absolute targets are re-rooted, ".." stops at the root, and at
// most 40 links are followed. Returns root_dir + the resolved path, which
// never leaves root_dir; nullopt on a loop or a non-directory in the middle.
// A missing final component is not an error (the result names it); a
// missing directory in the middle, or a relative `path`, gives nullopt.
// Only lstat/readlink run, on paths below root_dir built here, so no link
// below root_dir is ever followed by the kernel. The result is a path: a
// process inside the root can still swap a directory for a link before the
// caller uses it.
std::optional<std::string> resolve_in_root(const std::string &root_dir, std::string_view path);

// How a path inside a process's root is resolved when it is opened.
enum class Resolver {
    // openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): the kernel keeps the
    // walk inside the root, atomically. Kernels without openat2 (before 5.6,
    // or a seccomp filter answering ENOSYS) get the walker instead.
    kernel,
    // resolve_in_root(), then one open of its result: a process inside the
    // root can still swap a directory for a link between the two (tests, and
    // the fallback above).
    walker,
};

// A process's root directory (normally PROCFS/PID/root), opened once as an
// O_PATH descriptor, so every path resolved in it starts at the same root
// even if the process execs or changes root meanwhile.
class Root {
public:
    explicit Root(std::string dir);
    bool ok() const noexcept { return fd_.ok(); }
    const std::string &dir() const noexcept { return dir_; }

    // An O_PATH | O_CLOEXEC handle on what `path` (absolute, as seen inside
    // the root) names, every symlink evaluated inside the root and a last
    // component that is a symlink not followed (the handle is the link then).
    // nullopt if anything in between is missing, a loop, or would leave the root.
    std::optional<Fd> open(std::string_view path, Resolver how = Resolver::kernel) const;
    // The same, for a unix socket file: nullopt unless the handle is one.
    // connect() to "/proc/self/fd/N" of the handle reaches that very socket,
    // whatever the process does to its file system afterwards.
    std::optional<Fd> open_socket(std::string_view path, Resolver how = Resolver::kernel) const;
    // Where a handle opened in this root lies, as dir() + its canonical path
    // inside the root (what resolve_in_root() gives for the same file).
    // nullopt if the kernel names it outside the root or as deleted.
    std::optional<std::string> shown_path(const Fd &handle) const;

private:
    std::string dir_;
    Fd fd_;
};

} // namespace turtlefinder::procfs
