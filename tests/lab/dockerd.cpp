// SPDX-License-Identifier: Apache-2.0
// A real dockerd with private sockets and state.
#include "lab.hpp"

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace turtlefinder::lab {

namespace {

// A dockerd killed with SIGKILL leaves its containers running: their shims
// detach from its process group, and nothing stops them. Kills every shim
// whose containerd socket lies under `dir`, its container processes first.
void kill_left_behind_shims(const std::string &dir) {
    const std::string address = " -address " + dir + "/";
    for (int round = 0; round < 50; ++round) {
        std::vector<pid_t> shims;
        for (pid_t pid : all_pids()) {
            std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
            std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
            if (cmdline.find("containerd-shim") != std::string::npos && cmdline.find(address) != std::string::npos)
                shims.push_back(pid);
        }
        if (shims.empty()) return;
        for (pid_t shim : shims) {
            auto tree = descendants_of(shim);
            tree.insert(tree.begin(), shim);
            for (auto pid = tree.rbegin(); pid != tree.rend(); ++pid) ::kill(*pid, SIGKILL);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

} // namespace

std::string runc_wrapper_path() { return TF_LAB_RUNC_WRAPPER; }

Dockerd::Dockerd(const Lab &lab, DockerdConfig config) : lab_(lab), config_(std::move(config)) {
    dir_ = lab_.mkdir(config_.dir_name);
    socket_ = dir_ + "/docker.sock";
    lab_.write_file(config_.dir_name + "/daemon.json", "{}\n"); // never read /etc/docker/daemon.json
    std::vector<std::string> args = {
        "dockerd",
        "--host=unix://" + socket_,
        "--data-root=" + dir_ + "/data",
        "--exec-root=" + dir_ + "/exec",
        "--pidfile=" + dir_ + "/dockerd.pid",
        "--config-file=" + dir_ + "/daemon.json",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--storage-driver=vfs",
        "--userland-proxy=false",
        "--shutdown-timeout=2",
    };
    if (!config_.containerd_socket.empty()) args.push_back("--containerd=" + config_.containerd_socket);
    if (config_.runtime_wrapper) {
        args.push_back("--add-runtime=tf-runc=" + runc_wrapper_path());
        args.push_back("--default-runtime=tf-runc");
    }
    args.insert(args.end(), config_.extra_args.begin(), config_.extra_args.end());
    SpawnOptions so;
    so.args = std::move(args);
    so.log_path = dir_ + "/dockerd.log";
    // Reaches the wrapper through dockerd's containerd and its shims: runc
    // state stays in this lab, not under the host-wide /run/containerd/runc.
    if (config_.runtime_wrapper) so.env["TF_LAB_RUNC_ROOT"] = dir_ + "/runc";
    process_ = Process(so);
    if (!wait_docker_ping(socket_, config_.ready_timeout)) {
        std::string tail = process_.log_tail();
        stop();
        throw Error("dockerd did not answer /_ping on " + socket_ + "; log:\n" + tail);
    }
}

Dockerd::~Dockerd() { stop(); }

RunResult Dockerd::docker(const std::vector<std::string> &args, Millis timeout) const {
    std::vector<std::string> full = {"docker", "-H", host()};
    full.insert(full.end(), args.begin(), args.end());
    return run(full, {{"DOCKER_CONFIG", dir_ + "/cli"}}, timeout, dir_);
}

std::string Dockerd::docker_ok(const std::vector<std::string> &args, Millis timeout) const {
    return checked("docker " + join(args), docker(args, timeout));
}

void Dockerd::import_busybox(const std::string &image) {
    if (std::find(imported_.begin(), imported_.end(), image) != imported_.end()) return;
    std::string tar = busybox_tar(lab_);
    docker_ok({"import", "-c", R"(CMD ["sleep","infinity"])", tar, image});
    imported_.push_back(image);
}

std::string Dockerd::run_container(const std::vector<std::string> &extra_args, const std::string &image,
                                   const std::vector<std::string> &cmd) {
    std::vector<std::string> args = {"run", "-d", "--network", "none"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    args.push_back(image);
    args.insert(args.end(), cmd.begin(), cmd.end());
    return docker_ok(args);
}

void Dockerd::stop() {
    if (stopped_) return;
    stopped_ = true;
    if (process_.running()) {
        // Kill containers first: `sleep` as PID 1 ignores SIGTERM, so a
        // daemon shutdown would wait out every stop timeout.
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
    kill_left_behind_shims(dir_);
    remove_tree(dir_);
}

} // namespace turtlefinder::lab
