// SPDX-License-Identifier: Apache-2.0
// Rootful podman for the lab, with a configuration of its own: it never reads
// or writes the host's podman state (/var/lib/containers, /run/libpod,
// /etc/containers/storage.conf), and it fits this kind of host: runc (crun
// refuses a hybrid cgroup layout), cgroupfs (no systemd bus), file events (no
// journal), ulimits below the hard limits of a host without CAP_SYS_RESOURCE.
//
//   PodmanLayout / podman_containers_conf / podman_storage_conf
//                      the configuration text for given paths (as the podman
//                      process sees them: also used inside containers).
//   write_podman_files a whole configuration below a lab directory.
//   PodmanService      `podman system service --time=0 unix://SOCKET` on the
//                      host, not socket-activated (e.g. a podman-docker
//                      `docker.sock`).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

#include "lab.hpp"

namespace turtlefinder::lab {

// Where podman keeps things, as paths the podman process sees.
struct PodmanLayout {
    std::string graph_root; // image and container storage (vfs)
    std::string run_root; // storage run state
    std::string tmp_dir; // libpod's run state and events log
    std::string network_dir; // CNI configuration podman may write
    std::string copy_tmp_dir; // scratch space of image imports (must exist)
};
// containers.conf text for `layout`.
std::string podman_containers_conf(const PodmanLayout &layout);
// storage.conf text for `layout`.
std::string podman_storage_conf(const PodmanLayout &layout);
// The environment pointing podman at those files.
std::map<std::string, std::string> podman_env(const std::string &containers_conf, const std::string &storage_conf);

struct PodmanFiles {
    std::string dir; // everything below here
    std::string containers_conf;
    std::string storage_conf;
    // podman_env() plus PATH (conmon and runc are looked up there).
    std::map<std::string, std::string> env() const;
};
// A configuration whose state all lies below lab directory `rel`.
PodmanFiles write_podman_files(const Lab &lab, const std::string &rel);

class PodmanService {
public:
    // Starts the service on `socket` (an absolute path; parents are created)
    // with its configuration below lab dir `rel`, and waits until /_ping
    // answers. Throws lab::Error with the log tail otherwise.
    PodmanService(const Lab &lab, std::string socket, const std::string &rel = "pms", Millis ready_timeout = 20s);

    pid_t pid() const noexcept { return process_.pid(); }
    const std::string &socket() const noexcept { return socket_; }
    Process &process() noexcept { return process_; }

private:
    std::string socket_;
    Process process_;
};

} // namespace turtlefinder::lab
