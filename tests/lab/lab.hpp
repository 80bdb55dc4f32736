// SPDX-License-Identifier: Apache-2.0
// The engine test lab: real engines started by the tests themselves, each
// with its own sockets and state under a private temporary directory, and
// stopped and cleaned afterwards. Nothing here touches /etc, a default socket
// or another engine's state.
//
// Building blocks, generic so that other engines' helpers (containerd, CRI,
// podman, systemd-in-a-container) can sit beside Dockerd in their own files:
//
//   Lab            a temporary root under /tmp (short: unix socket paths are
//                  limited to 107 bytes); unmounts and removes it on destruction.
//   Process        a spawned child (own process group, stdout+stderr to a log
//                  file); stop() = SIGTERM, then SIGKILL after a deadline, reaped.
//   run()          runs a command to completion with a timeout, capturing output.
//   is_listening() / wait_listening()
//                  LISTEN state of a unix socket path in /proc/PID/net/unix.
//   wait_docker_ping()
//                  a Docker-compatible API answering GET /_ping.
//   busybox_rootfs() / busybox_tar()
//                  a minimal image rootfs (static busybox + applet links +
//                  /etc/passwd, /etc/group) and its tarball.
//   Dockerd        a real dockerd; docker() runs the CLI against it.
//   FakeEngine     TEST DOUBLE: a process named like an engine whose socket
//                  misbehaves (garbage, hang, slow, close, ...).
//
// Every helper throws lab::Error with a message that says what failed and,
// for engines, the tail of their log.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turtlefinder::lab {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// ---- temporary root ----------------------------------------------------

class Lab {
public:
    // Creates /tmp/tf-<tag>-XXXXXX (tag shortened to 8 chars).
    explicit Lab(std::string_view tag = "lab");
    ~Lab(); // unmounts everything below root (deepest first), then removes it
    Lab(const Lab &) = delete;
    Lab &operator=(const Lab &) = delete;

    const std::string &root() const noexcept { return root_; }
    // root/rel (no check).
    std::string path(std::string_view rel) const;
    // Creates root/rel (with parents) and returns it.
    std::string mkdir(std::string_view rel) const;
    // Writes `content` to root/rel (creating parents); returns the path.
    std::string write_file(std::string_view rel, std::string_view content, mode_t mode = 0644) const;

private:
    std::string root_;
};

// Detaches every mount at or below `dir`, deepest first. Best effort.
void unmount_below(const std::string &dir);
// unmount_below + recursive removal. Best effort, never throws.
void remove_tree(const std::string &dir) noexcept;

// ---- processes ---------------------------------------------------------

// Absolute path of `name` found on PATH; throws when absent.
std::string find_program(std::string_view name);
// Same, nullopt when absent.
std::optional<std::string> which(std::string_view name);
// comm of a host PID, empty when gone.
std::string comm_of(pid_t pid);
// Every PID in /proc now.
std::vector<pid_t> all_pids();
// The children of a host PID (of every thread of it); empty when gone.
std::vector<pid_t> children_of(pid_t pid);
// Its descendants, children first (breadth first, at most 4096).
std::vector<pid_t> descendants_of(pid_t pid);

struct SpawnOptions {
    std::vector<std::string> args; // args[0]: program (absolute, or looked up on PATH)
    std::map<std::string, std::string> env; // added to (or overriding) the test's environment
    std::string log_path; // stdout+stderr; /dev/null when empty
    std::string cwd; // working directory; inherited when empty
};

class Process {
public:
    Process() = default;
    // Starts a child in its own process group. Throws on failure to start.
    explicit Process(const SpawnOptions &options);
    ~Process(); // stop()
    Process(Process &&other) noexcept;
    Process &operator=(Process &&other) noexcept;
    Process(const Process &) = delete;
    Process &operator=(const Process &) = delete;

    pid_t pid() const noexcept { return pid_; }
    const std::string &log_path() const noexcept { return log_path_; }
    // True while the child has not exited (reaps it if it has).
    bool running();
    // Waits up to `deadline` for the child to exit; its wait status, or nullopt.
    std::optional<int> wait(Millis deadline);
    // SIGTERM (or `signal`) to the child, SIGKILL to its group after `grace`,
    // then SIGKILL to whatever is left of the group; reaps. Returns the wait
    // status (or -1 when nothing ran). Idempotent.
    int stop(Millis grace = 5s, int signal = 15 /* SIGTERM */);
    // SIGKILL to the child only (a crash, as an engine would see it); reaps.
    void kill9();
    // The last `max_bytes` of the log.
    std::string log_tail(std::size_t max_bytes = 4000) const;

private:
    pid_t pid_ = -1;
    std::optional<int> status_;
    std::string log_path_;
};

struct RunResult {
    int exit_code = -1; // -1: killed by a signal or timed out
    bool timed_out = false;
    std::string out;
    std::string err;
    bool ok() const { return exit_code == 0; }
};

// Runs `args` to completion (killed at `timeout`), capturing stdout/stderr.
// `scratch_dir` holds the capture files (a fresh temporary dir when empty).
RunResult run(const std::vector<std::string> &args, const std::map<std::string, std::string> &env = {},
              Millis timeout = 60s, const std::string &scratch_dir = {});

