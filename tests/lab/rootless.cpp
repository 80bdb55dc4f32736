// SPDX-License-Identifier: Apache-2.0
// A test user and a rootless dockerd; see rootless.hpp.
#include "rootless.hpp"

#include <grp.h>
#include <linux/magic.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "podman.hpp"

namespace fs = std::filesystem;

namespace turtlefinder::lab {

namespace {

std::string read_text(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The real UID of a process (first number of the Uid line); -1 when gone.
long long real_uid_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("Uid:", 0) == 0) return std::stoll(line.substr(4));
    return -1;
}

bool uid_in_use(uid_t uid) {
    if (::getpwuid(uid) != nullptr || ::getgrgid(uid) != nullptr) return true;
    if (fs::exists("/run/user/" + std::to_string(uid))) return true;
    for (pid_t pid : all_pids())
        if (real_uid_of(pid) == static_cast<long long>(uid)) return true;
    return false;
}

void chown_to(const std::string &path, uid_t uid, gid_t gid) {
    if (::chown(path.c_str(), uid, gid) != 0) throw Error("chown " + path + " failed");
}

} // namespace

// ---- TestUser ------------------------------------------------------------

TestUser::TestUser(const Lab &lab, std::string name) : lab_(lab), name_(std::move(name)) {
    for (const char *file : {"/etc/subuid", "/etc/subgid", "/etc/passwd", "/etc/group"})
        if (!fs::is_regular_file(file))
            throw Error(std::string("this host has no ") + file +
                        ": the lab shows its own over it in a private mount namespace, and creating one would "
                        "change the host's /etc");
    // A number far from the usual user ranges, varied by PID so that two labs
    // at once do not race for the same one.
    uid_t candidate = 43000 + static_cast<uid_t>(::getpid() % 2000);
    int tries = 0;
    while (uid_in_use(candidate)) {
        if (++tries > 2000) throw Error("no unused UID/GID found between 43000 and 47000");
        candidate = 43000 + (candidate - 43000 + 1) % 4000;
    }
    uid_ = candidate;
    gid_ = candidate;

    dir_ = lab_.mkdir("u-" + std::to_string(uid_));
    home_ = lab_.mkdir("u-" + std::to_string(uid_) + "/home");
    chown_to(home_, uid_, gid_);
    ::chmod(home_.c_str(), 0700);
    std::string run_root = lab_.mkdir("u-" + std::to_string(uid_) + "/run");
    std::string own_run = lab_.mkdir("u-" + std::to_string(uid_) + "/run/" + std::to_string(uid_));
    chown_to(own_run, uid_, gid_);
    ::chmod(own_run.c_str(), 0700);
    // Where the host has /run/user, the user sees the lab's runtime root
    // there; else its runtime directory is the lab path itself.
    const bool cover_run_user = fs::is_directory("/run/user");
    runtime_dir_ = cover_run_user ? "/run/user/" + std::to_string(uid_) : own_run;

    const std::string rel = "u-" + std::to_string(uid_) + "/etc/";
    const std::string ids = std::to_string(uid_);
    // Subordinate ids well below 2^31, one 65536 block per possible UID.
    const std::string sub = name_ + ":" + std::to_string(1500000000ULL + (uid_ % 8000) * 65536ULL) + ":65536\n";
    lab_.write_file(rel + "passwd",
                    read_text("/etc/passwd") + name_ + ":x:" + ids + ":" + ids + "::" + home_ + ":/bin/sh\n");
    lab_.write_file(rel + "group", read_text("/etc/group") + name_ + ":x:" + ids + ":\n");
    lab_.write_file(rel + "subuid", sub);
    lab_.write_file(rel + "subgid", sub);

    // Runs as root in the new mount namespace, then becomes the user: "$@"
    // is the environment (NAME=VALUE...) and the command, for `env -i`.
    std::string etc = lab_.path(rel);
    std::string script = "#!/bin/sh\nset -e\n";
    for (const char *f : {"passwd", "group", "subuid", "subgid"})
        script += std::string("mount --bind '") + etc + f + "' /etc/" + f + "\n";
    if (cover_run_user) script += "mount --bind '" + run_root + "' /run/user\n";
    // For a user manager (UserManager): what PID 1 and logind would give it.
    script += "if [ -n \"$TF_LAB_USER_CGROUP\" ]; then\n"
              "  mount -t tmpfs -o mode=0755 tmpfs /run/systemd\n"
              "  mkdir /run/systemd/system\n"
              "  echo $$ > \"$TF_LAB_USER_CGROUP/cgroup.procs\"\n"
              "fi\n";
    script += "exec setpriv --reuid=" + ids + " --regid=" + ids + " --clear-groups --inh-caps=-all env -i \"$@\"\n";
    enter_script_ = lab_.write_file("u-" + ids + "/enter.sh", script, 0755);
}

