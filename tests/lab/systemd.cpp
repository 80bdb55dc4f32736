// SPDX-License-Identifier: Apache-2.0
// systemd socket activation for real: systemd in a container, and
// systemd-socket-activate on the host, both starting podman on demand.
#include "systemd.hpp"

#include <dirent.h>

#include <algorithm>
#include <functional>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace turtlefinder::lab {

namespace {

// Where the container sees its lab files (below its /var/lib state dir).
constexpr const char *inside_dir = "/var/lib/tf-systemd";
constexpr const char *containers_conf_inside = "/etc/containers/containers.conf";
constexpr const char *storage_conf_inside = "/etc/containers/storage.conf";

// Units that would touch the host's devices, kernel settings, consoles or
// network, or that need a journal or a bus this container does not run.
const char *const masked_units[] = {
    "systemd-udevd.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service",
    "systemd-journald.service",
    "systemd-journald.socket",
    "systemd-journald-dev-log.socket",
    "systemd-journald-audit.socket",
    "systemd-logind.service",
    "getty.target",
    "console-getty.service",
    "getty@tty1.service",
    "systemd-networkd.service",
    "systemd-networkd.socket",
    "systemd-resolved.service",
    "systemd-timesyncd.service",
    "systemd-sysctl.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    "systemd-modules-load.service",
    "systemd-remount-fs.service",
    "systemd-firstboot.service",
    "systemd-hwdb-update.service",
    "systemd-random-seed.service",
    "systemd-update-utmp.service",
    "dev-hugepages.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "dbus.service",
    "dbus.socket",
    "cron.service",
};

void write_text(const fs::path &path, const std::string &content) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::trunc);
    out << content;
    if (!out.flush()) throw Error("cannot write " + path.string());
}

std::string socket_unit(const std::string &description, const std::string &path) {
    return "[Unit]\nDescription=" + description + "\nDefaultDependencies=no\n\n[Socket]\nListenStream=" + path +
           "\nSocketMode=0660\n";
}

// Writes the unit directory (bound on /etc/systemd/system) and the podman
// configuration directory (bound on /etc/containers) below `state` (the
// container's /var/lib, host view).
void write_container_files(const fs::path &state, const SystemdConfig &config) {
    const fs::path units = state / "tf-systemd" / "system";
    const fs::path etc_containers = state / "tf-systemd" / "containers";
    fs::remove_all(units); // a container of the same name before, in this lab
    fs::create_directories(units);

    // tf-booted starts a service at boot as any real system does: systemd
    // opens some fds (an audit socket) only when it first starts a service,
    // and the tests need its fd set settled before they activate anything.
    std::string wants = config.podman ? "podman.socket tf-booted.service" : "tf-booted.service";
    for (std::size_t i = 0; i < config.dead_sockets.size(); ++i) wants += " tf-dead-" + std::to_string(i) + ".socket";
    write_text(units / "tf.target",
               "[Unit]\nDescription=turtlefinder lab\nDefaultDependencies=no\nWants=" + wants + "\nAllowIsolate=yes\n");
    fs::create_symlink("tf.target", units / "default.target");
    for (const char *unit : masked_units) fs::create_symlink("/dev/null", units / unit);

    write_text(units / "tf-booted.service",
               "[Unit]\nDescription=boot marker (turtlefinder lab)\nDefaultDependencies=no\n\n"
               "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/bin/touch /run/tf-booted\n");
    write_text(units / "podman.socket", socket_unit("Podman API socket (turtlefinder lab)", config.socket));
    std::ostringstream service;
    service << "[Unit]\nDescription=Podman API service (turtlefinder lab)\nDefaultDependencies=no\n"
            << "Requires=podman.socket\nAfter=podman.socket\n\n[Service]\nType=exec\nKillMode=process\n"
            << "Environment=CONTAINERS_CONF=" << containers_conf_inside
            << " CONTAINERS_STORAGE_CONF=" << storage_conf_inside << "\n"
            << "ExecStart=/usr/bin/podman system service --time=" << config.idle_seconds << "\n"
            << "StandardOutput=append:" << inside_dir << "/podman.log\nStandardError=inherit\n";
    write_text(units / "podman.service", service.str());
    for (std::size_t i = 0; i < config.dead_sockets.size(); ++i) {
        std::string unit = "tf-dead-" + std::to_string(i);
        write_text(units / (unit + ".socket"), socket_unit("never podman (turtlefinder lab)", config.dead_sockets[i]));
        write_text(units / (unit + ".service"),
                   "[Unit]\nDescription=never podman (turtlefinder lab)\nDefaultDependencies=no\n\n"
                   "[Service]\nType=exec\nExecStart=/usr/bin/sleep infinity\n");
    }

    PodmanLayout layout{"/var/lib/containers/storage", "/run/containers/storage", "/run/libpod",
                        std::string(inside_dir) + "/cni", std::string(inside_dir) + "/tmp"};
    fs::create_directories(state / "tf-systemd" / "tmp");
    write_text(etc_containers / "containers.conf", podman_containers_conf(layout));
    write_text(etc_containers / "storage.conf", podman_storage_conf(layout));
    // Images are only ever imported from local tarballs.
    write_text(etc_containers / "policy.json", R"({"default":[{"type":"insecureAcceptAnything"}]})"
                                               "\n");
}

