// SPDX-License-Identifier: Apache-2.0
// containerd's native API (gRPC): probing a socket and an engine client over
// the containers of every namespace except those other clients own.
// Convenience code, not the plugin ABI: same-toolchain C++ with no ABI
// promise; a plugin that links it is rebuilt with each turtlefinder release.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <turtlefinder/plugin.hpp>
#include <turtlefinder/clients/grpc/channel.hpp>

namespace turtlefinder::clients::grpc {

// Default for the "skip-namespaces" setting: Docker's and the CRI's namespaces,
// whose containers the moby and CRI clients report.
inline constexpr const char *default_skip_namespaces = "moby,k8s.io";

// Splits a comma separated list, trimming blanks and dropping empty items.
std::set<std::string> split_list(const std::string &text);

// containerd's version if `socket` answers containerd's Version call within
// `timeout`, nullopt if it does not (wrong protocol, hangs, refuses); then
// `failure`, when given, tells why.
std::optional<std::string> probe_containerd(const std::string &socket, std::chrono::milliseconds timeout,
                                            ProbeFailure *failure = nullptr);

struct ContainerdOptions {
    std::string socket; // API socket path as the host can reach it
    std::string version; // as probed
    std::set<std::string> skip_namespaces = split_list(default_skip_namespaces);
};

// An engine client of type and flavor "containerd.io" for the engine process
// of the probe `request`: its PID, per-call timeout and log come from there.
// Container IDs are "namespace/id" outside the "default" namespace. The
// engine id is containerd's server UUID; containerd older than 1.5 has no
// Introspection.Server, so the id then falls back to node_engine_id()
// (hostname and socket path).
std::unique_ptr<sdk::EngineClient> make_containerd_client(const sdk::ProbeRequest &request, ContainerdOptions options);

// A stable id for an engine without one of its own: "<UTS hostname of the
// engine>:<API socket path inside the engine's mount namespace>" (from a
// "/proc/PID/root/..." path or a host handle, see socket_name()). The hostname
// comes from the engine's UTS namespace (read in a short-lived thread that
// joins it); reading /proc/PID/root/etc/hostname or .../proc/sys/kernel/hostname
// would give a file that need not match, or our own UTS name.
std::string node_engine_id(int engine_pid, const std::string &socket);

} // namespace turtlefinder::clients::grpc
