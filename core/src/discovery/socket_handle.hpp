// SPDX-License-Identifier: Apache-2.0
// The handle every connection to an engine's API socket goes through.
#pragma once

#include <string>

#include "procfs/procfs.hpp"

namespace turtlefinder::discovery {

// An O_PATH handle on a listening socket's file, opened inside its process's
// root once (procfs::Root::open_socket). Plugins are given connect_path(),
// "/proc/self/fd/N": a connect() there reaches this very socket inode,
// whatever the engine's container does to its file system afterwards — a
// directory swapped for a link to a host socket is never followed. Shared by
// everything that may connect through it (the probe, then the engine
// clients it created) and closed with the last of them, so N never names
// another file while a plugin may still reconnect.
class SocketHandle {
public:
    explicit SocketHandle(procfs::Fd fd);
    const std::string &connect_path() const noexcept { return path_; }
    // False once nothing listens on this socket inode any more: its engine
    // closed it (and may have bound a new one at the same path, which this
    // handle never follows). Connects without blocking and hangs up at once.
    bool served() const;

private:
    procfs::Fd fd_;
    std::string path_;
};

} // namespace turtlefinder::discovery
