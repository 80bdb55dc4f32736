// SPDX-License-Identifier: Apache-2.0
// A minimal CRI (runtime.v1) client that creates and removes pods and
// containers, for tests and benchmarks that need CRI workloads. Discovery
// never creates anything, so this is lab code, not part of the gRPC client.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <turtlefinder/clients/grpc/cri.hpp>

namespace turtlefinder::lab {

// Every call is bounded by `timeout` and throws sdk::Error on failure.
class CriAdmin {
public:
    explicit CriAdmin(const std::string &socket, std::chrono::milliseconds timeout = std::chrono::seconds(30));
    ~CriAdmin();
    CriAdmin(const CriAdmin &) = delete;
    CriAdmin &operator=(const CriAdmin &) = delete;

    clients::grpc::CriVersion version();
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

} // namespace turtlefinder::lab
