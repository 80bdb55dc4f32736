// SPDX-License-Identifier: Apache-2.0
// The kernel's process events (the netlink connector, CN_IDX_PROC): fork,
// exec, comm and exit of every task, decoded from the messages as the
// kernel lays them out (linux/cn_proc.h), and the socket that receives them.
// Events name PIDs only; the process table reads /proc for the rest.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace turtlefinder::procfs {

struct ProcessEvent {
    enum class Kind : std::uint8_t {
        fork, // `pid`/`tgid` is the new task, `parent_tgid` the process that forked it
        exec,
        comm, // the task's name changed to `comm`
        exit,
        other, // an event the table does not need (uid, gid, sid, ptrace, coredump)
        ack, // the kernel's answer to our listen request (`error`: 0 or an errno)
    };
    Kind kind = Kind::other;
    int pid = 0; // the task; a thread unless pid == tgid
    int tgid = 0; // its process
    int parent_tgid = 0; // fork only
    std::string comm; // comm only
    std::uint32_t error = 0; // ack only
    std::uint32_t cpu = 0; // where the kernel numbered it...
    std::uint32_t seq = 0; // ...and its number there
    std::uint32_t ack = 0; // ack: the request's ack + 1
    bool leader() const { return pid == tgid; } // about the process, not one of its other threads
};

// Decodes one datagram of the connector socket (netlink messages, each a
// connector message holding one proc_event) into `out`. False if it is not
// one: truncated, a length that lies, another connector index. Events it
// does not know are Kind::other.
bool decode_datagram(std::span<const std::uint8_t> datagram, std::vector<ProcessEvent> &out);

// The kernel numbers the events of each CPU in order, one by one, and sends
// them in that order; a gap means events were lost (the socket's buffer was
// full, or the kernel could not allocate a message).
class SequenceCheck {
public:
    // False if `event` does not follow the last one of its CPU. Acks never
    // count as a gap (see follows()).
    bool follows(const ProcessEvent &event);
    void reset() { last_.clear(); }

private:
    std::unordered_map<std::uint32_t, std::uint32_t> last_; // CPU → last seq
};

// Where process events come from: the kernel's connector, or a test's script.
class EventSource {
public:
    virtual ~EventSource() = default;
    struct Received {
        bool lost = false; // events were lost (ENOBUFS, a gap, garbage): rescan
    };
    // Appends what has arrived, without blocking. [serialized]
    virtual Received receive(std::vector<ProcessEvent> &out) = 0;
    // Readable when events are waiting (-1: none to poll).
    virtual int fd() const = 0;
};

// Listens to the kernel's process events, for a table read from
// `procfs_root`. Null, with `why_not` set, where that cannot work: not
// privileged (CAP_NET_ADMIN), not in the initial PID and user namespaces
// (the kernel ignores listeners elsewhere), a kernel without the connector,
// or a procfs root that does not show the PIDs the kernel sends (another
// PID namespace's, or a fixture tree).
std::unique_ptr<EventSource> open_connector(const std::string &procfs_root, std::string &why_not);

} // namespace turtlefinder::procfs