EngineContainerConfig engine_config(const Lab &lab, const DockerApi &api, const SystemdConfig &config) {
    if (config.name.empty() || config.socket.empty() || config.socket[0] != '/')
        throw Error("systemd container: a name and an absolute socket path are needed");
    if (!config.podman && config.dead_sockets.empty())
        throw Error("systemd container: no socket to wait for (no podman, no dead sockets)");
    // The engine container binds the lab's n/NAME/state on /var/lib.
    const std::string state_rel = "n/" + config.name + "/state";
    write_container_files(lab.mkdir(state_rel), config);
    const std::string state_outer = api.nest_dir + "/" + config.name + "/state/tf-systemd";

    EngineContainerConfig c;
    c.name = config.name;
    c.command = {"/usr/lib/systemd/systemd"};
    c.extra_args = {
        "--cgroupns=private",
        "--tmpfs",
        "/run/lock",
        "--tmpfs",
        "/var/tmp", // podman's scratch space for container storage
        "--stop-signal",
        "SIGRTMIN+3",
        "-e",
        "container=docker",
        "-v",
        state_outer + "/system:/etc/systemd/system:ro",
        "-v",
        state_outer + "/containers:/etc/containers:ro",
    };
    c.ready_socket = config.podman ? config.socket : "";
    c.ready_timeout = config.ready_timeout;
    return c;
}

char state_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    auto close = line.rfind(')');
    return close == std::string::npos || close + 2 >= line.size() ? '?' : line[close + 2];
}

} // namespace

// ---- SystemdContainer ----------------------------------------------------------

SystemdContainer::SystemdContainer(const Lab &lab, DockerApi api, SystemdConfig config)
    : EngineContainer(lab, api, engine_config(lab, api, config)), config_(std::move(config)) {
    auto deadline = std::chrono::steady_clock::now() + config_.ready_timeout;
    auto wait_for = [&](const std::string &what, const std::function<bool()> &done) {
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) {
                std::string log = logs();
                remove();
                throw Error("systemd container " + name() + ": " + what + "; its log:\n" + log);
            }
            std::this_thread::sleep_for(10ms);
        }
    };
    for (const auto &path : config_.dead_sockets)
        wait_for("nothing listens on " + path, [&] { return listening(path); });
    wait_for("the boot marker service did not run", [&] { return fs::exists(host_path("/run/tf-booted")); });
    // Settled: systemd's socket fds unchanged over a few polls.
    auto last = socket_fds();
    int same = 0;
    wait_for("systemd's sockets do not settle", [&] {
        std::this_thread::sleep_for(40ms);
        auto now = socket_fds();
        same = now == last ? same + 1 : 0;
        last = std::move(now);
        return same >= 4;
    });
}

