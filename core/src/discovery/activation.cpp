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
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
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

std::optional<ActivatedService> run_activation(const std::string &root, const ActivationJob &job,
                                               std::chrono::milliseconds timeout) {
    const auto &socket = job.socket.socket;
    if (!poke(*job.socket.handle, std::chrono::steady_clock::now() + timeout)) {
        log().info("cannot activate \"{}\" held by {} (PID {})", socket.path, job.activator_name, job.activator_pid);
        return std::nullopt;
    }
    // Find the service: a claimed name holding the very same socket.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        std::vector<int> candidates = children_of(root, job.activator_pid);
        candidates.push_back(job.activator_pid); // exec'd in place (systemd-socket-activate)
        for (int c : candidates) {
            auto p = procfs::read_process(root, c);
            if (!p || p->state == 'Z' || !job.plugin->is_service(p->name)) continue;
            auto held = procfs::socket_inodes(root, c);
            if (std::binary_search(held.begin(), held.end(), socket.inode)) {
                log().debug("activated \"{}\": service {} (PID {})", socket.path, p->name, p->pid);
                return ActivatedService{std::move(*p), job.activator_pid, job.socket, job.plugin};
            }
        }
        if (std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    log().info("activated \"{}\" held by {} (PID {}), but no service process took it within {} ms", socket.path,
               job.activator_name, job.activator_pid, timeout.count());
    return std::nullopt;
}

bool Activation::Activator::retry_due() const {
    return std::any_of(fruitless.begin(), fruitless.end(), [](const auto &f) { return f.second.due(); });
}

void Activation::forget(std::uint64_t socket_inode) {
    for (auto &[pid, a] : activators_)
        if (a.handled.erase(socket_inode) > 0) a.dirty = true;
}

void Activation::finished(const ActivationJob &job, bool found_engine) {
    auto it = activators_.find(job.activator_pid);
    if (it == activators_.end()) return; // the activator is gone
    auto &a = it->second;
    if (found_engine) {
        a.fruitless.erase(job.socket.socket.inode);
        return;
    }
    a.handled.erase(job.socket.socket.inode);
    a.fruitless[job.socket.socket.inode].failed();
}

void Activation::plugins_changed() {
    for (auto &[pid, a] : activators_) a.dirty = true;
}

std::vector<ActivationJob> Activation::due(const procfs::ProcessTable &table, const plugins::Registry &registry,
                                           const std::set<std::uint64_t> &watched) {
    const std::string &root = table.root();
    std::vector<ActivationJob> jobs;
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
        // Nothing changed and nothing to retry: stay cheap.
        if (!inserted && a.fd_hash == hash && !a.dirty && !a.retry_due()) continue;
        if (a.fd_hash != hash) {
            a.handled.clear();
            a.fruitless.clear();
        }
        a.fd_hash = hash;
        a.dirty = false;
        ++socket_reads_;
        log().debug("reading the sockets of activator {} (PID {})", process.name, pid);

        for (auto &candidate : listening_sockets_of(root, pid)) {
            const ApiSocket &socket = candidate.socket;
            if (watched.contains(socket.inode) || a.handled.contains(socket.inode)) continue;
            auto f = a.fruitless.find(socket.inode);
            if (f != a.fruitless.end() && !f->second.due()) continue;
            auto plugin = registry.activated_engine_for_socket(socket.path);
            if (!plugin) continue;
            a.handled.insert(socket.inode);
            jobs.push_back({pid, process.name, candidate, std::move(plugin), f != a.fruitless.end()});
        }
    }
    return jobs;
}

} // namespace turtlefinder::discovery