// ---- waiting -----------------------------------------------------------

// True if `pid`'s network namespace has a listening stream unix socket bound
// to `path` (as listed in /proc/PID/net/unix, i.e. the bind() string).
bool is_listening(pid_t pid, const std::string &path);
// Polls is_listening until `deadline`.
bool wait_listening(pid_t pid, const std::string &path, Millis deadline = 10s);
// Polls GET /_ping on the Docker-compatible API at `socket_path` until it
// answers like Docker or `deadline` passes.
bool wait_docker_ping(const std::string &socket_path, Millis deadline = 10s);

// Trims trailing whitespace/newlines (CLI output).
std::string trim(std::string text);
// The words of a command line, space-separated (for messages).
std::string join(const std::vector<std::string> &args);
// The trimmed stdout of a command that must succeed; otherwise throws an
// Error naming `what`, the exit status and what the command said.
std::string checked(const std::string &what, const RunResult &r);

// ---- images ------------------------------------------------------------

// Builds a minimal rootfs in `dir`: bin/busybox (the static busybox from PATH)
// with a link per applet, etc/passwd, etc/group and empty proc, sys, dev,
// tmp, root. Returns `dir`.
std::string busybox_rootfs(const std::string &dir);
// Tarball of busybox_rootfs() at `tar_path` (built once; reused if present).
std::string busybox_tar(const Lab &lab, const std::string &name = "busybox.tar");

// ---- dockerd -----------------------------------------------------------

struct DockerdConfig {
    std::string dir_name = "d"; // below the lab root: keep it short
    std::string containerd_socket; // --containerd; empty: dockerd starts its own
    bool runtime_wrapper = true; // default runtime strips CAP_SYS_RESOURCE (see ENGINES.md)
    std::vector<std::string> extra_args;
    Millis ready_timeout = 20s;
};

class Dockerd {
public:
    // Starts dockerd and waits for its API (/_ping). Throws (with the log tail)
    // if it does not come up within config.ready_timeout.
    explicit Dockerd(const Lab &lab, DockerdConfig config = {});
    ~Dockerd(); // stop()
    Dockerd(const Dockerd &) = delete;
    Dockerd &operator=(const Dockerd &) = delete;

    const std::string &socket() const noexcept { return socket_; }
    const std::string &dir() const noexcept { return dir_; }
    std::string host() const { return "unix://" + socket_; }
    pid_t pid() const noexcept { return process_.pid(); }
    Process &process() noexcept { return process_; }

    // Runs `docker -H unix://SOCKET args...` (own DOCKER_CONFIG).
    RunResult docker(const std::vector<std::string> &args, Millis timeout = 60s) const;
    // docker() that throws unless it exits 0; returns trimmed stdout.
    std::string docker_ok(const std::vector<std::string> &args, Millis timeout = 60s) const;

    // Imports the busybox rootfs as `image` with CMD ["sleep","infinity"] (once).
    void import_busybox(const std::string &image = "busybox-img");
    // `docker run -d --network none [extra...] image [cmd...]`; the container id.
    std::string run_container(const std::vector<std::string> &extra_args = {}, const std::string &image = "busybox-img",
                              const std::vector<std::string> &cmd = {});

    // Removes every container (SIGKILL), stops dockerd and its managed
    // containerd, unmounts and removes the state. Idempotent.
    void stop();

private:
    const Lab &lab_;
    DockerdConfig config_;
    std::string dir_, socket_;
    Process process_;
    std::vector<std::string> imported_;
    bool stopped_ = false;
};

// Path of the runtime wrapper that strips CAP_SYS_RESOURCE then runs runc
// (register with --add-runtime NAME=PATH on any engine that runs runc).
std::string runc_wrapper_path();

// ---- test double -------------------------------------------------------

// TEST DOUBLE of a broken engine: a separate process whose `comm` is
// `process_name` (so a process scan sees e.g. "dockerd"), listening on a
// unix socket that misbehaves in one way.
class FakeEngine {
public:
    enum class Behaviour {
        garbage, // reads the request, answers random non-HTTP bytes, closes
        hang, // accepts and reads, never answers
        slow, // a valid-looking Docker /_ping answer, one byte per 200 ms
        close, // closes each connection at once
        endless, // valid headers, then a body that never ends (chunked)
    };
    // Starts the double listening on lab.path(socket_name) and waits until it listens.
    FakeEngine(const Lab &lab, std::string process_name, Behaviour behaviour, const std::string &socket_name);
    // One process listening on several sockets, each behaving its own way.
    FakeEngine(const Lab &lab, std::string process_name, const std::vector<std::pair<Behaviour, std::string>> &sockets);
    ~FakeEngine() = default; // the Process stops it

    // The (first) socket, and how it behaves.
    const std::string &socket() const noexcept { return socket_; }
    Behaviour behaviour() const noexcept { return behaviour_; }
    pid_t pid() const noexcept { return process_.pid(); }
    // Connections accepted so far (read from the double's log).
    int connections() const;

private:
    std::string socket_;
    Behaviour behaviour_;
    Process process_;
};

const char *to_string(FakeEngine::Behaviour behaviour);

} // namespace turtlefinder::lab
