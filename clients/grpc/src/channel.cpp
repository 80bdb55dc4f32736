// SPDX-License-Identifier: Apache-2.0
#include <turtlefinder/clients/grpc/channel.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <turtlefinder/plugin.hpp>

namespace turtlefinder::clients::grpc {

namespace {

::grpc::ChannelArguments channel_arguments() {
    ::grpc::ChannelArguments args;
    // A probe must fail fast and a dead engine must not be retried behind our
    // back: the core's watcher owns retries and backoff.
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    // gRPC also takes this as the least time one connection attempt gets for
    // its handshake: at 100 ms a busy engine's was cut ("connection attempt
    // timed out before receiving SETTINGS frame") and the engine missed. Not
    // longer: an attempt outlives its channel until then, holding an fd.
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 1000);
    // Subchannels private to this channel, so destroying the channel really
    // closes its connection (no process-wide pool keeps the fd).
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // Lists of many containers with many labels exceed the 4 MiB default.
    args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
    return args;
}

} // namespace

UnixChannel::UnixChannel(const std::string &socket_path) : path_(socket_path) {
    std::string target = socket_path;
    if (socket_path.size() >= sizeof(sockaddr_un::sun_path)) {
        auto slash = socket_path.rfind('/');
        if (slash == std::string::npos || slash == 0)
            throw sdk::Error(-ENAMETOOLONG, "socket path too long: " + socket_path);
        std::string dir = socket_path.substr(0, slash);
        dir_fd_ = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd_ < 0) throw sdk::Error(-errno, "cannot open socket directory " + dir);
        target = "/proc/self/fd/" + std::to_string(dir_fd_) + socket_path.substr(slash);
        if (target.size() >= sizeof(sockaddr_un::sun_path)) {
            ::close(dir_fd_);
            throw sdk::Error(-ENAMETOOLONG, "socket name too long: " + socket_path);
        }
    }
    channel_ = ::grpc::CreateCustomChannel("unix:" + target, ::grpc::InsecureChannelCredentials(), channel_arguments());
}

UnixChannel::~UnixChannel() {
    channel_.reset();
    if (dir_fd_ >= 0) ::close(dir_fd_);
}

std::string socket_name(const std::string &path) {
    constexpr std::string_view handle_prefix = "/proc/self/fd/";
    if (!path.starts_with(handle_prefix)) return path;
    char target[4096];
    ssize_t n = ::readlink(path.c_str(), target, sizeof target);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof target || target[0] != '/') return path;
    return std::string(target, static_cast<std::size_t>(n));
}

int errno_of(const ::grpc::Status &status) noexcept {
    switch (status.error_code()) {
    case ::grpc::StatusCode::OK: return 0;
    case ::grpc::StatusCode::DEADLINE_EXCEEDED: return -ETIMEDOUT;
    case ::grpc::StatusCode::UNAVAILABLE: return -ECONNREFUSED;
    case ::grpc::StatusCode::UNIMPLEMENTED: return -ENOTSUP;
    case ::grpc::StatusCode::CANCELLED: return -ECANCELED;
    case ::grpc::StatusCode::NOT_FOUND: return -ENOENT;
    case ::grpc::StatusCode::INVALID_ARGUMENT: return -EINVAL;
    case ::grpc::StatusCode::PERMISSION_DENIED:
    case ::grpc::StatusCode::UNAUTHENTICATED: return -EACCES;
    default: return -EPROTO;
    }
}

void check(const ::grpc::Status &status, const std::string &what) {
    if (status.ok()) return;
    throw sdk::Error(errno_of(status), what + ": " + status.error_message());
}

CallSet::Guard::Guard(CallSet &set, ::grpc::ClientContext &ctx) : set_(set), ctx_(ctx) {
    std::lock_guard lock(set_.mutex_);
    if (set_.cancelled_) throw sdk::Error(-ECANCELED, "engine client cancelled");
    set_.live_.insert(&ctx_);
}

CallSet::Guard::~Guard() {
    std::lock_guard lock(set_.mutex_);
    set_.live_.erase(&ctx_);
}

void CallSet::cancel() {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    for (auto *ctx : live_) ctx->TryCancel();
}

bool CallSet::cancelled() const {
    std::lock_guard lock(mutex_);
    return cancelled_;
}

void prepare(::grpc::ClientContext &ctx, std::chrono::milliseconds timeout, const std::string &containerd_namespace) {
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    ctx.set_wait_for_ready(false);
    if (!containerd_namespace.empty()) ctx.AddMetadata("containerd-namespace", containerd_namespace);
}

::grpc::Status probe_call(const std::string &socket, std::chrono::milliseconds timeout,
                          const std::function<::grpc::Status(UnixChannel &, ::grpc::ClientContext &)> &call) {
    constexpr int attempts = 3;
    constexpr auto pause = std::chrono::milliseconds(20);
    const auto deadline = std::chrono::system_clock::now() + timeout;
    for (int attempt = 1;; ++attempt) {
        UnixChannel channel(socket);
        ::grpc::ClientContext ctx;
        ctx.set_deadline(deadline);
        ctx.set_wait_for_ready(false);
        auto status = call(channel, ctx);
        if (status.error_code() != ::grpc::StatusCode::UNAVAILABLE || attempt == attempts ||
            std::chrono::system_clock::now() + pause >= deadline)
            return status;
        std::this_thread::sleep_for(pause);
    }
}

namespace {

// 0 if a plain connect to `socket` succeeds (or its backlog is full: someone
// listens), else the negative errno of the failure.
int plain_connect(const std::string &socket) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket.size() >= sizeof addr.sun_path) return 0; // cannot tell: take it as listening
    std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rc = ::connect(fd, reinterpret_cast<const sockaddr *>(&addr), sizeof addr);
    int err = rc == 0 ? 0 : errno;
    ::close(fd);
    return err == 0 || err == EAGAIN || err == EINPROGRESS ? 0 : -err;
}

} // namespace

ProbeFailure probe_failure(const std::string &socket, const ::grpc::Status &status, const std::string &what) {
    const std::string detail = status.error_message().empty() ? "" : " (" + status.error_message() + ")";
    switch (status.error_code()) {
    case ::grpc::StatusCode::DEADLINE_EXCEEDED: return {-ETIMEDOUT, what + ": no answer in time"};
    case ::grpc::StatusCode::UNIMPLEMENTED: return {-EPROTO, "a gRPC server without " + what};
    case ::grpc::StatusCode::UNAVAILABLE: {
        int rc = plain_connect(socket);
        if (rc != 0) return {rc, std::string("connect: ") + std::strerror(-rc)};
        // gRPC gives up on a peer that accepts and then says nothing (no
        // SETTINGS frame) with UNAVAILABLE too: that is no answer in time.
        if (status.error_message().find("timed out") != std::string::npos)
            return {-ETIMEDOUT, "accepts connections but sends no answer in time" + detail};
        return {-EPROTO, "accepts connections but does not answer gRPC" + detail};
    }
    default: return {errno_of(status), what + detail};
    }
}

} // namespace turtlefinder::clients::grpc
