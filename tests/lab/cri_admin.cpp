// SPDX-License-Identifier: Apache-2.0
#include "cri_admin.hpp"

#include <cerrno>

#include <turtlefinder/clients/grpc/channel.hpp>
#include <turtlefinder/plugin.hpp>

#include "tf_cri_api.grpc.pb.h"

namespace turtlefinder::lab {

namespace cri = ::runtime::v1;
using clients::grpc::check;
using clients::grpc::CriVersion;
using clients::grpc::prepare;
using clients::grpc::UnixChannel;

struct CriAdmin::Impl {
    std::chrono::milliseconds timeout;
    UnixChannel channel;
    std::unique_ptr<cri::RuntimeService::Stub> stub;
    std::map<std::string, cri::PodSandboxConfig> pods;

    Impl(const std::string &socket, std::chrono::milliseconds t)
        : timeout(t), channel(socket), stub(cri::RuntimeService::NewStub(channel.get())) {}

    template <typename Request, typename Response>
    Response call(::grpc::Status (cri::RuntimeService::Stub::*method)(::grpc::ClientContext *, const Request &,
                                                                      Response *),
                  const Request &request, const std::string &what) {
        ::grpc::ClientContext ctx;
        prepare(ctx, timeout);
        Response response;
        check(((*stub).*method)(&ctx, request, &response), what);
        return response;
    }
};

CriAdmin::CriAdmin(const std::string &socket, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(socket, timeout)) {}

CriAdmin::~CriAdmin() = default;

CriVersion CriAdmin::version() {
    cri::VersionRequest request;
    request.set_version("v1");
    auto r = impl_->call(&cri::RuntimeService::Stub::Version, request, "CRI version");
    return {r.runtime_name(), r.runtime_version(), r.runtime_api_version()};
}

std::string CriAdmin::run_pod(const std::string &name, const std::string &pod_namespace, const std::string &uid,
                              const std::map<std::string, std::string> &labels) {
    cri::RunPodSandboxRequest request;
    auto *config = request.mutable_config();
    config->mutable_metadata()->set_name(name);
    config->mutable_metadata()->set_namespace_(pod_namespace);
    config->mutable_metadata()->set_uid(uid);
    for (const auto &[k, v] : labels) (*config->mutable_labels())[k] = v;
    // Host network: no CNI is needed. PID and IPC stay per pod.
    config->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(cri::NODE);
    auto r = impl_->call(&cri::RuntimeService::Stub::RunPodSandbox, request, "run pod " + name);
    impl_->pods[r.pod_sandbox_id()] = *config;
    return r.pod_sandbox_id();
}

std::string CriAdmin::create_container(const std::string &pod_id, const std::string &name, const std::string &image,
                                       const std::vector<std::string> &command,
                                       const std::map<std::string, std::string> &labels) {
    auto pod = impl_->pods.find(pod_id);
    if (pod == impl_->pods.end()) throw sdk::Error(-ENOENT, "pod " + pod_id + " was not created here");
    cri::CreateContainerRequest request;
    request.set_pod_sandbox_id(pod_id);
    *request.mutable_sandbox_config() = pod->second;
    auto *config = request.mutable_config();
    config->mutable_metadata()->set_name(name);
    config->mutable_image()->set_image(image);
    for (const auto &arg : command) config->add_command(arg);
    for (const auto &[k, v] : labels) (*config->mutable_labels())[k] = v;
    config->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(cri::NODE);
    return impl_->call(&cri::RuntimeService::Stub::CreateContainer, request, "create container " + name).container_id();
}

void CriAdmin::start_container(const std::string &id) {
    cri::StartContainerRequest request;
    request.set_container_id(id);
    impl_->call(&cri::RuntimeService::Stub::StartContainer, request, "start container " + id);
}

void CriAdmin::stop_container(const std::string &id) {
    cri::StopContainerRequest request;
    request.set_container_id(id);
    request.set_timeout(0);
    impl_->call(&cri::RuntimeService::Stub::StopContainer, request, "stop container " + id);
}

void CriAdmin::remove_container(const std::string &id) {
    cri::RemoveContainerRequest request;
    request.set_container_id(id);
    impl_->call(&cri::RuntimeService::Stub::RemoveContainer, request, "remove container " + id);
}

void CriAdmin::stop_pod(const std::string &id) {
    cri::StopPodSandboxRequest request;
    request.set_pod_sandbox_id(id);
    impl_->call(&cri::RuntimeService::Stub::StopPodSandbox, request, "stop pod " + id);
}

void CriAdmin::remove_pod(const std::string &id) {
    cri::RemovePodSandboxRequest request;
    request.set_pod_sandbox_id(id);
    impl_->call(&cri::RuntimeService::Stub::RemovePodSandbox, request, "remove pod " + id);
    impl_->pods.erase(id);
}

} // namespace turtlefinder::lab
