// SPDX-License-Identifier: Apache-2.0
#include "discovery/activation.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "log.hpp"

namespace turtlefinder::discovery {

namespace {

// Connects to (and at once closes) the socket: for an activator, the
// connection is what starts the service. Bounded by `deadline`.
bool poke(const SocketHandle &socket, std::chrono::steady_clock::time_point deadline) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string &path = socket.connect_path(); // "/proc/self/fd/N" always fits
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    bool ok = false;
    if (fd >= 0) {
        int rc = ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
        if (rc == 0) {
            ok = true;
        } else if (errno == EINPROGRESS || errno == EAGAIN) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd p{fd, POLLOUT, 0};
            int err = 0;
            socklen_t len = sizeof err;
            ok = ::poll(&p, 1, static_cast<int>(std::max<long>(0, left.count()))) == 1 &&
                 ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
        }
        ::close(fd);
    }
    return ok;
}

std::vector<int> children_of(const std::string &root, int pid) {
    // Every thread's children file: a service may be forked from any thread.
    std::vector<int> out;
    std::string task_dir = root + "/" + std::to_string(pid) + "/task";
    std::vector<std::string> tids;
    if (auto *d = ::opendir(task_dir.c_str())) {
        while (auto *e = ::readdir(d))
            if (e->d_name[0] != '.') tids.emplace_back(e->d_name);
        ::closedir(d);
    }
    for (const auto &tid : tids) {
        std::ifstream in(task_dir + "/" + tid + "/children");
        int child = 0;
        while (in >> child) out.push_back(child);
    }
    return out;
}

} // namespace

void Activation::forget(std::uint64_t socket_inode) {
    for (auto &[pid, a] : activators_)
        if (a.handled.erase(socket_inode) > 0) a.dirty = true;
}

std::vector<ActivatedService> Activation::activate(const procfs::ProcessTable &table,
                                                   const plugins::Registry &registry,
                                                   const std::set<std::uint64_t> &watched,
                                                   std::chrono::steady_clock::time_point deadline) {
    const std::string &root = table.root();
    std::vector<ActivatedService> found;
    std::erase_if(activators_, [&](const auto &entry) {
        const auto *p = table.find(entry.first);
        return p == nullptr || p->starttime != entry.second.starttime;
    });

    for (const auto &[pid, process] : table.processes()) {
        if (!registry.activator_for(process.name)) continue;
        auto inodes = procfs::socket_inodes(root, pid);
        std::size_t hash = inodes.size();
        for (auto i : inodes) hash ^= std::hash<std::uint64_t>{}(i) + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2);
        auto [it, inserted] = activators_.try_emplace(pid);
        Activator &a = it->second;
        if (inserted) a.starttime = process.starttime;
        if (!inserted && a.fd_hash == hash && !a.dirty) continue; // nothing changed: stay cheap
        if (a.fd_hash != hash) a.handled.clear();
        a.fd_hash = hash;
        a.dirty = false;
        ++socket_reads_;
        log().debug("reading the sockets of activator {} (PID {})", process.name, pid);

        for (const auto &candidate : listening_sockets_of(root, pid)) {
            const ApiSocket &socket = candidate.socket;
            if (watched.contains(socket.inode) || a.handled.contains(socket.inode)) continue;
            auto plugin = registry.activated_engine_for_socket(socket.path);
            if (!plugin) continue;
            if (std::chrono::steady_clock::now() >= deadline) {
                // An earlier socket used up this discovery's time: this one has
                // not been tried, so it is not given up on either.
                a.dirty = true;
                break;
            }
            a.handled.insert(socket.inode);
            if (!poke(*candidate.handle, deadline)) {
                log().info("cannot activate \"{}\" held by {} (PID {})", socket.path, process.name, pid);
                continue;
            }
            // Find the service: a claimed name holding the very same socket.
            std::optional<procfs::Process> service;
            while (!service) {
                std::vector<int> candidates = children_of(root, pid);
                candidates.push_back(pid); // exec'd in place (systemd-socket-activate)
                for (int c : candidates) {
                    auto p = procfs::read_process(root, c);
                    if (!p || p->state == 'Z' || !plugin->is_service(p->name)) continue;
                    auto held = procfs::socket_inodes(root, c);
                    if (std::binary_search(held.begin(), held.end(), socket.inode)) {
                        service = std::move(p);
                        break;
                    }
                }
                if (service || std::chrono::steady_clock::now() >= deadline) break;
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            if (!service) {
                log().info("activated \"{}\" held by {} (PID {}), but no service process took it in time",
                           socket.path, process.name, pid);
                continue;
            }
            log().debug("activated \"{}\": service {} (PID {})", socket.path, service->name, service->pid);
            found.push_back({std::move(*service), pid, candidate, std::move(plugin)});
        }
    }
    return found;
}

} // namespace turtlefinder::discovery
