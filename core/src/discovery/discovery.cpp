// SPDX-License-Identifier: Apache-2.0
#include "discovery/discovery.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <unordered_map>

namespace turtlefinder::discovery {

namespace {

std::vector<Candidate> match(const std::string &root, int pid, const std::vector<std::uint64_t> &held,
                             const std::vector<procfs::UnixSocket> &listening) {
    std::vector<Candidate> out;
    if (held.empty()) return out;
    const procfs::Root proc_root(root + "/" + std::to_string(pid) + "/root");
    for (const auto &s : listening) {
        if (!std::binary_search(held.begin(), held.end(), s.inode)) continue;
        auto handle = proc_root.open_socket(s.path);
        if (!handle) continue;
        auto shown = proc_root.shown_path(*handle);
        if (!shown) continue;
        out.push_back({{s.inode, s.path, std::move(*shown)}, std::make_shared<const SocketHandle>(std::move(*handle))});
    }
    std::sort(out.begin(), out.end(),
              [](const Candidate &a, const Candidate &b) { return a.socket.path < b.socket.path; });
    return out;
}

} // namespace

std::vector<Candidate> listening_sockets_of(const std::string &procfs_root, int pid) {
    auto held = procfs::socket_inodes(procfs_root, pid);
    if (held.empty()) return {};
    return match(procfs_root, pid, held, procfs::listening_unix_sockets(procfs_root, pid));
}

std::vector<ProcessSockets> all_listening(const procfs::ProcessTable &table) {
    const std::string &root = table.root();
    std::unordered_map<std::uint64_t, std::vector<procfs::UnixSocket>> by_netns;
    std::map<int, const procfs::Process *> sorted;
    for (const auto &[pid, p] : table.processes()) sorted.emplace(pid, &p);
    std::vector<ProcessSockets> out;
    for (const auto &[pid, p] : sorted) {
        auto held = procfs::socket_inodes(root, pid);
        if (held.empty()) continue;
        struct stat st {};
        std::string ns = root + "/" + std::to_string(pid) + "/ns/net";
        const std::vector<procfs::UnixSocket> *listening = nullptr;
        std::vector<procfs::UnixSocket> uncached;
        if (::stat(ns.c_str(), &st) == 0) {
            auto it = by_netns.find(st.st_ino);
            if (it == by_netns.end()) it = by_netns.emplace(st.st_ino, procfs::listening_unix_sockets(root, pid)).first;
            listening = &it->second;
        } else {
            uncached = procfs::listening_unix_sockets(root, pid);
            listening = &uncached;
        }
        std::vector<ApiSocket> sockets;
        for (auto &candidate : match(root, pid, held, *listening)) sockets.push_back(std::move(candidate.socket));
        if (!sockets.empty()) out.push_back({pid, p->name, std::move(sockets)});
    }
    return out;
}

} // namespace turtlefinder::discovery

namespace turtlefinder {

std::vector<ProcessSockets> listening_sockets(const std::string &procfs_root) {
    return discovery::all_listening(procfs::ProcessTable::scan(procfs_root));
}

} // namespace turtlefinder
