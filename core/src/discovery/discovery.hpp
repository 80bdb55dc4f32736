// SPDX-License-Identifier: Apache-2.0
// From processes to the API sockets they listen on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <turtlefinder/finder.hpp>

#include "procfs/procfs.hpp"

namespace turtlefinder::discovery {

// Public types (turtlefinder/finder.hpp): the CLI's `sockets` shows them too.
using turtlefinder::ApiSocket;
using turtlefinder::ProcessSockets;

// The listening, non-abstract stream unix sockets `pid` holds among its fds,
// sorted by path. The socket table is read through the process itself, since
// it is per network namespace; paths are resolved inside its root.
std::vector<ApiSocket> listening_sockets_of(const std::string &procfs_root, int pid);

// Every process in `table` holding listening unix sockets, by PID. Reads each
// network namespace's socket table once.
std::vector<ProcessSockets> all_listening(const procfs::ProcessTable &table);

} // namespace turtlefinder::discovery
