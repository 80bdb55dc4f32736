// SPDX-License-Identifier: Apache-2.0
// Engines inside containers, for real: an "engine container" is a privileged
// Docker container whose rootfs is almost empty (/bin, /sbin, /lib, /lib64 are
// symlinks into /usr) with the host's /usr bind-mounted read-only, tmpfs on
// /run and /tmp, a writable state dir bound from the lab on /var/lib, and an
// entrypoint that runs an engine from the host's binaries as PID 1 with its
// socket at the usual path (/run/containerd/containerd.sock,
// /var/run/docker.sock). Containers are started with --network none, so an
// inner engine's socket shows only in its own /proc/PID/net/unix; the test
// reaches it through /proc/PID/root.
//
//   DockerApi          a Docker API as the test reaches it, plus the paths the
//                      engine behind it sees (nest dir, runtime wrapper).
//   EngineContainer    the container itself; removal kills the inner engine
//                      and everything it started (they share its PID namespace).
//   NestedContainerd   KinD-like: containerd (CRI on) inside a container.
//   NestedDockerd      docker-in-docker: dockerd (and the containerd it
//                      starts) inside a container; itself a DockerApi, so
//                      engine containers nest further.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lab.hpp"

namespace turtlefinder::lab {

// Where engine containers see the lab's nest dir (lab path "n": state dirs of
// engine containers, so that nested engines can bind them too) and the
// runtime wrapper.
inline constexpr const char *nested_nest_dir = "/tf-lab";
inline constexpr const char *nested_runc_wrapper = "/opt/tf-lab/tf-runc";

// A Docker API endpoint and how its engine sees the lab.
struct DockerApi {
    std::string socket; // reachable from the test (may be /proc/PID/root/...)
    std::string nest_dir; // the lab's nest dir ("n") in the engine's mount namespace
    std::string runc_wrapper; // the CAP_SYS_RESOURCE-stripping runtime, in the engine's mount namespace
    pid_t engine_pid = 0; // the dockerd, host PID (its PID namespace is the one it reports PIDs in)
    std::string cli_config; // DOCKER_CONFIG for the CLI (a lab dir)
};

// The lab's own dockerd as a DockerApi.
DockerApi docker_api(const Lab &lab, const Dockerd &dockerd);

// `docker -H unix://API args...`.
RunResult docker_at(const DockerApi &api, const std::vector<std::string> &args, Millis timeout = 60s);
// docker_at() that throws unless it exits 0; trimmed stdout.
std::string docker_at_ok(const DockerApi &api, const std::vector<std::string> &args, Millis timeout = 60s);

// The PID namespace chain of `pid` (NSpid of /proc/PID/status), outermost
// first; empty when the process is gone.
std::vector<pid_t> nspid(pid_t pid);
// `pid` as seen in the PID namespace of process `namespace_member` (a host
// PID), translated to a host PID by walking that namespace's processes;
// nullopt when none matches. Independent of the library's own translator,
// so tests can check it.
std::optional<pid_t> host_pid_of(pid_t namespace_member, pid_t pid);
// True if `pid` descends from `ancestor` (host PIDs, by PPid links).
bool descends_from(pid_t pid, pid_t ancestor);

// Tarball of the almost empty engine-container rootfs (built once per lab).
std::string engine_base_tar(const Lab &lab);
// Imports that rootfs as `engine_base_image` through `api` (idempotent per call site).
void import_engine_base(const Lab &lab, const DockerApi &api);
inline constexpr const char *engine_base_image = "turtlefinder.test/engine-base:1";

struct EngineContainerConfig {
    std::string name; // container name: what the Finder must report as the prefix
    std::vector<std::string> command; // entrypoint, from the host's /usr
    std::vector<std::string> extra_args; // more `docker run` arguments
    std::string ready_socket; // listening in the container's network namespace = ready
    // Files written below the state dir before the start (path relative to
    // /var/lib inside, content), e.g. the inner engine's configuration.
    std::vector<std::pair<std::string, std::string>> state_files;
    Millis ready_timeout = 20s;
};

class EngineContainer {
public:
    // Creates the state dir below the lab, imports the base image through
    // `api` and starts the container there; waits until `ready_socket` listens.
    // Throws lab::Error with the container's log when it exits or times out.
    EngineContainer(const Lab &lab, DockerApi api, EngineContainerConfig config);
    virtual ~EngineContainer(); // remove()
    EngineContainer(const EngineContainer &) = delete;
    EngineContainer &operator=(const EngineContainer &) = delete;

