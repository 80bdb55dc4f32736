// SPDX-License-Identifier: Apache-2.0
// Rootful podman with the lab's own configuration.
#include "podman.hpp"

#include <cstdlib>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace turtlefinder::lab {

std::string podman_containers_conf(const PodmanLayout &layout) {
    std::ostringstream s;
    s << "[containers]\n"
      << "default_ulimits = [\"nofile=16384:16384\", \"nproc=16384:16384\"]\n"
      << "log_driver = \"k8s-file\"\n\n"
      << "[engine]\n"
      << "runtime = \"runc\"\n"
      << "cgroup_manager = \"cgroupfs\"\n"
      << "events_logger = \"file\"\n"
      << "tmp_dir = \"" << layout.tmp_dir << "\"\n"
      << "image_copy_tmp_dir = \"" << layout.copy_tmp_dir << "\"\n\n"
      << "[network]\n"
      << "network_config_dir = \"" << layout.network_dir << "\"\n";
    return s.str();
}

std::string podman_storage_conf(const PodmanLayout &layout) {
    return "[storage]\ndriver = \"vfs\"\ngraphroot = \"" + layout.graph_root + "\"\nrunroot = \"" + layout.run_root +
           "\"\n";
}

std::map<std::string, std::string> podman_env(const std::string &containers_conf, const std::string &storage_conf) {
    return {{"CONTAINERS_CONF", containers_conf}, {"CONTAINERS_STORAGE_CONF", storage_conf}};
}

std::map<std::string, std::string> PodmanFiles::env() const {
    auto e = podman_env(containers_conf, storage_conf);
    if (const char *path = std::getenv("PATH")) e["PATH"] = path;
    return e;
}

PodmanFiles write_podman_files(const Lab &lab, const std::string &rel) {
    PodmanFiles f;
    f.dir = lab.mkdir(rel);
    PodmanLayout layout{f.dir + "/storage", f.dir + "/run", f.dir + "/tmp", f.dir + "/cni", lab.mkdir(rel + "/copy")};
    f.containers_conf = lab.write_file(rel + "/containers.conf", podman_containers_conf(layout));
    f.storage_conf = lab.write_file(rel + "/storage.conf", podman_storage_conf(layout));
    return f;
}

PodmanService::PodmanService(const Lab &lab, std::string socket, const std::string &rel, Millis ready_timeout)
    : socket_(std::move(socket)) {
    if (socket_.empty() || socket_[0] != '/') throw Error("podman service: an absolute socket path is needed");
    fs::create_directories(fs::path(socket_).parent_path());
    PodmanFiles files = write_podman_files(lab, rel);
    SpawnOptions so;
    so.args = {find_program("podman"), "system", "service", "--time=0", "unix://" + socket_};
    so.env = files.env();
    so.log_path = files.dir + "/service.log";
    process_ = Process(so);
    if (!wait_docker_ping(socket_, ready_timeout)) {
        std::string tail = process_.log_tail();
        process_.stop(5s);
        throw Error("podman system service does not answer on " + socket_ + "; log:\n" + tail);
    }
}

} // namespace turtlefinder::lab
