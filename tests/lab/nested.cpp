// SPDX-License-Identifier: Apache-2.0
// Engines inside containers: engine containers, KinD-like containerd and
// docker-in-docker on top of any Docker API the lab reaches.
#include "nested.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace turtlefinder::lab {

namespace {

struct ProcInfo {
    pid_t ppid = 0;
    char state = '?';
    unsigned long long starttime = 0;
};

// /proc/PID/stat: "pid (comm) state ppid ... starttime(22nd)"; comm may hold
// spaces and parentheses, so parse after the last ')'.
std::optional<ProcInfo> proc_info(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(in, text)) return std::nullopt;
    auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream f(text.substr(close + 1));
    ProcInfo info;
    f >> info.state >> info.ppid;
    std::string skip;
    for (int field = 5; field < 22 && f >> skip; ++field) {
    }
    f >> info.starttime;
    if (!f) return std::nullopt;
    return info;
}

// Every live process's parent, one pass over /proc.
std::map<pid_t, pid_t> parents() {
    std::map<pid_t, pid_t> out;
    DIR *d = ::opendir("/proc");
    if (d == nullptr) return out;
    while (dirent *e = ::readdir(d)) {
        char *end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0') continue;
        if (auto info = proc_info(static_cast<pid_t>(pid)); info && info->state != 'Z')
            out[static_cast<pid_t>(pid)] = info->ppid;
    }
    ::closedir(d);
    return out;
}

std::optional<ino_t> pid_namespace(pid_t pid) {
    struct stat st {};
    if (::stat(("/proc/" + std::to_string(pid) + "/ns/pid").c_str(), &st) != 0) return std::nullopt;
    return st.st_ino;
}

bool same_process_alive(pid_t pid, unsigned long long starttime) {
    auto info = proc_info(pid);
    return info && info->starttime == starttime && info->state != 'Z';
}

std::string write_below(const std::string &dir, const std::string &rel, const std::string &content) {
    fs::path p = fs::path(dir) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw Error("writing " + p.string() + " failed");
    return p.string();
}

// A pod sandbox's init: it only waits to be stopped (the test's pods run no
// process that would need reaping). Static: the image has no libc.
constexpr const char *pause_program = R"(#include <signal.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
int main(void) {
    signal(SIGTERM, quit);
    signal(SIGINT, quit);
    for (;;) pause();
}
)";

// A Docker image archive holding NestedContainerd's busybox and pause images,
// saved once per lab from the first Docker API asked.
std::string images_archive(const Lab &lab, const DockerApi &api) {
    std::string archive = lab.path("n/images.tar");
    if (fs::exists(archive)) return archive;
    std::string pause_root = lab.mkdir("n/pause-root");
    std::string source = lab.write_file("n/pause.c", pause_program);
    RunResult cc = run({"gcc", "-static", "-O2", "-o", pause_root + "/pause", source}, {}, 120s);
    if (!cc.ok()) throw Error("building the pause program failed: " + cc.err);
    std::string pause_tar = lab.path("n/pause.tar");
    RunResult tar = run({"tar", "--numeric-owner", "-C", pause_root, "-cf", pause_tar, "."}, {}, 60s);
    if (!tar.ok()) throw Error("tar of the pause rootfs failed: " + tar.err);
    docker_at_ok(api, {"import", "-c", R"(CMD ["/pause"])", pause_tar, NestedContainerd::pause_image});
    docker_at_ok(api,
                 {"import", "-c", R"(CMD ["sleep","infinity"])", busybox_tar(lab), NestedContainerd::busybox_image});
    std::string partial = archive + ".part";
    docker_at_ok(api, {"save", "-o", partial, NestedContainerd::pause_image, NestedContainerd::busybox_image}, 120s);
    fs::rename(partial, archive);
    return archive;
}

} // namespace

// ---- Docker APIs ----------------------------------------------------------

DockerApi docker_api(const Lab &lab, const Dockerd &dockerd) {
    return {dockerd.socket(), lab.mkdir("n"), runc_wrapper_path(), dockerd.pid(), lab.mkdir("n/cli")};
}

RunResult docker_at(const DockerApi &api, const std::vector<std::string> &args, Millis timeout) {
    std::vector<std::string> full = {"docker", "-H", "unix://" + api.socket};
    full.insert(full.end(), args.begin(), args.end());
    return run(full, {{"DOCKER_CONFIG", api.cli_config}}, timeout);
}

