// SPDX-License-Identifier: Apache-2.0
// Decoding the connector's messages. Every field is copied out with its
// offset in the kernel's structs: a proc_event follows a 20-byte cn_msg, so
// it is not aligned in the datagram.
#include "procfs/process_events.hpp"

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include <cstddef>
#include <cstring>

namespace turtlefinder::procfs {

namespace {

template <typename T>
T load(const std::uint8_t *at) {
    T value;
    std::memcpy(&value, at, sizeof value);
    return value;
}

// The fields of a proc_event this decoder reads, from the kernel's layout.
constexpr std::size_t event_header = offsetof(proc_event, event_data);
constexpr std::size_t fork_size = event_header + sizeof(proc_event{}.event_data.fork);
constexpr std::size_t task_size = event_header + 2 * sizeof(__kernel_pid_t); // process_pid, process_tgid
constexpr std::size_t comm_size = event_header + sizeof(proc_event{}.event_data.comm);
constexpr std::size_t ack_size = event_header + sizeof(proc_event{}.event_data.ack);

bool decode_event(const std::uint8_t *at, std::size_t size, ProcessEvent &e) {
    if (size < event_header) return false;
    auto what = load<std::uint32_t>(at + offsetof(proc_event, what));
    e.cpu = load<std::uint32_t>(at + offsetof(proc_event, cpu));
    switch (what) {
    case proc_event::PROC_EVENT_NONE:
        if (size < ack_size) return false;
        e.kind = ProcessEvent::Kind::ack;
        e.error = load<std::uint32_t>(at + offsetof(proc_event, event_data.ack.err));
        return true;
    case proc_event::PROC_EVENT_FORK:
        if (size < fork_size) return false;
        e.kind = ProcessEvent::Kind::fork;
        e.parent_tgid = load<std::int32_t>(at + offsetof(proc_event, event_data.fork.parent_tgid));
        e.pid = load<std::int32_t>(at + offsetof(proc_event, event_data.fork.child_pid));
        e.tgid = load<std::int32_t>(at + offsetof(proc_event, event_data.fork.child_tgid));
        return true;
    case proc_event::PROC_EVENT_COMM: {
        if (size < comm_size) return false;
        e.kind = ProcessEvent::Kind::comm;
        const auto *comm = reinterpret_cast<const char *>(at + offsetof(proc_event, event_data.comm.comm));
        e.comm.assign(comm, strnlen(comm, sizeof(proc_event{}.event_data.comm.comm)));
        break;
    }
    case proc_event::PROC_EVENT_EXEC: e.kind = ProcessEvent::Kind::exec; break;
    case proc_event::PROC_EVENT_EXIT: e.kind = ProcessEvent::Kind::exit; break;
    default: e.kind = ProcessEvent::Kind::other; return true;
    }
    // exec, comm and exit begin alike: process_pid, process_tgid.
    if (size < task_size) return false;
    e.pid = load<std::int32_t>(at + offsetof(proc_event, event_data.exec.process_pid));
    e.tgid = load<std::int32_t>(at + offsetof(proc_event, event_data.exec.process_tgid));
    return true;
}

} // namespace

bool decode_datagram(std::span<const std::uint8_t> datagram, std::vector<ProcessEvent> &out) {
    std::size_t at = 0;
    while (datagram.size() - at >= sizeof(nlmsghdr)) {
        auto header = load<nlmsghdr>(datagram.data() + at);
        if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > datagram.size() - at) return false;
        std::size_t payload = header.nlmsg_len - NLMSG_HDRLEN;
        const std::uint8_t *body = datagram.data() + at + NLMSG_HDRLEN;
        at += std::min<std::size_t>(NLMSG_ALIGN(header.nlmsg_len), datagram.size() - at);
        if (header.nlmsg_type == NLMSG_NOOP) continue;
        if (header.nlmsg_type == NLMSG_ERROR || header.nlmsg_type == NLMSG_OVERRUN) return false;
        if (payload < sizeof(cn_msg)) return false;
        auto message = load<cn_msg>(body);
        if (message.id.idx != CN_IDX_PROC || message.id.val != CN_VAL_PROC) return false;
        if (message.len > payload - sizeof(cn_msg)) return false;
        ProcessEvent e;
        if (!decode_event(body + sizeof(cn_msg), message.len, e)) return false;
        e.seq = message.seq;
        e.ack = message.ack;
        out.push_back(std::move(e));
    }
    return at == datagram.size();
}

bool SequenceCheck::follows(const ProcessEvent &event) {
    if (event.kind == ProcessEvent::Kind::ack) {
        // Newer kernels number acks like events, older ones repeat the
        // request's number: an ack counts only where it fits.
        if (auto it = last_.find(event.cpu); it != last_.end() && event.seq == it->second + 1) it->second = event.seq;
        return true;
    }
    auto [it, first] = last_.try_emplace(event.cpu, event.seq);
    if (first) return true;
    bool in_order = event.seq == it->second + 1; // unsigned: wraps as the kernel's counter does
    it->second = event.seq;
    return in_order;
}

} // namespace turtlefinder::procfs