std::vector<std::string> SystemdContainer::socket_fds() const {
    std::vector<std::string> out;
    const std::string dir = "/proc/" + std::to_string(pid()) + "/fd";
    if (DIR *d = ::opendir(dir.c_str())) {
        while (dirent *e = ::readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::error_code ec;
            auto target = fs::read_symlink(dir + "/" + e->d_name, ec).string();
            if (!ec && target.rfind("socket:", 0) == 0) out.push_back(target);
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool SystemdContainer::listening(const std::string &path) const { return is_listening(pid(), path); }

std::vector<pid_t> SystemdContainer::podman_services() const {
    std::vector<pid_t> out;
    for (pid_t child : children_of(pid()))
        if (comm_of(child) == "podman" && state_of(child) != 'Z') out.push_back(child);
    return out;
}

RunResult SystemdContainer::podman(const std::vector<std::string> &args, Millis timeout) const {
    std::vector<std::string> full = {"/usr/bin/env", std::string("CONTAINERS_CONF=") + containers_conf_inside,
                                     std::string("CONTAINERS_STORAGE_CONF=") + storage_conf_inside, "/usr/bin/podman"};
    full.insert(full.end(), args.begin(), args.end());
    return exec(full, timeout);
}

std::string SystemdContainer::podman_ok(const std::vector<std::string> &args, Millis timeout) const {
    return checked("podman " + join(args) + " in " + name(), podman(args, timeout));
}

void SystemdContainer::import_busybox(const std::string &image) {
    if (imported_) return;
    // `podman load` wants an image archive; the lab's tarball is a plain
    // rootfs, which `podman import` takes as it is.
    fs::copy_file(busybox_tar(lab_), fs::path(state_dir()) / "tf-systemd" / "busybox.tar",
                  fs::copy_options::overwrite_existing);
    podman_ok({"import", "-c", R"(CMD ["sleep","infinity"])", std::string(inside_dir) + "/busybox.tar", image}, 120s);
    imported_ = true;
}

std::string SystemdContainer::run_busybox(const std::string &name, const std::string &image) {
    import_busybox(image);
    return podman_ok({"run", "-d", "--network", "none", "--name", name, image});
}

// ---- SocketActivate --------------------------------------------------------------

SocketActivate::SocketActivate(const Lab &lab, std::string socket, std::vector<std::string> command,
                               std::map<std::string, std::string> env, Millis ready_timeout)
    : socket_(std::move(socket)) {
    if (socket_.empty() || socket_[0] != '/' || command.empty())
        throw Error("systemd-socket-activate: an absolute socket path and a command are needed");
    fs::create_directories(fs::path(socket_).parent_path());
    SpawnOptions so;
    so.args = {find_program("systemd-socket-activate"), "-l", socket_};
    // It hands the command only the variables named with -E, not its own.
    for (const auto &[key, value] : env) so.args.push_back("-E" + key + "=" + value);
    so.args.insert(so.args.end(), command.begin(), command.end());
    so.log_path = lab.path("sa-" + fs::path(socket_).filename().string() + ".log");
    process_ = Process(so);
    auto deadline = std::chrono::steady_clock::now() + ready_timeout;
    while (!listening()) {
        if (!process_.running() || std::chrono::steady_clock::now() > deadline) {
            std::string tail = process_.log_tail();
            process_.stop(2s);
            throw Error("systemd-socket-activate does not listen on " + socket_ + "; log:\n" + tail);
        }
        std::this_thread::sleep_for(10ms);
    }
}

SocketActivate SocketActivate::podman(const Lab &lab, const std::string &socket, int idle_seconds) {
    // One configuration per socket, so that several services never share state.
    PodmanFiles files = write_podman_files(lab, "pm-" + fs::path(socket).parent_path().filename().string());
    return SocketActivate(lab, socket,
                          {find_program("podman"), "system", "service", "--time=" + std::to_string(idle_seconds)},
                          files.env());
}

} // namespace turtlefinder::lab