std::string docker_at_ok(const DockerApi &api, const std::vector<std::string> &args, Millis timeout) {
    return checked("docker -H unix://" + api.socket + " " + join(args), docker_at(api, args, timeout));
}

// ---- processes ------------------------------------------------------------

std::vector<pid_t> nspid(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("NSpid:", 0) != 0) continue;
        std::istringstream f(line.substr(6));
        std::vector<pid_t> chain;
        for (pid_t p; f >> p;) chain.push_back(p);
        return chain;
    }
    return {};
}

std::optional<pid_t> host_pid_of(pid_t namespace_member, pid_t pid) {
    auto chain = nspid(namespace_member);
    auto ns = pid_namespace(namespace_member);
    if (chain.empty() || !ns) return std::nullopt;
    const std::size_t level = chain.size() - 1;
    if (level == 0) return pid;
    auto parent = parents();
    // The namespace's init is the member's furthest ancestor in the same
    // namespace; everything in the namespace (or below it) descends from it.
    pid_t init = namespace_member;
    for (int hops = 0; hops < 4096; ++hops) {
        auto it = parent.find(init);
        if (it == parent.end() || it->second <= 0 || pid_namespace(it->second) != ns) break;
        init = it->second;
    }
    std::multimap<pid_t, pid_t> children;
    for (auto [child, p] : parent) children.emplace(p, child);
    std::deque<pid_t> todo{init};
    while (!todo.empty()) {
        pid_t cur = todo.front();
        todo.pop_front();
        auto c = nspid(cur);
        if (c.size() > level && c[level] == pid) return c[0];
        auto [from, to] = children.equal_range(cur);
        for (auto it = from; it != to; ++it) todo.push_back(it->second);
    }
    return std::nullopt;
}

bool descends_from(pid_t pid, pid_t ancestor) {
    for (int hops = 0; pid > 1 && hops < 4096; ++hops) {
        auto info = proc_info(pid);
        if (!info) return false;
        if (info->ppid == ancestor) return true;
        pid = info->ppid;
    }
    return false;
}

// ---- the base image ---------------------------------------------------------

