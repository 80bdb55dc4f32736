// SPDX-License-Identifier: Apache-2.0
// The Kubernetes CRI (runtime.v1) over gRPC: probing, and an engine client
// over running containers and ready pod sandboxes.
// Convenience code, not the plugin ABI: same-toolchain C++ with no ABI
// promise; a plugin that links it is rebuilt with each turtlefinder release.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <turtlefinder/plugin.hpp>
#include <turtlefinder/clients/grpc/channel.hpp>

namespace turtlefinder::clients::grpc {

// Labels the CRI client puts on every workload, taken from the CRI metadata.
inline constexpr const char *label_pod_name = "io.kubernetes.pod.name";
inline constexpr const char *label_pod_namespace = "io.kubernetes.pod.namespace";
inline constexpr const char *label_pod_uid = "io.kubernetes.pod.uid";
inline constexpr const char *label_container_name = "io.kubernetes.container.name";
// "true" on pod sandboxes, absent on containers.
inline constexpr const char *label_sandbox = "io.kubernetes.sandbox";

struct CriVersion {
    std::string runtime_name; // "containerd", "cri-o"
    std::string runtime_version;
    std::string runtime_api_version; // "v1"
};

// The runtime's identity if `socket` answers runtime.v1 Version within
// `timeout`, nullopt otherwise; then `failure`, when given, tells why.
std::optional<CriVersion> probe_cri(const std::string &socket, std::chrono::milliseconds timeout,
                                    ProbeFailure *failure = nullptr);

struct CriOptions {
    std::string socket;
    std::string flavor; // "containerd.io", "cri-o.io"
    CriVersion version;
};

// An engine client of type "k8s.io/cri-api" for the engine process of the
// probe `request`: its PID, per-call timeout and log come from there. Its id
// is node_engine_id() (the CRI has no engine id of its own). watch() uses
// GetContainerEvents; where the runtime lacks it (UNIMPLEMENTED, or a stream
// that ends at once) it throws sdk::Error(-ENOTSUP) and logs that once, so
// the host relists periodically.
std::unique_ptr<sdk::EngineClient> make_cri_client(const sdk::ProbeRequest &request, CriOptions options);

// probe_cri + make_cri_client: a CRI engine client for `socket` (one of
// request.api_paths), or null when it does not answer CRI within
// request.timeout (then `failure`, when given, tells why).
std::unique_ptr<sdk::EngineClient> probe_cri_engine(const sdk::ProbeRequest &request, const std::string &socket,
                                                    std::string flavor, ProbeFailure *failure = nullptr);

// PID in a verbose status "info" JSON document ({"pid": N, ...}), 0 if absent
// or malformed.
int pid_from_info_json(const std::string &json) noexcept;

} // namespace turtlefinder::clients::grpc