TestUser::~TestUser() {
    // Whatever an engine left behind (a shim, slirp4netns): only processes of
    // this lab's own user, each by its PID.
    for (int round = 0; round < 50; ++round) {
        auto left = processes();
        if (left.empty()) break;
        for (pid_t pid : left) ::kill(pid, SIGKILL);
        std::this_thread::sleep_for(20ms);
    }
}

SpawnOptions TestUser::as_user(const std::vector<std::string> &args, const std::map<std::string, std::string> &env,
                               const std::string &log_path) const {
    std::map<std::string, std::string> vars = {
        {"PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"},
        {"HOME", home_},
        {"USER", name_},
        {"LOGNAME", name_},
        {"XDG_RUNTIME_DIR", runtime_dir_},
    };
    for (const auto &[k, v] : env) vars[k] = v;
    SpawnOptions so;
    so.args = {"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", enter_script_};
    for (const auto &[k, v] : vars) so.args.push_back(k + "=" + v);
    so.args.insert(so.args.end(), args.begin(), args.end());
    so.log_path = log_path;
    so.cwd = home_;
    return so;
}

RunResult TestUser::run_as(const std::vector<std::string> &args, const std::map<std::string, std::string> &env,
                           Millis timeout) const {
    return run(as_user(args, env).args, {}, timeout, dir_);
}

std::vector<pid_t> TestUser::processes() const {
    std::vector<pid_t> out;
    for (pid_t pid : all_pids())
        if (real_uid_of(pid) == static_cast<long long>(uid_)) out.push_back(pid);
    return out;
}

// ---- RootlessDockerd -----------------------------------------------------

RootlessDockerd::RootlessDockerd(const Lab &lab, const TestUser &user, RootlessDockerdConfig config)
    : lab_(lab), user_(user), config_(std::move(config)) {
    std::string script = which("dockerd-rootless.sh").value_or("");
    for (const char *p : {"/usr/share/docker.io/contrib/dockerd-rootless.sh", "/usr/bin/dockerd-rootless.sh"})
        if (script.empty() && ::access(p, X_OK) == 0) script = p;
    if (script.empty()) throw Error("dockerd-rootless.sh not found (Debian's docker.io ships it in its contrib)");
    dir_ = user_.home() + "/" + config_.dir_name;
    fs::create_directories(dir_ + "/cli");
    if (::chown(dir_.c_str(), user_.uid(), user_.gid()) != 0) throw Error("chown " + dir_ + " failed");
    {
        std::ofstream(dir_ + "/daemon.json") << "{}\n"; // never the user's ~/.config/docker/daemon.json
    }
    ::chmod((dir_ + "/daemon.json").c_str(), 0644);

    std::map<std::string, std::string> env;
    // slirp4netns needs /dev/net/tun, which some hosts keep root-only: then
    // RootlessKit shares the host's network namespace instead (the engine's
    // containers run with --network none either way).
    struct stat tun {};
    bool tun_open = ::stat("/dev/net/tun", &tun) == 0 && (tun.st_mode & 0006) == 0006;
    env["DOCKERD_ROOTLESS_ROOTLESSKIT_NET"] = tun_open ? "slirp4netns" : "host";
    if (!tun_open) env["DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER"] = "none";
    if (config_.pid_namespace) env["DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS"] = "--pidns";
    std::vector<std::string> args = {
        script,
        "--data-root=" + dir_ + "/data",
        "--config-file=" + dir_ + "/daemon.json",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--storage-driver=vfs",
        "--userland-proxy=false",
        "--shutdown-timeout=2",
    };
    process_ = Process(user_.as_user(args, env, dir_ + "/dockerd.log"));

    auto deadline = std::chrono::steady_clock::now() + config_.ready_timeout;
    while (dockerd_pid_ == 0 && std::chrono::steady_clock::now() < deadline && process_.running()) {
        for (pid_t p : descendants_of(process_.pid()))
            if (comm_of(p) == "dockerd") dockerd_pid_ = p;
        if (dockerd_pid_ == 0) std::this_thread::sleep_for(20ms);
    }
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (dockerd_pid_ == 0 || !wait_docker_ping(socket(), std::max(left, Millis(1)))) {
        std::string tail = process_.log_tail();
        stop();
        throw Error("rootless dockerd did not answer /_ping on " + bound_socket() + "; log:\n" + tail);
    }
}

