// SPDX-License-Identifier: Apache-2.0
// Lab root, processes, waiting and image helpers.
#include "lab.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <turtlefinder/clients/docker/client.hpp>

extern char **environ;

namespace fs = std::filesystem;

namespace turtlefinder::lab {

namespace {

std::string errno_text(const std::string &what, int err = errno) { return what + ": " + std::strerror(err); }

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mount_path(const std::string &s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

// Waits until `pid` has exited or `deadline` passes (nullopt: do not wait).
// True once it has exited; it stays unreaped (a zombie), so its PID, and the
// process group named after it, cannot be reused while we still signal it.
bool wait_exited(pid_t pid, std::optional<Millis> deadline) {
    auto exited = [pid] {
        siginfo_t info{};
        if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return true; // not ours
        return info.si_pid == pid;
    };
    if (exited()) return true;
    if (!deadline) return false;
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    auto end = std::chrono::steady_clock::now() + *deadline;
    bool done = false;
    while (!done) {
        auto left = std::chrono::duration_cast<Millis>(end - std::chrono::steady_clock::now());
        if (pidfd >= 0) {
            pollfd p{pidfd, POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(std::max<Millis::rep>(0, left.count())));
        } else {
            std::this_thread::sleep_for(std::min(left, Millis(10))); // no pidfd: poll waitid
        }
        if (exited())
            done = true;
        else if (std::chrono::steady_clock::now() >= end)
            break;
    }
    if (pidfd >= 0) ::close(pidfd);
    return done;
}

// Reaps an exited child; its wait status (-1 when it was not ours).
int reap(pid_t pid) {
    int status = 0;
    return ::waitpid(pid, &status, WNOHANG) == pid ? status : -1;
}

// Waits like wait_exited and reaps when it has exited.
std::optional<int> wait_pid(pid_t pid, std::optional<Millis> deadline) {
    if (!wait_exited(pid, deadline)) return std::nullopt;
    return reap(pid);
}

} // namespace

// ---- Lab ----------------------------------------------------------------

Lab::Lab(std::string_view tag) {
    std::string t(tag.substr(0, 8));
    std::string templ = "/tmp/tf-" + t + "-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) throw Error(errno_text("mkdtemp " + templ));
    root_ = buf.data();
    ::chmod(root_.c_str(), 0755); // engines drop privileges for some helpers
}

Lab::~Lab() { remove_tree(root_); }

std::string Lab::path(std::string_view rel) const { return root_ + "/" + std::string(rel); }

std::string Lab::mkdir(std::string_view rel) const {
    std::string p = path(rel);
    std::error_code ec;
    fs::create_directories(p, ec);
    if (ec) throw Error("mkdir " + p + ": " + ec.message());
    return p;
}

std::string Lab::write_file(std::string_view rel, std::string_view content, mode_t mode) const {
    std::string p = path(rel);
    fs::create_directories(fs::path(p).parent_path());
    {
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out.write(content.data(), static_cast<std::streamsize>(content.size()));
        if (!out) throw Error("writing " + p + " failed");
    }
    ::chmod(p.c_str(), mode);
    return p;
}

void unmount_below(const std::string &dir) {
    std::ifstream in("/proc/self/mountinfo");
    std::vector<std::string> points;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string id, parent, devno, root, point;
        f >> id >> parent >> devno >> root >> point;
        point = unescape_mount_path(point);
        if (point == dir || point.rfind(dir + "/", 0) == 0) points.push_back(point);
    }
    std::sort(points.begin(), points.end(), [](const auto &a, const auto &b) { return a.size() > b.size(); });
    for (const auto &p : points) ::umount2(p.c_str(), MNT_DETACH);
}

void remove_tree(const std::string &dir) noexcept {
    if (dir.empty() || dir == "/") return;
    try {
        unmount_below(dir);
        std::error_code ec;
        fs::remove_all(dir, ec);
    } catch (...) {
    }
}

// ---- programs and processes ----------------------------------------------

std::string comm_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(in, name);
    return name;
}

std::vector<pid_t> all_pids() {
    std::vector<pid_t> pids;
    for (const auto &entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename();
        if (!name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
            pids.push_back(static_cast<pid_t>(std::stoi(name)));
    }
    return pids;
}

std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> out;
    const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
    std::error_code ec;
    for (const auto &task : fs::directory_iterator(task_dir, ec)) {
        std::ifstream in(task.path() / "children");
        pid_t child = 0;
        while (in >> child) out.push_back(child);
    }
    return out;
}

