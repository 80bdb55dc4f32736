// SPDX-License-Identifier: Apache-2.0
// A real containerd for tests: own config, root, state and sockets below the
// lab root; the CRI plugin on (host-network pods only, a locally built pause
// image as sandbox image); optionally started under another process name, which
// is how the tests stand in for CRI-O (not packaged for Debian 12): a copy of
// the containerd binary named `crio` is a real CRI server a `crio` detector finds.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "lab.hpp"

namespace turtlefinder::lab {

struct ContainerdConfig {
    std::string dir_name = "c"; // below the lab root
    std::string process_name = "containerd"; // the binary is copied under this name if different
    std::string socket_rel; // below dir; default "<process_name>.sock"
    bool cri = true;
    Millis ready_timeout = 20s;
};

class Containerd {
public:
    // The sandbox image name the CRI plugin is configured with.
    static constexpr const char *pause_image = "turtlefinder.test/pause:1";
    static constexpr const char *busybox_image = "turtlefinder.test/busybox:1";

    // Writes the config, starts containerd and waits until its socket listens
    // and answers `ctr version`. Throws lab::Error with the log tail otherwise.
    explicit Containerd(const Lab &lab, ContainerdConfig config = {});
    ~Containerd(); // stop()
    Containerd(const Containerd &) = delete;
    Containerd &operator=(const Containerd &) = delete;

    const std::string &socket() const noexcept { return socket_; }
    const std::string &dir() const noexcept { return dir_; }
    // Where runc keeps this engine's container state (NAMESPACE/ID below it),
    // instead of the host-wide /run/containerd/runc an engine the user runs
    // may share: `ctr run --runc-root` for tasks, the CRI runtime's Root.
    std::string runc_root() const { return dir_ + "/runc"; }
    pid_t pid() const noexcept { return process_.pid(); }
    Process &process() noexcept { return process_; }

    // `ctr -a SOCKET -n NS args...`.
    RunResult ctr(const std::string &ns, const std::vector<std::string> &args, Millis timeout = 60s) const;
    // ctr() that throws unless it exits 0; trimmed stdout.
    std::string ctr_ok(const std::string &ns, const std::vector<std::string> &args, Millis timeout = 60s) const;

    // Imports the busybox image (busybox_image) into `ns` (once per namespace).
    void import_busybox(const std::string &ns);
    // Builds a tiny static pause program with gcc, imports it as pause_image
    // into "k8s.io" (once).
    void import_pause();

    // `ctr run -d --null-io busybox_image ID sleep infinity` in `ns`; the task's PID.
    pid_t run_task(const std::string &ns, const std::string &id, const std::vector<std::string> &labels = {});
    void pause_task(const std::string &ns, const std::string &id);
    void resume_task(const std::string &ns, const std::string &id);
    // SIGKILL to the task, then deletes task and container.
    void kill_task(const std::string &ns, const std::string &id);
    // Host PID of the task, 0 when it has none.
    pid_t task_pid(const std::string &ns, const std::string &id) const;

    // SIGKILLs containerd (a crash) and starts it again on the same config and
    // state, waiting until it answers; a new PID, the same socket.
    void crash_and_restart();

    // Deletes every task and container of every namespace, stops containerd,
    // unmounts and removes its directory. Idempotent.
    void stop();

private:
    void import_archive(const std::string &ns, const std::string &rootfs, const std::string &image,
                        const std::vector<std::string> &cmd);

    void start();

    const Lab &lab_;
    ContainerdConfig config_;
    std::string dir_, socket_, binary_, config_path_;
    Process process_;
    std::vector<std::string> imported_;
    bool stopped_ = false;
};

} // namespace turtlefinder::lab
