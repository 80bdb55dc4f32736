// SPDX-License-Identifier: Apache-2.0
// The systemd socket activator. It only names the processes that listen on
// sockets on behalf of services they start on the first connection; the core
// does the rest (watching their socket sets, connecting, finding the service).
//
// - `systemd`: the system manager (PID 1 of a host or of a container) and the
//   per-user managers (`systemd --user`, rootless sockets under /run/user/UID).
// - `systemd-socket-`: `systemd-socket-activate` as the kernel shortens its
//   name to 15 bytes. It execs the service in place on the first connection,
//   so the activator and the service are then the same process.
#include <turtlefinder/plugin.h>
#include <turtlefinder/plugin.hpp>

#include <array>

namespace tfplugin::systemd {

struct Plugin {
    static constexpr const char *name = "systemd";
    static constexpr const char *version = "0.1.0";
    static constexpr const char *description = "systemd and systemd-socket-activate socket activators";
    static constexpr std::array<const char *, 2> activator_names{"systemd", "systemd-socket-"};
};

} // namespace tfplugin::systemd

TF_PLUGIN(tfplugin::systemd::Plugin)
