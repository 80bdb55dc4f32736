// SPDX-License-Identifier: Apache-2.0
#include "containerd.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace turtlefinder::lab {

namespace {

std::vector<std::string> lines(const std::string &text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!trim(line).empty()) out.push_back(trim(line));
    return out;
}

// A static program that sleeps until SIGINT/SIGTERM and reaps its children:
// all a pod sandbox's init has to do.
constexpr const char *pause_source = R"(#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void on_stop(int s) { (void)s; _exit(0); }
static void on_child(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGINT, on_stop);
    signal(SIGTERM, on_stop);
    signal(SIGCHLD, on_child);
    for (;;) pause();
}
)";

std::string json_string_array(const std::vector<std::string> &items) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ",\"" : "\"") + items[i] + "\"";
    return out + "]";
}

RunResult must(const RunResult &r, const std::string &what) {
    if (!r.ok()) throw Error(what + " failed (" + std::to_string(r.exit_code) + "): " + r.err + r.out);
    return r;
}

} // namespace

Containerd::Containerd(const Lab &lab, ContainerdConfig config)
    : lab_(lab), config_(std::move(config)), dir_(lab.mkdir(config_.dir_name)) {
    std::string binary = find_program("containerd");
    if (config_.process_name != "containerd") {
        // A copy, so the process's comm is the stand-in's name.
        std::string copy = lab_.mkdir(config_.dir_name + "/bin") + "/" + config_.process_name;
        fs::copy_file(binary, copy, fs::copy_options::overwrite_existing);
        ::chmod(copy.c_str(), 0755);
        binary = copy;
    }
    socket_ = dir_ + "/" + (config_.socket_rel.empty() ? config_.process_name + ".sock" : config_.socket_rel);
    fs::create_directories(fs::path(socket_).parent_path());
    lab_.mkdir(config_.dir_name + "/cni/bin");
    lab_.mkdir(config_.dir_name + "/cni/conf");

    std::ostringstream toml;
    toml << "version = 2\n"
         << "root = \"" << dir_ << "/root\"\n"
         << "state = \"" << dir_ << "/state\"\n";
    if (!config_.cri) toml << "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n";
    toml << "[grpc]\n  address = \"" << socket_ << "\"\n"
         << "[ttrpc]\n  address = \"" << socket_ << ".ttrpc\"\n"
         << "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"" << dir_ << "/opt\"\n";
    if (config_.cri) {
        // restrict_oom_score_adj: this VM lacks CAP_SYS_RESOURCE (ENGINES.md).
        toml << "[plugins.\"io.containerd.grpc.v1.cri\"]\n"
             << "  sandbox_image = \"" << pause_image << "\"\n"
             << "  restrict_oom_score_adj = true\n"
             << "  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n"
             << "    runtime_type = \"io.containerd.runc.v2\"\n"
             << "    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n"
             << "      Root = \"" << runc_root() << "\"\n"
             << "  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n"
             << "    bin_dir = \"" << dir_ << "/cni/bin\"\n"
             << "    conf_dir = \"" << dir_ << "/cni/conf\"\n";
    }
    std::string config_path = lab_.write_file(config_.dir_name + "/config.toml", toml.str());

    binary_ = binary;
    config_path_ = config_path;
    start();
}

void Containerd::start() {
    SpawnOptions spawn;
    spawn.args = {binary_, "--config", config_path_};
    spawn.log_path = dir_ + "/log";
    process_ = Process(spawn);
    if (!wait_listening(process_.pid(), socket_, config_.ready_timeout)) {
        std::string tail = process_.log_tail();
        stop();
        throw Error(config_.process_name + " did not listen on " + socket_ + ": " + tail);
    }
    auto deadline = std::chrono::steady_clock::now() + config_.ready_timeout;
    while (!ctr("default", {"version"}, 5s).ok()) {
        if (std::chrono::steady_clock::now() > deadline) {
            std::string tail = process_.log_tail();
            stop();
            throw Error(config_.process_name + " does not answer on " + socket_ + ": " + tail);
        }
    }
}

void Containerd::crash_and_restart() {
    process_.kill9();
    start(); // same config and state: running tasks' shims survive and are reconnected
}

Containerd::~Containerd() { stop(); }

RunResult Containerd::ctr(const std::string &ns, const std::vector<std::string> &args, Millis timeout) const {
    std::vector<std::string> argv{"ctr", "-a", socket_, "-n", ns};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {}, timeout);
}

std::string Containerd::ctr_ok(const std::string &ns, const std::vector<std::string> &args, Millis timeout) const {
    auto r = ctr(ns, args, timeout);
    std::string cmd;
    for (const auto &a : args) cmd += " " + a;
    if (!r.ok()) throw Error("ctr -n " + ns + cmd + " failed: " + r.err + r.out);
    return trim(r.out);
}