RootlessDockerd::~RootlessDockerd() { stop(); }

std::string RootlessDockerd::socket() const {
    return "/proc/" + std::to_string(dockerd_pid_) + "/root" + bound_socket();
}

RunResult RootlessDockerd::docker(const std::vector<std::string> &args, Millis timeout) const {
    std::vector<std::string> full = {"docker", "-H", "unix://" + socket()};
    full.insert(full.end(), args.begin(), args.end());
    return run(full, {{"DOCKER_CONFIG", dir_ + "/cli"}}, timeout, dir_);
}

std::string RootlessDockerd::docker_ok(const std::vector<std::string> &args, Millis timeout) const {
    return checked("rootless docker " + join(args), docker(args, timeout));
}

void RootlessDockerd::import_busybox(const std::string &image) {
    if (std::find(imported_.begin(), imported_.end(), image) != imported_.end()) return;
    docker_ok({"import", "-c", R"(CMD ["sleep","infinity"])", busybox_tar(lab_), image});
    imported_.push_back(image);
}

std::string RootlessDockerd::run_container(const std::vector<std::string> &extra_args, const std::string &image) {
    std::vector<std::string> args = {"run", "-d", "--network", "none"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    args.push_back(image);
    return docker_ok(args);
}

void RootlessDockerd::stop() {
    if (stopped_) return;
    stopped_ = true;
    if (dockerd_pid_ != 0 && process_.running()) {
        RunResult ids = docker({"ps", "-aq"}, 20s);
        if (ids.ok() && !trim(ids.out).empty()) {
            std::vector<std::string> args = {"rm", "-f"};
            std::istringstream s(ids.out);
            std::string id;
            while (s >> id) args.push_back(id);
            docker(args, 30s);
        }
    }
    process_.stop(15s);
    remove_tree(dir_);
}

// ---- UserManager ---------------------------------------------------------

namespace {

// The cgroup2 hierarchy: /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified
// (hybrid); empty when there is none.
std::string cgroup2_root() {
    for (const char *dir : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
        struct statfs fs {};
        if (::statfs(dir, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) return dir;
    }
    return {};
}

// Removes a cgroup and the ones below it, deepest first (empty ones only).
void remove_cgroup(const std::string &dir) {
    std::vector<std::string> dirs;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_directory(ec)) dirs.push_back(it->path());
    std::sort(dirs.begin(), dirs.end(), [](const auto &a, const auto &b) { return a.size() > b.size(); });
    dirs.push_back(dir);
    for (const auto &d : dirs) ::rmdir(d.c_str());
}

std::vector<pid_t> cgroup_processes(const std::string &dir) {
    std::vector<pid_t> pids;
    std::error_code ec;
    auto add = [&](const fs::path &d) {
        std::ifstream in(d / "cgroup.procs");
        pid_t p = 0;
        while (in >> p) pids.push_back(p);
    };
    add(dir);
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_directory(ec)) add(it->path());
    return pids;
}

void chown_tree(const std::string &dir, uid_t uid, gid_t gid) {
    ::lchown(dir.c_str(), uid, gid);
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        ::lchown(it->path().c_str(), uid, gid);
}

} // namespace

