// SPDX-License-Identifier: Apache-2.0
#include "discovery/socket_handle.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace turtlefinder::discovery {

SocketHandle::SocketHandle(procfs::Fd fd) : fd_(std::move(fd)), path_("/proc/self/fd/" + std::to_string(fd_.get())) {}

bool SocketHandle::served() const {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1); // "/proc/self/fd/N" always fits
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return true; // cannot tell: not evidence of a dead socket
    int rc = ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
    int error = rc == 0 ? 0 : errno;
    ::close(fd);
    // Only a refusal says nobody listens; a full backlog (EAGAIN) is a live engine.
    return error != ECONNREFUSED;
}

} // namespace turtlefinder::discovery