void Containerd::import_archive(const std::string &ns, const std::string &rootfs, const std::string &image,
                                const std::vector<std::string> &cmd) {
    // A Docker image archive (manifest.json + config + one layer) written by
    // hand: no registry and no dockerd needed.
    std::string work = lab_.mkdir(config_.dir_name + "/images/" + fs::path(rootfs).filename().string() + "-img");
    must(run({"tar", "-C", rootfs, "-cf", work + "/layer.tar", "."}), "tar layer");
    auto sum = must(run({"sha256sum", work + "/layer.tar"}), "sha256sum").out;
    std::string diff_id = "sha256:" + sum.substr(0, 64);
    std::ostringstream config;
    config << R"({"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":)"
           << json_string_array(cmd) << R"(},"rootfs":{"type":"layers","diff_ids":[")" << diff_id << R"("]}})";
    std::ofstream(work + "/config.json") << config.str();
    std::ofstream(work + "/manifest.json")
        << R"([{"Config":"config.json","RepoTags":[")" << image << R"("],"Layers":["layer.tar"]}])";
    std::string archive = work + ".tar";
    must(run({"tar", "-C", work, "-cf", archive, "manifest.json", "config.json", "layer.tar"}), "tar image");
    ctr_ok(ns, {"image", "import", archive}, 120s);
}

void Containerd::import_busybox(const std::string &ns) {
    std::string key = ns + "|busybox";
    if (std::find(imported_.begin(), imported_.end(), key) != imported_.end()) return;
    std::string rootfs = dir_ + "/busybox";
    if (!fs::exists(rootfs + "/bin/busybox")) busybox_rootfs(rootfs);
    import_archive(ns, rootfs, busybox_image, {"sleep", "infinity"});
    imported_.push_back(key);
}

void Containerd::import_pause() {
    if (std::find(imported_.begin(), imported_.end(), "k8s.io|pause") != imported_.end()) return;
    std::string rootfs = lab_.mkdir(config_.dir_name + "/pause");
    std::string source = lab_.write_file(config_.dir_name + "/pause.c", pause_source);
    must(run({"gcc", "-static", "-O2", "-o", rootfs + "/pause", source}), "gcc pause");
    import_archive("k8s.io", rootfs, pause_image, {"/pause"});
    imported_.push_back("k8s.io|pause");
}

pid_t Containerd::run_task(const std::string &ns, const std::string &id, const std::vector<std::string> &labels) {
    import_busybox(ns);
    std::vector<std::string> args{"run", "-d", "--null-io", "--runc-root", runc_root()};
    for (const auto &l : labels) args.insert(args.end(), {"--label", l});
    args.insert(args.end(), {busybox_image, id, "sleep", "infinity"});
    ctr_ok(ns, args);
    return task_pid(ns, id);
}

void Containerd::pause_task(const std::string &ns, const std::string &id) { ctr_ok(ns, {"task", "pause", id}); }

void Containerd::resume_task(const std::string &ns, const std::string &id) { ctr_ok(ns, {"task", "resume", id}); }

void Containerd::kill_task(const std::string &ns, const std::string &id) {
    ctr(ns, {"task", "kill", "-s", "SIGKILL", id});
    ctr(ns, {"task", "delete", "--force", id});
    ctr(ns, {"container", "delete", id});
}

pid_t Containerd::task_pid(const std::string &ns, const std::string &id) const {
    // "TASK  PID  STATUS" table.
    for (const auto &line : lines(ctr(ns, {"task", "ls"}).out)) {
        std::istringstream in(line);
        std::string task, pid;
        in >> task >> pid;
        if (task == id) return static_cast<pid_t>(std::atoi(pid.c_str()));
    }
    return 0;
}

void Containerd::stop() {
    if (stopped_) return;
    stopped_ = true;
    if (process_.running()) {
        // Tasks first: their shims outlive containerd otherwise.
        for (const auto &ns : lines(ctr("default", {"namespace", "ls", "-q"}, 10s).out)) {
            for (const auto &task : lines(ctr(ns, {"task", "ls", "-q"}, 10s).out)) {
                ctr(ns, {"task", "kill", "-s", "SIGKILL", task}, 10s);
                ctr(ns, {"task", "delete", "--force", task}, 20s);
            }
            for (const auto &c : lines(ctr(ns, {"container", "ls", "-q"}, 10s).out))
                ctr(ns, {"container", "delete", c}, 10s);
        }
    }
    process_.stop();
    remove_tree(dir_);
}

} // namespace turtlefinder::lab
