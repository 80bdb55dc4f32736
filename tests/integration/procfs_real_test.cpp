// SPDX-License-Identifier: Apache-2.0
// procfs against the real /proc: our own process and its sockets, and a child
// whose socket lives in a mount namespace we cannot see.
#include "procfs/procfs.hpp"

#include "testing.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace turtlefinder::procfs;

// An fd closed on scope exit.
struct OwnedFd {
    int fd = -1;
    OwnedFd() = default;
    explicit OwnedFd(int f) : fd(f) {}
    OwnedFd(const OwnedFd &) = delete;
    OwnedFd &operator=(const OwnedFd &) = delete;
    ~OwnedFd() { reset(); }
    void reset() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

std::optional<sockaddr_un> unix_address(const std::string &path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) return std::nullopt;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    return address;
}

// A bound unix socket of `type`; listening if asked. -1 on failure.
int bound_socket(const std::string &path, int type, bool listening) {
    auto address = unix_address(path);
    if (!address) return -1;
    int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::bind(fd, reinterpret_cast<const sockaddr *>(&*address), sizeof *address) != 0 ||
        (listening && ::listen(fd, 4) != 0)) {
        ::close(fd);
        return -1;
    }
    return fd;
}

std::uint64_t inode_of(int fd) {
    struct stat info {};
    if (::fstat(fd, &info) != 0) return 0;
    return info.st_ino;
}

const UnixSocket *find_socket(const std::vector<UnixSocket> &sockets, std::uint64_t inode) {
    auto it = std::find_if(sockets.begin(), sockets.end(), [&](const UnixSocket &s) { return s.inode == inode; });
    return it == sockets.end() ? nullptr : &*it;
}

bool contains(const std::vector<std::uint64_t> &inodes, std::uint64_t inode) {
    return std::binary_search(inodes.begin(), inodes.end(), inode);
}

TEST(ProcfsReal, ScanFindsOurselves) {
    tftest::LeakGuard leaks;
    char comm[17] = {};
    ASSERT_EQ(::prctl(PR_GET_NAME, comm), 0);

    auto table = ProcessTable::scan("/proc");
    EXPECT_GT(table.size(), 1u);
    const Process *self = table.find(::getpid());
    ASSERT_NE(self, nullptr);
    EXPECT_EQ(self->name, comm);
    EXPECT_EQ(self->ppid, ::getppid());
    EXPECT_NE(self->state, 'Z');
    EXPECT_GT(self->starttime, 0u);
    const Process *parent = table.find(::getppid());
    ASSERT_NE(parent, nullptr);
    EXPECT_TRUE(std::binary_search(parent->children.begin(), parent->children.end(), ::getpid()));
    EXPECT_TRUE(table.is_self_or_ancestor(::getppid(), ::getpid()));
    for (const auto &[pid, process] : table.processes()) {
        EXPECT_EQ(pid, process.pid);
        EXPECT_NE(process.state, 'Z') << pid;
    }

    // starttime checked against an independent, naive split of our own stat.
    std::string line;
    std::getline(std::ifstream("/proc/self/stat"), line);
    std::istringstream fields(line.substr(line.rfind(')') + 2));
    std::vector<std::string> after_comm{std::istream_iterator<std::string>(fields), {}};
    ASSERT_GT(after_comm.size(), 19u);
    EXPECT_EQ(std::to_string(self->starttime), after_comm[19]);
    EXPECT_EQ(std::to_string(self->ppid), after_comm[1]);

    auto again = read_process("/proc", ::getpid());
    ASSERT_TRUE(again);
    EXPECT_EQ(again->starttime, self->starttime);
    EXPECT_EQ(again->name, self->name);
    leaks.check();
}

TEST(ProcfsReal, OwnNamespaces) {
    tftest::LeakGuard leaks;
    auto nspid = read_nspid("/proc", ::getpid());
    ASSERT_TRUE(nspid);
    ASSERT_FALSE(nspid->empty());
    EXPECT_EQ(nspid->back(), ::getpid());

    struct stat info {};
    ASSERT_EQ(::stat("/proc/self/ns/pid", &info), 0);
    EXPECT_EQ(pid_namespace("/proc", ::getpid()), info.st_ino);
    leaks.check();
}