std::string engine_base_tar(const Lab &lab) {
    std::string tar = lab.path("n/engine-base.tar");
    if (fs::exists(tar)) return tar;
    std::string root = lab.mkdir("n/engine-base");
    for (const char *d : {"usr", "etc", "proc", "sys", "dev", "run", "tmp", "var/lib", "root", "opt"})
        fs::create_directories(fs::path(root) / d);
    // Relative links: the test resolves paths through /proc/PID/root, where an
    // absolute link would point back at the host.
    const std::pair<const char *, const char *> links[] = {
        {"bin", "usr/bin"}, {"sbin", "usr/sbin"}, {"lib", "usr/lib"}, {"lib64", "usr/lib64"}, {"var/run", "../run"}};
    for (const auto &[link, target] : links) fs::create_symlink(target, fs::path(root) / link);
    write_below(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    write_below(root, "etc/group", "root:x:0:\n");
    ::chmod((root + "/tmp").c_str(), 01777);
    RunResult r =
        run({"tar", "--numeric-owner", "--owner=0", "--group=0", "-C", root, "-cf", tar + ".part", "."}, {}, 60s);
    if (!r.ok()) throw Error("tar of the engine base rootfs failed: " + r.err);
    fs::rename(tar + ".part", tar);
    return tar;
}

void import_engine_base(const Lab &lab, const DockerApi &api) {
    if (!docker_at(api, {"image", "inspect", "-f", "{{.Id}}", engine_base_image}, 30s).ok())
        docker_at_ok(api, {"import", engine_base_tar(lab), engine_base_image}, 120s);
}

// ---- EngineContainer --------------------------------------------------------

EngineContainer::EngineContainer(const Lab &lab, DockerApi api, EngineContainerConfig config)
    : lab_(lab), api_(std::move(api)), config_(std::move(config)) {
    if (config_.name.empty() || config_.command.empty()) throw Error("engine container: name and command needed");
    const std::string state_rel = config_.name + "/state"; // below the nest dir
    state_ = lab_.mkdir("n/" + state_rel);
    for (const auto &[rel, content] : config_.state_files) write_below(state_, rel, content);
    import_engine_base(lab_, api_);

    std::vector<std::string> args = {
        "run",
        "-d",
        "--privileged",
        "--network",
        "none",
        "--name",
        config_.name,
        "--label",
        "turtlefinder.test/engine-container=" + config_.name,
        "-v",
        "/usr:/usr:ro",
        "-v",
        api_.nest_dir + ":" + nested_nest_dir,
        "-v",
        api_.runc_wrapper + ":" + nested_runc_wrapper + ":ro",
        "-v",
        api_.nest_dir + "/" + state_rel + ":/var/lib",
        "--tmpfs",
        "/run:rw,exec,mode=755",
        "--tmpfs",
        "/tmp:rw,exec,mode=1777",
    };
    args.insert(args.end(), config_.extra_args.begin(), config_.extra_args.end());
    args.push_back(engine_base_image);
    args.insert(args.end(), config_.command.begin(), config_.command.end());
    auto fail = [&](const std::string &why) {
        throw Error("engine container " + config_.name + ": " + why + "; its log:\n" + logs());
    };
    try {
        id_ = docker_at_ok(api_, args);
        std::string engine_pid = docker_at_ok(api_, {"inspect", "-f", "{{.State.Pid}}", id_});
        engine_side_pid_ = static_cast<pid_t>(std::atoi(engine_pid.c_str()));
        auto host = engine_side_pid_ > 0 ? host_pid_of(api_.engine_pid, engine_side_pid_) : std::nullopt;
        if (!host) fail("no host PID for its init (PID " + engine_pid + " in the engine's namespace)");
        pid_ = *host;
        auto info = proc_info(pid_);
        if (!info) fail("its init is gone");
        starttime_ = info->starttime;

        auto deadline = std::chrono::steady_clock::now() + config_.ready_timeout;
        while (!config_.ready_socket.empty() && !is_listening(pid_, config_.ready_socket)) {
            if (!same_process_alive(pid_, starttime_)) fail("its engine exited");
            if (std::chrono::steady_clock::now() > deadline) fail("nothing listens on " + config_.ready_socket);
            std::this_thread::sleep_for(10ms);
        }
    } catch (...) {
        remove(); // also a container created but not started
        throw;
    }
}

EngineContainer::~EngineContainer() { remove(); }

std::string EngineContainer::host_path(const std::string &inner) const {
    return "/proc/" + std::to_string(pid_) + "/root" + inner;
}

RunResult EngineContainer::exec(const std::vector<std::string> &args, Millis timeout) const {
    std::vector<std::string> full = {"exec", config_.name};
    full.insert(full.end(), args.begin(), args.end());
    return docker_at(api_, full, timeout);
}

std::string EngineContainer::exec_ok(const std::vector<std::string> &args, Millis timeout) const {
    return checked("docker exec " + config_.name + " " + join(args), exec(args, timeout));
}

std::string EngineContainer::logs() const {
    RunResult r = docker_at(api_, {"logs", "--tail", "40", config_.name}, 20s);
    return r.out + r.err;
}

void EngineContainer::remove() noexcept {
    if (removed_) return;
    removed_ = true;
    try {
        // SIGKILL to the init ends its whole PID namespace: the inner engine,
        // its shims and their containers, and with its mount namespace every
        // mount the inner engine made. An outer engine already gone took it along.
        docker_at(api_, {"rm", "-f", "-v", config_.name}, 30s);
        auto deadline = std::chrono::steady_clock::now() + 20s;
        while (pid_ > 0 && same_process_alive(pid_, starttime_) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(10ms);
        if (pid_ > 0 && same_process_alive(pid_, starttime_)) ::kill(pid_, SIGKILL); // outer engine stuck
        remove_tree(fs::path(state_).parent_path().string());
    } catch (...) {
    }
}

// ---- NestedContainerd -------------------------------------------------------

namespace {

EngineContainerConfig containerd_config(const std::string &name) {
    std::ostringstream toml;
    // restrict_oom_score_adj: CRI sandboxes fail without CAP_SYS_RESOURCE
    // otherwise (it writes oom_score_adj = -998).
    toml << "version = 2\n"
         << "root = \"/var/lib/containerd\"\n"
         << "state = \"/run/containerd\"\n"
         << "[grpc]\n  address = \"" << NestedContainerd::socket_inside << "\"\n"
         << "[plugins.\"io.containerd.grpc.v1.cri\"]\n"
         << "  sandbox_image = \"" << NestedContainerd::pause_image << "\"\n"
         << "  restrict_oom_score_adj = true\n"
         << "  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n"
         << "    bin_dir = \"/var/lib/tf-lab/cni/bin\"\n"
         << "    conf_dir = \"/var/lib/tf-lab/cni/conf\"\n";
    EngineContainerConfig c;
    c.name = name;
    c.command = {"/usr/bin/containerd", "--config", "/var/lib/tf-lab/containerd.toml"};
    c.ready_socket = NestedContainerd::socket_inside;
    c.state_files = {
        {"tf-lab/containerd.toml", toml.str()}, {"tf-lab/cni/bin/.keep", ""}, {"tf-lab/cni/conf/.keep", ""}};
    return c;
}

} // namespace

NestedContainerd::NestedContainerd(const Lab &lab, DockerApi api, const std::string &name)
    : EngineContainer(lab, std::move(api), containerd_config(name)) {
    // Listening is not serving yet: wait for an answer.
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!run({"ctr", "-a", socket(), "version"}, {}, 5s).ok()) {
        if (std::chrono::steady_clock::now() > deadline) {
            std::string log = logs();
            remove();
            throw Error("containerd in " + name + " does not answer; its log:\n" + log);
        }
        std::this_thread::sleep_for(20ms);
    }
}

void NestedContainerd::import_images(const std::string &ns) {
    std::string archive = images_archive(lab_, outer());
    RunResult r = run({"ctr", "-a", socket(), "-n", ns, "image", "import", archive}, {}, 120s);
    if (!r.ok()) throw Error("ctr image import into " + name() + " (" + ns + ") failed: " + r.err + r.out);
}

std::string NestedContainerd::ctr_ok(const std::string &ns, const std::vector<std::string> &args,
                                     Millis timeout) const {
    std::vector<std::string> full = {"ctr", "-n", ns};
    full.insert(full.end(), args.begin(), args.end());
    return exec_ok(full, timeout);
}

pid_t NestedContainerd::run_task(const std::string &ns, const std::string &id) {
    ctr_ok(ns, {"run", "-d", "--null-io", busybox_image, id, "sleep", "infinity"});
    // "TASK PID STATUS" rows.
    std::istringstream rows(ctr_ok(ns, {"task", "ls"}));
    for (std::string line; std::getline(rows, line);) {
        std::istringstream f(line);
        std::string task;
        pid_t pid = 0;
        if (f >> task >> pid && task == id) return pid;
    }
    throw Error("task " + id + " not listed by containerd in " + name());
}

// ---- NestedDockerd ----------------------------------------------------------

namespace {

EngineContainerConfig dockerd_config(const std::string &name) {
    EngineContainerConfig c;
    c.name = name;
    // The bind string stays /var/run/docker.sock (a symlink to /run inside),
    // as real docker-in-docker images have it.
    c.command = {"/usr/sbin/dockerd",
                 "--host=unix:///var/run/docker.sock",
                 "--iptables=false",
                 "--ip6tables=false",
                 "--bridge=none",
                 "--storage-driver=vfs",
                 "--userland-proxy=false",
                 "--shutdown-timeout=2",
                 std::string("--add-runtime=tf-runc=") + nested_runc_wrapper,
                 "--default-runtime=tf-runc"};
    c.ready_socket = "/var/run/docker.sock";
    return c;
}

} // namespace

NestedDockerd::NestedDockerd(const Lab &lab, DockerApi api, const std::string &name)
    : EngineContainer(lab, std::move(api), dockerd_config(name)) {
    if (!wait_docker_ping(host_path("/run/docker.sock"), 20s)) {
        std::string log = logs();
        remove();
        throw Error("dockerd in " + name + " does not answer /_ping; its log:\n" + log);
    }
}

DockerApi NestedDockerd::api() const {
    return {host_path("/run/docker.sock"), nested_nest_dir, nested_runc_wrapper, pid(), outer().cli_config};
}

void NestedDockerd::import_busybox() {
    if (busybox_) return;
    docker_ok({"import", "-c", R"(CMD ["sleep","infinity"])", busybox_tar(lab_), "busybox-img"}, 120s);
    busybox_ = true;
}

std::string NestedDockerd::run_busybox(const std::string &name) {
    import_busybox();
    return docker_ok({"run", "-d", "--network", "none", "--name", name, "busybox-img"});
}

pid_t NestedDockerd::containerd_pid() const {
    for (auto [child, parent] : parents())
        if (parent == pid() && comm_of(child) == "containerd") return child;
    return 0;
}

} // namespace turtlefinder::lab