UserManager::UserManager(const Lab &lab, const TestUser &user, Millis ready_timeout) : lab_(lab), user_(user) {
    const std::string systemd = "/lib/systemd/systemd";
    if (::access(systemd.c_str(), X_OK) != 0) throw Error(systemd + " is not installed (package systemd)");
    if (!which("podman")) throw Error("podman is not installed");
    if (!fs::is_directory("/run/systemd"))
        throw Error("this host has no /run/systemd: a user manager needs /run/systemd/system, and the lab shows "
                    "it on a tmpfs over /run/systemd in the manager's mount namespace only");
    std::string hierarchy = cgroup2_root();
    if (hierarchy.empty()) throw Error("no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified");
    // Its own cgroup, delegated to the user, as PID 1 gives user@UID.service.
    cgroup_ = hierarchy + "/tf-lab-" + std::to_string(user_.uid()) + "-" + std::to_string(::getpid());
    if (::mkdir(cgroup_.c_str(), 0755) != 0) throw Error("mkdir " + cgroup_ + " failed: " + std::strerror(errno));
    chown_tree(cgroup_, user_.uid(), user_.gid());

    // The user's units: Debian's podman.socket and podman.service for the
    // user, wanted by a target of the lab's instead of default.target (which
    // would start every user socket installed on the host).
    const std::string home = user_.home();
    const std::string rel = home.substr(lab_.root().size() + 1);
    lab_.write_file(rel + "/.config/systemd/user/tf-lab.target",
                    "[Unit]\nDescription=turtlefinder lab: the user's podman socket only\nWants=podman.socket\n");
    // Rootless podman where a user keeps it, fitted to this kind of host
    // (see podman.hpp).
    PodmanLayout layout{home + "/.local/share/containers/storage", user_.runtime_dir() + "/containers",
                        user_.runtime_dir() + "/libpod/tmp", home + "/.config/cni",
                        home + "/.local/share/containers/copy"};
    lab_.mkdir(rel + "/.local/share/containers/copy");
    lab_.write_file(rel + "/.config/containers/containers.conf", podman_containers_conf(layout));
    lab_.write_file(rel + "/.config/containers/storage.conf", podman_storage_conf(layout));
    chown_tree(home, user_.uid(), user_.gid());

    SpawnOptions so = user_.as_user({systemd, "--user", "--unit=tf-lab.target"}, {}, user_.dir() + "/systemd-user.log");
    so.env["TF_LAB_USER_CGROUP"] = cgroup_;
    process_ = Process(so);
    if (!wait_listening(process_.pid(), podman_socket(), ready_timeout)) {
        std::string tail = process_.log_tail();
        stop();
        throw Error("systemd --user did not listen on " + podman_socket() + "; log:\n" + tail);
    }
}

UserManager::~UserManager() { stop(); }

RunResult UserManager::podman(const std::vector<std::string> &args, Millis timeout) const {
    std::vector<std::string> full = {"podman"};
    full.insert(full.end(), args.begin(), args.end());
    return user_.run_as(full, {}, timeout);
}

std::string UserManager::podman_ok(const std::vector<std::string> &args, Millis timeout) const {
    return checked("rootless podman " + join(args), podman(args, timeout));
}

void UserManager::import_busybox(const std::string &image) {
    podman_ok({"import", "-c", R"(CMD ["sleep","infinity"])", busybox_tar(lab_), image});
}

void UserManager::stop() {
    if (stopped_) return;
    stopped_ = true;
    if (process_.running()) podman({"rm", "-af", "-t", "0"}, 30s);
    process_.stop(10s);
    // The manager's services (podman, catatonit) leave with it: end what is
    // left in its cgroup, then remove the cgroup, which succeeds only once
    // nothing (in any cgroup below it either) runs there any more.
    for (int round = 0; round < 500 && !cgroup_.empty(); ++round) {
        for (pid_t p : cgroup_processes(cgroup_)) ::kill(p, round < 100 ? SIGTERM : SIGKILL);
        remove_cgroup(cgroup_);
        if (!fs::exists(cgroup_)) break;
        std::this_thread::sleep_for(20ms);
    }
}

} // namespace turtlefinder::lab
