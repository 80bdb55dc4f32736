// SPDX-License-Identifier: Apache-2.0
// From processes to the API sockets they listen on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "procfs/procfs.hpp"

namespace turtlefinder::discovery {

struct ApiSocket {
    std::uint64_t inode = 0;
    std::string path;      // as bound, meaningful in the owner's mount namespace
    std::string reachable; // the same socket reached from here, through /proc/PID/root
};

// The listening, non-abstract stream unix sockets `pid` holds among its fds,
// sorted by path. The socket table is read through the process itself, since
// it is per network namespace; paths are resolved inside its root.
std::vector<ApiSocket> listening_sockets_of(const std::string &procfs_root, int pid);

struct ProcessSockets {
    int pid = 0;
    std::string name;
    std::vector<ApiSocket> sockets;
};

// Every process in `table` holding listening unix sockets, by PID. Reads each
// network namespace's socket table once.
std::vector<ProcessSockets> all_listening(const procfs::ProcessTable &table);

} // namespace turtlefinder::discovery