TEST(ProcfsReal, OwnListeningSocket) {
    tftest::LeakGuard leaks;
    {
        tftest::TempDir dir("tf-procfs-");
        std::string listening_path = dir.path() + "/api sock.sock"; // a space, as paths may have
        std::string bound_path = dir.path() + "/bound-only.sock";
        std::string dgram_path = dir.path() + "/dgram.sock";

        OwnedFd listening{bound_socket(listening_path, SOCK_STREAM, true)};
        ASSERT_GE(listening.fd, 0) << std::strerror(errno);
        OwnedFd bound{bound_socket(bound_path, SOCK_STREAM, false)};
        ASSERT_GE(bound.fd, 0) << std::strerror(errno);
        OwnedFd dgram{bound_socket(dgram_path, SOCK_DGRAM, false)};
        ASSERT_GE(dgram.fd, 0) << std::strerror(errno);
        OwnedFd abstract{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
        ASSERT_GE(abstract.fd, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::string name = "tf-procfs-test-" + std::to_string(::getpid());
        std::memcpy(address.sun_path + 1, name.data(), name.size());
        ASSERT_EQ(::bind(abstract.fd, reinterpret_cast<const sockaddr *>(&address),
                         static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())),
                  0);
        ASSERT_EQ(::listen(abstract.fd, 1), 0);

        std::uint64_t inode = inode_of(listening.fd);
        ASSERT_NE(inode, 0u);

        auto sockets = listening_unix_sockets("/proc", ::getpid());
        const UnixSocket *found = find_socket(sockets, inode);
        ASSERT_NE(found, nullptr) << "listening socket inode " << inode << " not in net/unix";
        EXPECT_EQ(found->path, listening_path);
        EXPECT_EQ(find_socket(sockets, inode_of(bound.fd)), nullptr) << "not listening";
        EXPECT_EQ(find_socket(sockets, inode_of(dgram.fd)), nullptr) << "datagram";
        EXPECT_EQ(find_socket(sockets, inode_of(abstract.fd)), nullptr) << "abstract";

        auto inodes = socket_inodes("/proc", ::getpid());
        EXPECT_TRUE(contains(inodes, inode));
        EXPECT_TRUE(contains(inodes, inode_of(bound.fd)));
        EXPECT_TRUE(contains(inodes, inode_of(abstract.fd)));

        listening.reset();
        EXPECT_TRUE(tftest::eventually(
            [&] { return find_socket(listening_unix_sockets("/proc", ::getpid()), inode) == nullptr; }));
        EXPECT_FALSE(contains(socket_inodes("/proc", ::getpid()), inode));
    }
    leaks.check();
}

TEST(ProcfsReal, ZombieAndVanishedProcess) {
    tftest::LeakGuard leaks;
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) ::_exit(0);

    // Not reaped yet: a zombie, which read_process reports and scan skips.
    EXPECT_TRUE(tftest::eventually([&] {
        auto process = read_process("/proc", child);
        return process && process->state == 'Z';
    }));
    EXPECT_EQ(ProcessTable::scan("/proc").find(child), nullptr);
    EXPECT_TRUE(socket_inodes("/proc", child).empty());

    ASSERT_EQ(::waitpid(child, nullptr, 0), child);
    // Gone: every reader answers "nothing" instead of failing.
    EXPECT_FALSE(read_process("/proc", child));
    EXPECT_FALSE(read_nspid("/proc", child));
    EXPECT_FALSE(pid_namespace("/proc", child));
    EXPECT_TRUE(socket_inodes("/proc", child).empty());
    EXPECT_TRUE(listening_unix_sockets("/proc", child).empty());
    leaks.check();
}