std::vector<pid_t> descendants_of(pid_t pid) {
    std::vector<pid_t> out, queue = {pid};
    for (std::size_t i = 0; i < queue.size() && queue.size() < 4096; ++i)
        for (pid_t c : children_of(queue[i])) {
            out.push_back(c);
            queue.push_back(c);
        }
    return out;
}

std::optional<std::string> which(std::string_view name) {
    if (name.find('/') != std::string_view::npos)
        return ::access(std::string(name).c_str(), X_OK) == 0 ? std::optional<std::string>(name) : std::nullopt;
    const char *path = std::getenv("PATH");
    std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    std::istringstream s(dirs);
    std::string d;
    while (std::getline(s, d, ':')) {
        if (d.empty()) continue;
        std::string candidate = d + "/" + std::string(name);
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    // sbin is not always on a test runner's PATH
    for (const char *d2 : {"/usr/sbin", "/sbin"}) {
        std::string candidate = std::string(d2) + "/" + std::string(name);
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return std::nullopt;
}

std::string find_program(std::string_view name) {
    auto p = which(name);
    if (!p) throw Error("program not found: " + std::string(name));
    return *p;
}

namespace {

// posix_spawn (safe in a threaded test process, unlike fork) in a new
// process group with default signal handling, stdin from /dev/null, stdout
// to `out_path`, stderr to `err_path` (or with stdout), no other fd.
pid_t spawn(const std::vector<std::string> &args, const std::map<std::string, std::string> &env,
            const std::string &out_path, const std::string &err_path, const std::string &cwd) {
    if (args.empty()) throw Error("spawn: no program");
    std::string program = find_program(args[0]);
    std::map<std::string, std::string> full;
    for (char **e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string kv(*e);
        auto eq = kv.find('=');
        if (eq != std::string::npos) full[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto &[k, v] : env) full[k] = v;
    std::vector<std::string> env_strings;
    for (const auto &[k, v] : full) env_strings.push_back(k + "=" + v);
    std::vector<char *> envp, argv;
    for (auto &s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> a = args;
    for (auto &s : a) argv.push_back(s.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err_path.empty())
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
    else
        posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3); // nothing of the test leaks into engines
    if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) throw Error(errno_text("spawn " + program, rc));
    return pid;
}

} // namespace

Process::Process(const SpawnOptions &options) {
    log_path_ = options.log_path;
    std::string out = log_path_.empty() ? "/dev/null" : log_path_;
    pid_ = spawn(options.args, options.env, out, {}, options.cwd);
}

Process::~Process() { stop(); }

Process::Process(Process &&other) noexcept
    : pid_(std::exchange(other.pid_, -1)), status_(std::move(other.status_)), log_path_(std::move(other.log_path_)) {}

Process &Process::operator=(Process &&other) noexcept {
    if (this != &other) {
        stop();
        pid_ = std::exchange(other.pid_, -1);
        status_ = std::move(other.status_);
        log_path_ = std::move(other.log_path_);
    }
    return *this;
}

bool Process::running() {
    if (pid_ <= 0 || status_) return false;
    status_ = wait_pid(pid_, std::nullopt);
    return !status_;
}

std::optional<int> Process::wait(Millis deadline) {
    if (pid_ <= 0) return -1;
    if (!status_) status_ = wait_pid(pid_, deadline);
    return status_;
}

int Process::stop(Millis grace, int signal) {
    if (pid_ <= 0) return -1;
    if (!status_) {
        ::kill(pid_, signal);
        if (!wait_exited(pid_, grace)) {
            ::kill(-pid_, SIGKILL);
            wait_exited(pid_, 10s);
        }
        // The leader is a zombie now: its group id is still ours to signal.
        ::kill(-pid_, SIGKILL); // stragglers of its group (helpers it started)
        status_ = reap(pid_);
    }
    return status_.value_or(-1);
}

void Process::kill9() {
    if (pid_ <= 0 || status_) return;
    ::kill(pid_, SIGKILL);
    status_ = wait_pid(pid_, 10s);
}

std::string Process::log_tail(std::size_t max_bytes) const {
    if (log_path_.empty()) return {};
    std::string all = read_file(log_path_);
    return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

RunResult run(const std::vector<std::string> &args, const std::map<std::string, std::string> &env, Millis timeout,
              const std::string &scratch_dir) {
    std::string dir = scratch_dir;
    bool own_dir = dir.empty();
    if (own_dir) {
        char templ[] = "/tmp/tf-run-XXXXXX";
        if (::mkdtemp(templ) == nullptr) throw Error(errno_text("mkdtemp"));
        dir = templ;
    }
    static std::atomic<unsigned> counter{0};
    std::string base = dir + "/run-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    std::string out_path = base + ".out", err_path = base + ".err";
    RunResult result;
    pid_t pid = -1;
    try {
        pid = spawn(args, env, out_path, err_path, {});
    } catch (...) {
        if (own_dir) remove_tree(dir);
        throw;
    }
    if (!wait_exited(pid, timeout)) {
        result.timed_out = true;
        ::kill(-pid, SIGKILL);
        wait_exited(pid, 10s);
    }
    std::optional<int> status = reap(pid);
    if (status && *status >= 0 && WIFEXITED(*status) && !result.timed_out) result.exit_code = WEXITSTATUS(*status);
    result.out = read_file(out_path);
    result.err = read_file(err_path);
    ::unlink(out_path.c_str());
    ::unlink(err_path.c_str());
    if (own_dir) remove_tree(dir);
    return result;
}

// ---- waiting ------------------------------------------------------------

bool is_listening(pid_t pid, const std::string &path) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/net/unix");
    std::string line;
    std::getline(in, line); // header
    while (std::getline(in, line)) {
        // Num RefCount Protocol Flags Type St Inode Path
        std::istringstream f(line);
        std::string num, refcount, protocol, flags, type, state, inode;
        if (!(f >> num >> refcount >> protocol >> flags >> type >> state >> inode)) continue;
        std::string p;
        std::getline(f >> std::ws, p);
        if (p != path) continue;
        unsigned long fl = std::stoul(flags, nullptr, 16);
        if ((fl & 0x10000UL) != 0 && type == "0001") return true; // __SO_ACCEPTCON, SOCK_STREAM
    }
    return false;
}

bool wait_listening(pid_t pid, const std::string &path, Millis deadline) {
    auto end = std::chrono::steady_clock::now() + deadline;
    while (true) {
        if (is_listening(pid, path)) return true;
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(10ms);
    }
}

bool wait_docker_ping(const std::string &socket_path, Millis deadline) {
    namespace docker = turtlefinder::clients::docker;
    auto end = std::chrono::steady_clock::now() + deadline;
    while (true) {
        try {
            docker::Options o;
            o.socket_path = socket_path;
            o.timeout = 1s;
            docker::Client c(o);
            c.ping();
            return true;
        } catch (const docker::Error &) {
        }
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(20ms);
    }
}

std::string trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
        text.pop_back();
    return text;
}

std::string join(const std::vector<std::string> &args) {
    std::string out;
    for (const auto &a : args) out += (out.empty() ? "" : " ") + a;
    return out;
}

std::string checked(const std::string &what, const RunResult &r) {
    if (!r.ok())
        throw Error(what + " failed (exit " + std::to_string(r.exit_code) + (r.timed_out ? ", timed out" : "") +
                    "): " + r.err + r.out);
    return trim(r.out);
}

// ---- images -------------------------------------------------------------

std::string busybox_rootfs(const std::string &dir) {
    std::string busybox = find_program("busybox");
    for (const char *d : {"bin", "etc", "proc", "sys", "dev", "tmp", "root"}) fs::create_directories(dir + "/" + d);
    fs::copy_file(busybox, dir + "/bin/busybox", fs::copy_options::overwrite_existing);
    ::chmod((dir + "/bin/busybox").c_str(), 0755);
    RunResult list = run({busybox, "--list"}, {}, 30s);
    if (!list.ok()) throw Error("busybox --list failed: " + list.err);
    std::istringstream names(list.out);
    std::string name;
    while (std::getline(names, name)) {
        if (name.empty() || name == "busybox" || name.find('/') != std::string::npos) continue;
        std::error_code ec;
        fs::create_symlink("busybox", dir + "/bin/" + name, ec);
    }
    std::ofstream(dir + "/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n"
                                          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    std::ofstream(dir + "/etc/group") << "root:x:0:\nnogroup:x:65534:\n";
    ::chmod((dir + "/tmp").c_str(), 01777);
    return dir;
}

std::string busybox_tar(const Lab &lab, const std::string &name) {
    std::string tar = lab.path(name);
    if (fs::exists(tar)) return tar;
    std::string rootfs = busybox_rootfs(lab.mkdir("rootfs-" + name));
    std::string partial = tar + ".part";
    RunResult r = run({"tar", "--numeric-owner", "--owner=0", "--group=0", "-C", rootfs, "-cf", partial, "."}, {}, 60s);
    if (!r.ok()) throw Error("tar failed: " + r.err);
    fs::rename(partial, tar);
    remove_tree(rootfs);
    return tar;
}

} // namespace turtlefinder::lab
