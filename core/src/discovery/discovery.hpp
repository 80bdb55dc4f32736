// SPDX-License-Identifier: Apache-2.0
// From processes to the API sockets they listen on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <turtlefinder/finder.hpp>

#include "discovery/socket_handle.hpp"
#include "procfs/procfs.hpp"

namespace turtlefinder::discovery {

// Public types (turtlefinder/finder.hpp): the CLI's `sockets` shows them too.
using turtlefinder::ApiSocket;
using turtlefinder::ProcessSockets;

// A listening socket as plugins are offered it: shown as socket.reachable
// (what Engine::api says), reached only through `handle`.
struct Candidate {
    ApiSocket socket;
    std::shared_ptr<const SocketHandle> handle;
};

// The listening, non-abstract stream unix sockets `pid` holds among its fds,
// sorted by path. The socket table is read through the process itself, since
// it is per network namespace; each path is opened inside the process's root
// (opened once) as a handle on the socket itself, or left out.
std::vector<Candidate> listening_sockets_of(const std::string &procfs_root, int pid);

// Every process in `table` holding listening unix sockets, by PID. Reads each
// network namespace's socket table once.
std::vector<ProcessSockets> all_listening(const procfs::ProcessTable &table);

} // namespace turtlefinder::discovery
