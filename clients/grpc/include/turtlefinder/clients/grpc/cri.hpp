// SPDX-License-Identifier: Apache-2.0
// The Kubernetes CRI (runtime.v1) over gRPC: probing, an engine client over
// running containers and ready pod sandboxes, and a small admin client that
// tests use to create host-network pods.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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
    std::string runtime_name;        // "containerd", "cri-o"
    std::string runtime_version;
    std::string runtime_api_version; // "v1"
};

// The runtime's identity if `socket` answers runtime.v1 Version within
// `timeout`, nullopt otherwise.
std::optional<CriVersion> probe_cri(const std::string &socket, std::chrono::milliseconds timeout);

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
// request.timeout.
std::unique_ptr<sdk::EngineClient> probe_cri_engine(const sdk::ProbeRequest &request, const std::string &socket,
                                                    std::string flavor);

// PID in a verbose status "info" JSON document ({"pid": N, ...}), 0 if absent
// or malformed.
int pid_from_info_json(const std::string &json) noexcept;

// A minimal CRI client to create and remove pods and containers (tests and
// tooling; not used by discovery).
class CriAdmin {
public:
    explicit CriAdmin(const std::string &socket, std::chrono::milliseconds timeout = std::chrono::seconds(30));
    ~CriAdmin();
    CriAdmin(const CriAdmin &) = delete;
    CriAdmin &operator=(const CriAdmin &) = delete;

    CriVersion version();
    // A pod sharing the host's network (no CNI needed); returns its id.
    std::string run_pod(const std::string &name, const std::string &pod_namespace, const std::string &uid,
                        const std::map<std::string, std::string> &labels = {});
    // Creates (not starts) a container in `pod_id`, created by run_pod of this object.
    std::string create_container(const std::string &pod_id, const std::string &name, const std::string &image,
                                 const std::vector<std::string> &command,
                                 const std::map<std::string, std::string> &labels = {});
    void start_container(const std::string &id);
    void stop_container(const std::string &id);
    void remove_container(const std::string &id);
    void stop_pod(const std::string &id);
    void remove_pod(const std::string &id);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace turtlefinder::clients::grpc
