// SPDX-License-Identifier: Apache-2.0
// Rootless engines for the lab: a test user that exists only for the lab's
// own processes, and a rootless dockerd (RootlessKit) running as that user.
//
//   TestUser          an unused numeric UID/GID. The host's /etc is never
//                     changed: its passwd, group, subuid and subgid entries
//                     are lab files that a private mount namespace (made per
//                     command with `unshare -m`) shows over /etc/passwd,
//                     /etc/group, /etc/subuid and /etc/subgid; the lab's
//                     runtime root is shown at /run/user there, so the user's
//                     XDG_RUNTIME_DIR is /run/user/UID, as on a real host,
//                     while its content lies in the lab. Commands run as the
//                     user through setpriv, with no capability left.
//   RootlessDockerd   `dockerd-rootless.sh` as the test user: RootlessKit's
//                     user and mount namespaces (optionally its own PID
//                     namespace), dockerd's own containerd, state under the
//                     user's home in the lab.
//   UserManager       a real `systemd --user` for the test user, started on a
//                     target that wants only the user's podman.socket (the
//                     units Debian's podman ships), with rootless podman
//                     configured in the user's ~/.config/containers. A user
//                     manager needs what logind and PID 1 give it on a real
//                     host: /run/systemd/system (shown on a tmpfs in its
//                     private mount namespace) and a cgroup of its own
//                     (delegated: made in the cgroup2 hierarchy, handed to
//                     the user, removed afterwards).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "lab.hpp"

namespace turtlefinder::lab {

class TestUser {
public:
    // Picks a UID/GID no passwd/group entry and no process uses, and makes
    // its home and runtime directory under the lab. Throws if this host
    // cannot give the user its ids (no /etc/subuid to cover, say).
    explicit TestUser(const Lab &lab, std::string name = "tfuser");
    ~TestUser(); // kills what still runs as the user (each by its PID)
    TestUser(const TestUser &) = delete;
    TestUser &operator=(const TestUser &) = delete;

    uid_t uid() const noexcept { return uid_; }
    gid_t gid() const noexcept { return gid_; }
    const std::string &name() const noexcept { return name_; }
    const std::string &home() const noexcept { return home_; } // a lab path, the same inside and out
    // XDG_RUNTIME_DIR as the user's commands see it (/run/user/UID).
    const std::string &runtime_dir() const noexcept { return runtime_dir_; }

    // SpawnOptions running `args` as the user in a fresh private mount
    // namespace showing the lab's account files (see above), with a clean
    // environment: PATH, HOME, USER, LOGNAME, XDG_RUNTIME_DIR, then `env`.
    SpawnOptions as_user(const std::vector<std::string> &args, const std::map<std::string, std::string> &env = {},
                         const std::string &log_path = {}) const;
    // run() of as_user().
    RunResult run_as(const std::vector<std::string> &args, const std::map<std::string, std::string> &env = {},
                     Millis timeout = 60s) const;

    // PIDs of the processes whose real UID is the user's.
    std::vector<pid_t> processes() const;
    // The lab directory the user's files are in (its home is below it).
    const std::string &dir() const noexcept { return dir_; }

private:
    const Lab &lab_;
    std::string name_;
    uid_t uid_ = 0;
    gid_t gid_ = 0;
    std::string dir_, home_, runtime_dir_, enter_script_;
};

struct RootlessDockerdConfig {
    std::string dir_name = "rd"; // below the user's home
    bool pid_namespace = false; // RootlessKit --pidns: dockerd is PID 1 of its own PID namespace
    Millis ready_timeout = 30s;
};

class RootlessDockerd {
public:
    // Starts dockerd-rootless.sh as `user` and waits for its API.
    RootlessDockerd(const Lab &lab, const TestUser &user, RootlessDockerdConfig config = {});
    ~RootlessDockerd(); // stop()
    RootlessDockerd(const RootlessDockerd &) = delete;
    RootlessDockerd &operator=(const RootlessDockerd &) = delete;

    pid_t pid() const noexcept { return dockerd_pid_; } // dockerd, in our PID namespace
    pid_t rootlesskit_pid() const noexcept { return process_.pid(); }
    // The socket path as dockerd bound it (in its mount namespace).
    std::string bound_socket() const { return user_.runtime_dir() + "/docker.sock"; }
    // The same socket reached from here, through dockerd's root.
    std::string socket() const;
    const std::string &dir() const noexcept { return dir_; }

    RunResult docker(const std::vector<std::string> &args, Millis timeout = 60s) const;
    std::string docker_ok(const std::vector<std::string> &args, Millis timeout = 60s) const;
    // Imports the busybox rootfs as `image` (CMD sleep infinity), once.
    void import_busybox(const std::string &image = "busybox-img");
    // `docker run -d --network none [extra...] image`; the container id.
    std::string run_container(const std::vector<std::string> &extra_args = {},
                              const std::string &image = "busybox-img");

    // Removes every container, stops RootlessKit and everything of it. Idempotent.
    void stop();

private:
    const Lab &lab_;
    const TestUser &user_;
    RootlessDockerdConfig config_;
    std::string dir_;
    Process process_;
    pid_t dockerd_pid_ = 0;
    std::vector<std::string> imported_;
    bool stopped_ = false;
};

class UserManager {
public:
    // Configures rootless podman for `user`, starts `systemd --user` and
    // waits until podman.socket listens. Throws (with the log tail) if the
    // manager cannot run here.
    UserManager(const Lab &lab, const TestUser &user, Millis ready_timeout = 20s);
    ~UserManager(); // stop()
    UserManager(const UserManager &) = delete;
    UserManager &operator=(const UserManager &) = delete;

    pid_t pid() const noexcept { return process_.pid(); } // systemd --user
    const std::string &cgroup() const noexcept { return cgroup_; } // its delegated cgroup
    // podman.socket's path as the manager bound it.
    std::string podman_socket() const { return user_.runtime_dir() + "/podman/podman.sock"; }
    // The podman CLI as the user (rootless, the same storage as the service).
    RunResult podman(const std::vector<std::string> &args, Millis timeout = 60s) const;
    std::string podman_ok(const std::vector<std::string> &args, Millis timeout = 60s) const;
    // Imports the busybox rootfs as `image` (CMD sleep infinity).
    void import_busybox(const std::string &image = "localhost/busybox-img");

    // Stops the manager (and the podman it started), removes the containers
    // and the cgroup. Idempotent.
    void stop();

private:
    const Lab &lab_;
    const TestUser &user_;
    std::string cgroup_;
    Process process_;
    bool stopped_ = false;
};

} // namespace turtlefinder::lab