// A child that listens on a socket inside a tmpfs only its own mount
// namespace has; reached by the parent through /proc/CHILD/root.
class MountNamespaceChild {
public:
    MountNamespaceChild(const std::string &mount_point, const std::string &real_dir, const std::string &link,
                        const std::string &socket_path) {
        int ready[2];
        int hold[2];
        if (::pipe2(ready, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
        if (::pipe2(hold, O_CLOEXEC) != 0) {
            ::close(ready[0]);
            ::close(ready[1]);
            throw std::runtime_error("pipe");
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(ready[0]);
            ::close(hold[1]);
            // Only async-signal-safe calls below: every string was built before fork.
            char status = 0;
            if (::unshare(CLONE_NEWNS) != 0)
                status = 1;
            else if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
                status = 2;
            else if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=1m") != 0)
                status = 3;
            else if (::mkdir(real_dir.c_str(), 0755) != 0)
                status = 4;
            else if (::symlink(real_dir.c_str(), link.c_str()) != 0)
                status = 5;
            int listener = -1;
            if (status == 0) {
                listener = bound_socket(socket_path, SOCK_STREAM, true);
                if (listener < 0) status = 6;
            }
            char message = status == 0 ? 'R' : static_cast<char>('0' + status);
            (void)!::write(ready[1], &message, 1);
            char ignored;
            while (::read(hold[0], &ignored, 1) < 0 && errno == EINTR) {
            }
            ::_exit(status);
        }
        ::close(ready[1]);
        ::close(hold[0]);
        ready_fd_ = ready[0];
        hold_fd_ = hold[1];
        if (pid_ < 0) {
            stop();
            throw std::runtime_error("fork");
        }
    }
    MountNamespaceChild(const MountNamespaceChild &) = delete;
    MountNamespaceChild &operator=(const MountNamespaceChild &) = delete;
    ~MountNamespaceChild() { stop(); }

    pid_t pid() const { return pid_; }

    // 'R' once listening, a digit naming the failed step, 0 on timeout/EOF.
    char wait_ready() const {
        pollfd p{ready_fd_, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) return 0;
        char message = 0;
        if (::read(ready_fd_, &message, 1) != 1) return 0;
        return message;
    }

    void stop() {
        if (hold_fd_ >= 0) ::close(hold_fd_); // EOF tells the child to exit
        if (ready_fd_ >= 0) ::close(ready_fd_);
        hold_fd_ = ready_fd_ = -1;
        if (pid_ <= 0) return;
        bool reaped =
            tftest::eventually([&] { return ::waitpid(pid_, nullptr, WNOHANG) == pid_; }, std::chrono::seconds(5));
        if (!reaped) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        pid_ = -1;
    }

private:
    pid_t pid_ = -1;
    int ready_fd_ = -1;
    int hold_fd_ = -1;
};

TEST(ProcfsReal, SocketInChildMountNamespace) {
    TF_REQUIRE_ROOT();
    tftest::LeakGuard leaks;
    {
        tftest::TempDir dir("tf-procfs-");
        std::string mount_point = dir.path() + "/mnt";
        ASSERT_EQ(::mkdir(mount_point.c_str(), 0755), 0);
        std::string real_dir = mount_point + "/real";
        std::string link = mount_point + "/link";
        // Bound through an absolute symlink: net/unix shows this string, which
        // only resolves inside the child's mount namespace.
        std::string socket_path = link + "/engine.sock";

        MountNamespaceChild child(mount_point, real_dir, link, socket_path);
        char ready = child.wait_ready();
        if (ready >= '1' && ready <= '3')
            TF_SKIP_OR_FAIL(std::string("cannot make a mount namespace here (step ") + ready + ")");
        ASSERT_EQ(ready, 'R') << "child failed at step " << ready;

        struct stat info {};
        EXPECT_NE(::lstat(socket_path.c_str(), &info), 0) << "visible in our namespace";
        EXPECT_NE(::lstat(link.c_str(), &info), 0) << "visible in our namespace";

        auto table = ProcessTable::scan("/proc");
        const Process *found = table.find(child.pid());
        ASSERT_NE(found, nullptr);
        EXPECT_EQ(found->ppid, ::getpid());

        auto sockets = listening_unix_sockets("/proc", child.pid());
        auto it =
            std::find_if(sockets.begin(), sockets.end(), [&](const UnixSocket &s) { return s.path == socket_path; });
        ASSERT_NE(it, sockets.end()) << socket_path << " not in /proc/" << child.pid() << "/net/unix";
        EXPECT_TRUE(contains(socket_inodes("/proc", child.pid()), it->inode));

        std::string root = "/proc/" + std::to_string(child.pid()) + "/root";
        auto resolved = resolve_in_root(root, it->path);
        ASSERT_TRUE(resolved);
        EXPECT_EQ(*resolved, root + real_dir + "/engine.sock");

        auto address = unix_address(*resolved);
        ASSERT_TRUE(address) << "path too long for sockaddr_un: " << *resolved;
        OwnedFd client{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
        ASSERT_GE(client.fd, 0);
        EXPECT_EQ(::connect(client.fd, reinterpret_cast<const sockaddr *>(&*address), sizeof *address), 0)
            << std::strerror(errno);
        client.reset();
        child.stop();
    }
    leaks.check();
}

} // namespace
