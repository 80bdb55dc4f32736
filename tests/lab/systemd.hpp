// SPDX-License-Identifier: Apache-2.0
// Socket activation, for real:
//
//   SystemdContainer   systemd as PID 1 of a privileged engine container
//                      (nested.hpp), booting a default target that wants only
//                      podman.socket (plus optional sockets whose service never
//                      becomes podman). The first connection to the socket
//                      starts `podman system service --time=N` as a child of
//                      that systemd; it exits after N idle seconds and the
//                      socket stays armed.
//   SocketActivate     `systemd-socket-activate -l PATH COMMAND...` on the host:
//                      on the first connection it execs COMMAND in place (same
//                      PID, its comm changes from "systemd-socket-" to the
//                      command's).
//
// Readiness is the sockets' LISTEN lines in the activator's /proc/PID/net/unix
// (plus, for systemd, a boot service done and its socket fds settled);
// nothing here connects to a socket to check it, because that activates it.
// Podman always runs rootful with its own configuration (podman.hpp): it
// never reads or writes the host's podman state.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lab.hpp"
#include "nested.hpp"
#include "podman.hpp"

namespace turtlefinder::lab {

struct SystemdConfig {
    std::string name = "tf-systemd"; // container name (the expected engine prefix)
    bool podman = true; // arm podman.socket at all
    std::string socket = "/run/podman/podman.sock"; // podman.socket's ListenStream, inside
    int idle_seconds = 5; // podman system service --time
    // More sockets (paths inside, normally ending in podman.sock) whose
    // service starts but never becomes podman (`sleep infinity`).
    std::vector<std::string> dead_sockets;
    Millis ready_timeout = 20s;
};

class SystemdContainer : public EngineContainer {
public:
    SystemdContainer(const Lab &lab, DockerApi api, SystemdConfig config = {});

    const SystemdConfig &config() const noexcept { return config_; }
    // The podman socket as reachable from the test (connecting activates it).
    std::string reachable_socket() const { return host_path(config_.socket); }
    // LISTEN state of `path` (inside) in systemd's network namespace.
    bool listening(const std::string &path) const;
    // systemd's socket fds ("socket:[INODE]"), sorted.
    std::vector<std::string> socket_fds() const;
    // Host PIDs of systemd's live children named `podman` (the services).
    std::vector<pid_t> podman_services() const;

    // `podman ARGS...` inside the container with the lab's configuration.
    RunResult podman(const std::vector<std::string> &args, Millis timeout = 60s) const;
    std::string podman_ok(const std::vector<std::string> &args, Millis timeout = 60s) const;
    // Imports the busybox rootfs as `image` (CMD sleep infinity), once.
    void import_busybox(const std::string &image = "localhost/busybox-img");
    // `podman run -d --network none --name NAME image`; the container id.
    std::string run_busybox(const std::string &name, const std::string &image = "localhost/busybox-img");

private:
    SystemdConfig config_;
    bool imported_ = false;
};

// `systemd-socket-activate -l SOCKET COMMAND...` as a child of the test.
class SocketActivate {
public:
    // Starts it and waits until SOCKET listens. Throws lab::Error with its log.
    SocketActivate(const Lab &lab, std::string socket, std::vector<std::string> command,
                   std::map<std::string, std::string> env = {}, Millis ready_timeout = 10s);
    // The command is a rootful `podman system service --time=IDLE` with its own
    // configuration and storage below the lab.
    static SocketActivate podman(const Lab &lab, const std::string &socket, int idle_seconds = 5);
    ~SocketActivate() = default; // the Process stops it

    SocketActivate(SocketActivate &&) noexcept = default;

    pid_t pid() const noexcept { return process_.pid(); }
    const std::string &socket() const noexcept { return socket_; }
    Process &process() noexcept { return process_; }
    bool listening() const { return is_listening(process_.pid(), socket_); }

private:
    std::string socket_;
    Process process_;
};

} // namespace turtlefinder::lab