    const std::string &name() const noexcept { return config_.name; }
    const std::string &id() const noexcept { return id_; }
    // Host PID of the container's init: the inner engine.
    pid_t pid() const noexcept { return pid_; }
    // The same process as the outer engine reports it.
    pid_t engine_side_pid() const noexcept { return engine_side_pid_; }
    const DockerApi &outer() const noexcept { return api_; }
    // `inner` (absolute, inside the container) as a host path via /proc/PID/root.
    std::string host_path(const std::string &inner) const;
    // The state dir bound on /var/lib, host view.
    const std::string &state_dir() const noexcept { return state_; }

    // `docker exec NAME args...` through the outer engine.
    RunResult exec(const std::vector<std::string> &args, Millis timeout = 60s) const;
    std::string exec_ok(const std::vector<std::string> &args, Millis timeout = 60s) const;
    std::string logs() const;

    // docker rm -f, waits for the init to be gone, removes the state dir.
    // Idempotent; never throws.
    void remove() noexcept;

protected:
    const Lab &lab_;

private:
    DockerApi api_;
    EngineContainerConfig config_;
    std::string state_, id_;
    pid_t pid_ = 0, engine_side_pid_ = 0;
    unsigned long long starttime_ = 0;
    bool removed_ = false;
};

// KinD-like: containerd (CRI plugin on, restrict_oom_score_adj, our own pause
// image as sandbox image) as PID 1 of an engine container.
class NestedContainerd : public EngineContainer {
public:
    static constexpr const char *socket_inside = "/run/containerd/containerd.sock";
    static constexpr const char *pause_image = "turtlefinder.test/pause:1";
    static constexpr const char *busybox_image = "turtlefinder.test/busybox:1";

    NestedContainerd(const Lab &lab, DockerApi api, const std::string &name);

    // The API socket, host view.
    std::string socket() const { return host_path(socket_inside); }
    // Imports busybox_image and pause_image into `ns` from the host through
    // the socket (a Docker archive saved from the outer engine).
    void import_images(const std::string &ns);
    // `ctr -n NS args...` run inside the container (ctr mounts snapshots
    // client-side, so it must share containerd's mount namespace).
    std::string ctr_ok(const std::string &ns, const std::vector<std::string> &args, Millis timeout = 60s) const;
    // A busybox task `sleep infinity` in `ns`; its PID as containerd reports it.
    pid_t run_task(const std::string &ns, const std::string &id);
};

// docker-in-docker: dockerd as PID 1 of an engine container (it starts its own
// containerd under /var/run/docker/containerd), with the runtime wrapper as
// default runtime so that its own engine containers work too.
class NestedDockerd : public EngineContainer {
public:
    NestedDockerd(const Lab &lab, DockerApi api, const std::string &name);

    // This dockerd as a Docker API (for docker_at and nested EngineContainers).
    DockerApi api() const;
    std::string docker_ok(const std::vector<std::string> &args, Millis timeout = 60s) const {
        return docker_at_ok(api(), args, timeout);
    }
    // Loads the busybox tarball through the socket (docker import), once.
    void import_busybox();
    // `docker run -d --network none --name NAME busybox sleep infinity`; its id.
    std::string run_busybox(const std::string &name);
    // The managed containerd (child of dockerd), host PID; 0 if none.
    pid_t containerd_pid() const;

private:
    bool busybox_ = false;
};

} // namespace turtlefinder::lab
