// SPDX-License-Identifier: Apache-2.0
// gRPC over unix sockets for engine clients: fail-fast channels, a deadline on
// every unary call, streams that another thread can cancel, and gRPC status
// codes mapped to the negative errno values of the plugin ABI.
// Convenience code, not the plugin ABI: same-toolchain C++ with no ABI
// promise; a plugin that links it is rebuilt with each turtlefinder release.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

namespace turtlefinder::clients::grpc {

// A channel to one unix socket. Paths longer than sun_path allows (deep
// /proc/PID/root/... paths) are reached through an O_PATH descriptor of the
// socket's directory, kept open as long as the channel lives.
class UnixChannel {
public:
    explicit UnixChannel(const std::string &socket_path);
    ~UnixChannel();
    UnixChannel(const UnixChannel &) = delete;
    UnixChannel &operator=(const UnixChannel &) = delete;

    const std::string &path() const noexcept { return path_; }
    const std::shared_ptr<::grpc::Channel> &get() const noexcept { return channel_; }

private:
    std::string path_;
    int dir_fd_ = -1;
    std::shared_ptr<::grpc::Channel> channel_;
};

// The path an API socket has in its engine's mount namespace, for names and
// ids only (connect to the path as given). The host hands plugins handles,
// "/proc/self/fd/N", whose link text is that path; any other path is returned
// as it is.
std::string socket_name(const std::string &path);

// Negative errno for a failed gRPC status (DEADLINE_EXCEEDED → -ETIMEDOUT,
// UNAVAILABLE → -ECONNREFUSED, UNIMPLEMENTED → -ENOTSUP, CANCELLED → -ECANCELED,
// NOT_FOUND → -ENOENT, anything else → -EPROTO).
int errno_of(const ::grpc::Status &status) noexcept;

// Throws sdk::Error(errno_of(status), "<what>: <message>") unless status is OK.
void check(const ::grpc::Status &status, const std::string &what);

// The calls in flight on one engine client, so that cancel() from any thread
// stops them all, and every later call fails at once with -ECANCELED.
class CallSet {
public:
    // Registers `ctx` for the lifetime of the guard; throws sdk::Error(-ECANCELED)
    // when the set is already cancelled.
    class Guard {
    public:
        Guard(CallSet &set, ::grpc::ClientContext &ctx);
        ~Guard();
        Guard(const Guard &) = delete;
        Guard &operator=(const Guard &) = delete;

    private:
        CallSet &set_;
        ::grpc::ClientContext &ctx_;
    };

    void cancel();
    bool cancelled() const;

private:
    mutable std::mutex mutex_;
    std::set<::grpc::ClientContext *> live_;
    bool cancelled_ = false;
};

// Sets the deadline (now + timeout) and, when non-empty, the containerd
// namespace header on a fresh context.
void prepare(::grpc::ClientContext &ctx, std::chrono::milliseconds timeout,
             const std::string &containerd_namespace = {});

// Runs a probe's first call on a fresh channel to `socket`, within `timeout`
// in all. A connection that fails at once (UNAVAILABLE: a loaded engine that
// has not accepted it yet, or no listener) is tried again on a new channel,
// at most three times, while time is left; any other outcome is the answer.
::grpc::Status probe_call(const std::string &socket, std::chrono::milliseconds timeout,
                          const std::function<::grpc::Status(UnixChannel &, ::grpc::ClientContext &)> &call);

// Why a probe's call to `socket` failed, in the plugin ABI's words (for
// ProbeRequest::report): -ETIMEDOUT when nothing answered in time; when the
// connection failed, the socket is connected to once more, plainly, to tell
// -ECONNREFUSED, -EACCES or -ENOENT from a peer that accepts but sends
// nothing in time (-ETIMEDOUT) or does not speak gRPC (-EPROTO); a gRPC
// server without the service asked is -EPROTO too ("not this engine").
// `what` names the call ("containerd's Version service").
struct ProbeFailure {
    int code = 0; // negative errno
    std::string message;
};
ProbeFailure probe_failure(const std::string &socket, const ::grpc::Status &status, const std::string &what);

} // namespace turtlefinder::clients::grpc
