// SPDX-License-Identifier: Apache-2.0
// The socket of the kernel's process events connector.
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "procfs/files.hpp"
#include "procfs/process_events.hpp"

namespace turtlefinder::procfs {

namespace {

// The inodes the kernel gives its initial namespaces (PROC_PID_INIT_INO,
// PROC_USER_INIT_INO): they never change.
constexpr std::uint64_t initial_pid_namespace = 0xEFFFFFFCU;
constexpr std::uint64_t initial_user_namespace = 0xEFFFFFFDU;

// Room for a burst between two reads: 8 MiB of socket buffer holds some
// ten thousand events (the kernel charges each message ~768 bytes).
constexpr int receive_buffer_bytes = 8 << 20;

// How long the kernel may take to acknowledge the listen request.
constexpr std::chrono::milliseconds ack_wait{1000};

class Connector final : public EventSource {
public:
    explicit Connector(Fd socket) : socket_(std::move(socket)), buffer_(65536) {}
    ~Connector() override { control(PROC_CN_MCAST_IGNORE, 0); }

    int fd() const override { return socket_.get(); }

    // Sends a listen or ignore request; the kernel's ack carries ack + 1.
    bool control(proc_cn_mcast_op op, std::uint32_t tag) {
        alignas(nlmsghdr) std::uint8_t request[NLMSG_SPACE(sizeof(cn_msg) + sizeof(proc_cn_mcast_op))]{};
        nlmsghdr header{};
        header.nlmsg_len = NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_cn_mcast_op));
        header.nlmsg_type = NLMSG_DONE;
        cn_msg message{};
        message.id = {CN_IDX_PROC, CN_VAL_PROC};
        message.seq = tag;
        message.ack = tag;
        message.len = sizeof(proc_cn_mcast_op);
        std::memcpy(request, &header, sizeof header);
        std::memcpy(request + NLMSG_HDRLEN, &message, sizeof message);
        std::memcpy(request + NLMSG_HDRLEN + sizeof message, &op, sizeof op);
        ssize_t n;
        do {
            n = ::send(socket_.get(), request, NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_cn_mcast_op)), 0);
        } while (n < 0 && errno == EINTR);
        return n == static_cast<ssize_t>(NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_cn_mcast_op)));
    }

    // Waits for the kernel to acknowledge request `tag`: only a listener it
    // accepted gets events, and it says so. Events before the ack are
    // dropped (the table is scanned after it). Empty if accepted, else why not.
    std::string await_ack(std::uint32_t tag) {
        const auto deadline = std::chrono::steady_clock::now() + ack_wait;
        std::vector<ProcessEvent> events;
        while (true) {
            events.clear();
            receive(events);
            for (const auto &e : events)
                if (e.kind == ProcessEvent::Kind::ack && e.ack == tag + 1)
                    return e.error == 0 ? std::string()
                                        : "the kernel refused to send process events: " +
                                              std::string(std::strerror(static_cast<int>(e.error)));
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return "the kernel did not acknowledge listening to process events";
            pollfd p{socket_.get(), POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(left.count()));
        }
    }

    Received receive(std::vector<ProcessEvent> &out) override {
        Received result;
        while (true) {
            sockaddr_nl from{};
            iovec io{buffer_.data(), buffer_.size()};
            msghdr message{};
            message.msg_name = &from;
            message.msg_namelen = sizeof from;
            message.msg_iov = &io;
            message.msg_iovlen = 1;
            ssize_t n = ::recvmsg(socket_.get(), &message, MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return result;
                // ENOBUFS: the buffer overflowed and the kernel dropped events;
                // reading on gets the ones after.
                result.lost = true;
                if (errno == ENOBUFS) continue;
                return result;
            }
            if (from.nl_pid != 0) continue; // only the kernel speaks here
            std::size_t before = out.size();
            if ((message.msg_flags & MSG_TRUNC) != 0 ||
                !decode_datagram({buffer_.data(), static_cast<std::size_t>(n)}, out)) {
                out.resize(before);
                result.lost = true;
                continue;
            }
            for (std::size_t i = before; i < out.size(); ++i)
                if (!sequence_.follows(out[i])) result.lost = true;
        }
    }

private:
    Fd socket_;
    std::vector<std::uint8_t> buffer_;
    SequenceCheck sequence_;
};

std::optional<std::uint64_t> own_namespace(const char *link) {
    auto target = read_link(link);
    if (!target) return std::nullopt;
    return parse_bracketed(*target, target->starts_with("pid:") ? "pid:" : "user:");
}

} // namespace

std::unique_ptr<EventSource> open_connector(const std::string &procfs_root, std::string &why_not) {
    if (own_namespace("/proc/self/ns/pid") != initial_pid_namespace ||
        own_namespace("/proc/self/ns/user") != initial_user_namespace) {
        why_not = "not in the initial PID and user namespaces, where the kernel sends process events";
        return nullptr;
    }
    // The events name PIDs of the initial PID namespace: the procfs read
    // must show those, as ours does (its "self" is our PID there).
    auto self = read_link(procfs_root + "/self");
    if (!self || *self != std::to_string(::getpid())) {
        why_not = "procfs root \"" + procfs_root + "\" is not the procfs of this PID namespace";
        return nullptr;
    }
    Fd socket{::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR)};
    if (!socket.ok()) {
        why_not = std::string("no process events connector: ") + std::strerror(errno);
        return nullptr;
    }
    int size = receive_buffer_bytes;
    if (::setsockopt(socket.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
        ::setsockopt(socket.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_nl address{};
    address.nl_family = AF_NETLINK;
    address.nl_groups = CN_IDX_PROC;
    if (::bind(socket.get(), reinterpret_cast<sockaddr *>(&address), sizeof address) != 0) {
        why_not = std::string("cannot join the process events group: ") + std::strerror(errno) +
                  (errno == EPERM ? " (needs CAP_NET_ADMIN)" : "");
        return nullptr;
    }
    auto connector = std::make_unique<Connector>(std::move(socket));
    // A tag of our own tells our ack from another listener's.
    const auto tag = static_cast<std::uint32_t>(::getpid()) ^
                     static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(connector.get()) >> 4);
    if (!connector->control(PROC_CN_MCAST_LISTEN, tag)) {
        why_not = std::string("cannot ask for process events: ") + std::strerror(errno);
        return nullptr;
    }
    why_not = connector->await_ack(tag);
    if (!why_not.empty()) return nullptr;
    return connector;
}

} // namespace turtlefinder::procfs
