// SPDX-License-Identifier: Apache-2.0
// The kernel's process events without a socket: decoding recorded and
// constructed connector messages, the sequence check, and the process table
// kept current from events on a fixture /proc tree (fork, exec, exit, comm,
// re-parenting, PID reuse, lost events → a full rescan).
#include <gtest/gtest.h>

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>
#include <string>
#include <vector>

#include "procfs/process_events.hpp"
#include "procfs/tracker.hpp"
#include "procfs_fixture.hpp"

namespace {

namespace pf = turtlefinder::procfs;
using Kind = pf::ProcessEvent::Kind;

std::vector<std::uint8_t> from_hex(std::string_view hex) {
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return out;
}

// Recorded on kernel 6.18 (x86_64) around `sh -c 'exec /bin/true'` from PID
// 10034: the ack of a listen request (ack 7 + 1), then the fork of 10241, its
// exec and its exit (SIGCHLD to 10034).
constexpr std::string_view recorded_ack =
    "4c000000030000000000000000000000010000000100000000000000080000002800000000000000"
    "01000000eaa67fb1240c0000000000000000000000000000000000000000000000000000";
constexpr std::string_view recorded_fork =
    "4c00000003000000010000000000000001000000010000000100000000000000280000000100000"
    "00100000016f781b1240c000032270000322700000128000001280000000000000000000"
    "0";
constexpr std::string_view recorded_exec =
    "4c00000003000000020000000000000001000000010000000200000000000000280000000200000"
    "001000000876485b1240c000001280000012800000000000000000000000000000000000"
    "0";
constexpr std::string_view recorded_exit =
    "4c00000003000000040000000000000001000000010000000400000000000000280000000000008"
    "001000000d4c3ffb1240c000001280000012800000000000011000000322700003227000"
    "0";

std::vector<pf::ProcessEvent> decode(const std::vector<std::uint8_t> &bytes, bool *ok = nullptr) {
    std::vector<pf::ProcessEvent> out;
    bool decoded = pf::decode_datagram(bytes, out);
    if (ok != nullptr) *ok = decoded;
    return out;
}

TEST(ProcessEventsDecode, RecordedMessages) {
    bool ok = false;
    auto ack = decode(from_hex(recorded_ack), &ok);
    ASSERT_TRUE(ok);
    ASSERT_EQ(ack.size(), 1u);
    EXPECT_EQ(ack[0].kind, Kind::ack);
    EXPECT_EQ(ack[0].ack, 8u);
    EXPECT_EQ(ack[0].error, 0u);

    auto fork = decode(from_hex(recorded_fork), &ok);
    ASSERT_TRUE(ok);
    ASSERT_EQ(fork.size(), 1u);
    EXPECT_EQ(fork[0].kind, Kind::fork);
    EXPECT_EQ(fork[0].parent_tgid, 10034);
    EXPECT_EQ(fork[0].pid, 10241);
    EXPECT_EQ(fork[0].tgid, 10241);
    EXPECT_TRUE(fork[0].leader());
    EXPECT_EQ(fork[0].cpu, 1u);
    EXPECT_EQ(fork[0].seq, 1u);

    auto exec = decode(from_hex(recorded_exec), &ok);
    ASSERT_TRUE(ok);
    ASSERT_EQ(exec.size(), 1u);
    EXPECT_EQ(exec[0].kind, Kind::exec);
    EXPECT_EQ(exec[0].tgid, 10241);
    EXPECT_EQ(exec[0].seq, 2u);

    auto exit = decode(from_hex(recorded_exit), &ok);
    ASSERT_TRUE(ok);
    ASSERT_EQ(exit.size(), 1u);
    EXPECT_EQ(exit[0].kind, Kind::exit);
    EXPECT_EQ(exit[0].tgid, 10241);
    EXPECT_EQ(exit[0].seq, 4u);
}

// One netlink message holding one connector message holding `event`.
std::vector<std::uint8_t> message(const proc_event &event, std::uint32_t seq, std::uint32_t idx = CN_IDX_PROC) {
    std::vector<std::uint8_t> out(NLMSG_SPACE(sizeof(cn_msg) + sizeof event));
    nlmsghdr header{};
    header.nlmsg_len = NLMSG_LENGTH(sizeof(cn_msg) + sizeof event);
    header.nlmsg_type = NLMSG_DONE;
    cn_msg cn{};
    cn.id = {idx, CN_VAL_PROC};
    cn.seq = seq;
    cn.len = sizeof event;
    std::memcpy(out.data(), &header, sizeof header);
    std::memcpy(out.data() + NLMSG_HDRLEN, &cn, sizeof cn);
    std::memcpy(out.data() + NLMSG_HDRLEN + sizeof cn, &event, sizeof event);
    return out;
}

proc_event comm_event(int pid, int tgid, const char *name) {
    proc_event e{};
    e.what = proc_event::PROC_EVENT_COMM;
    e.event_data.comm.process_pid = pid;
    e.event_data.comm.process_tgid = tgid;
    std::memcpy(e.event_data.comm.comm, name, std::min(std::strlen(name), sizeof e.event_data.comm.comm));
    return e;
}

TEST(ProcessEventsDecode, ConstructedCommAndOthers) {
    // A comm of the full 16 bytes has no NUL: it stops at the field's end.
    auto events = decode(message(comm_event(7, 5, "0123456789abcdefXYZ"), 3));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, Kind::comm);
    EXPECT_EQ(events[0].comm, "0123456789abcdef");
    EXPECT_EQ(events[0].pid, 7);
    EXPECT_EQ(events[0].tgid, 5);
    EXPECT_FALSE(events[0].leader());

    proc_event uid{};
    uid.what = proc_event::PROC_EVENT_UID;
    events = decode(message(uid, 4));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, Kind::other);
    EXPECT_EQ(events[0].seq, 4u);
}

TEST(ProcessEventsDecode, SeveralMessagesInOneDatagram) {
    auto a = message(comm_event(1, 1, "a"), 10);
    auto b = message(comm_event(2, 2, "b"), 11);
    a.insert(a.end(), b.begin(), b.end());
    bool ok = false;
    auto events = decode(a, &ok);
    EXPECT_TRUE(ok);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[1].comm, "b");
}

TEST(ProcessEventsDecode, RejectsWhatIsNotAProcessEvent) {
    bool ok = true;
    auto bytes = from_hex(recorded_fork);
    decode(std::vector<std::uint8_t>(bytes.begin(), bytes.end() - 8), &ok);
    EXPECT_FALSE(ok) << "truncated";
    decode(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 10), &ok);
    EXPECT_FALSE(ok) << "shorter than a netlink header";

    auto lying = bytes;
    lying[0] = 0xff; // nlmsg_len beyond the datagram
    decode(lying, &ok);
    EXPECT_FALSE(ok) << "length beyond the datagram";

    decode(message(comm_event(1, 1, "x"), 1, CN_IDX_PROC + 1), &ok);
    EXPECT_FALSE(ok) << "another connector";

    auto short_event = bytes;
    // cn_msg.len (offset 16 + 16) claims fewer bytes than a fork event holds.
    short_event[NLMSG_HDRLEN + offsetof(cn_msg, len)] = 12;
    decode(short_event, &ok);
    EXPECT_FALSE(ok) << "event shorter than its kind";

    EXPECT_TRUE(decode({}, &ok).empty());
    EXPECT_TRUE(ok) << "an empty datagram holds nothing";
}

TEST(ProcessEventsSequence, GapsPerCpu) {
    pf::SequenceCheck check;
    auto ev = [](std::uint32_t cpu, std::uint32_t seq, Kind kind = Kind::exec) {
        pf::ProcessEvent e;
        e.kind = kind;
        e.cpu = cpu;
        e.seq = seq;
        return e;
    };
    EXPECT_TRUE(check.follows(ev(0, 100)));
    EXPECT_TRUE(check.follows(ev(1, 7)));
    EXPECT_TRUE(check.follows(ev(0, 101)));
    EXPECT_TRUE(check.follows(ev(1, 8)));
    EXPECT_FALSE(check.follows(ev(0, 103))) << "102 lost";
    EXPECT_TRUE(check.follows(ev(0, 104)));
    // Acks never make a gap, numbered or not.
    EXPECT_TRUE(check.follows(ev(0, 105, Kind::ack)));
    EXPECT_TRUE(check.follows(ev(0, 106)));
    EXPECT_TRUE(check.follows(ev(0, 77, Kind::ack)));
    EXPECT_TRUE(check.follows(ev(0, 107)));
    // The kernel's counter wraps.
    EXPECT_TRUE(check.follows(ev(2, 0xffffffffu)));
    EXPECT_TRUE(check.follows(ev(2, 0)));
}

// ---- the table kept current ----------------------------------------------

pf::ProcessEvent event(Kind kind, int tgid, int parent = 0, std::string comm = {}) {
    pf::ProcessEvent e;
    e.kind = kind;
    e.pid = tgid;
    e.tgid = tgid;
    e.parent_tgid = parent;
    e.comm = std::move(comm);
    return e;
}

// A scripted event source: what receive() hands out next.
class Script final : public pf::EventSource {
public:
    struct Step {
        std::vector<pf::ProcessEvent> events;
        bool lost = false;
    };
    std::deque<Step> steps;
    Received receive(std::vector<pf::ProcessEvent> &out) override {
        Received r;
        while (!steps.empty()) {
            auto &s = steps.front();
            out.insert(out.end(), s.events.begin(), s.events.end());
            r.lost |= s.lost;
            steps.pop_front();
        }
        return r;
    }
    int fd() const override { return -1; }
};

// The table as a scan of the fixture would give it now, to compare with.
void expect_same_as_scan(const pf::ProcessTable &table, const std::string &root) {
    auto fresh = pf::ProcessTable::scan(root);
    ASSERT_EQ(table.size(), fresh.size());
    for (const auto &[pid, p] : fresh.processes()) {
        const auto *q = table.find(pid);
        ASSERT_NE(q, nullptr) << "PID " << pid << " missing";
        EXPECT_EQ(q->ppid, p.ppid) << "PID " << pid;
        EXPECT_EQ(q->name, p.name) << "PID " << pid;
        EXPECT_EQ(q->starttime, p.starttime) << "PID " << pid;
        EXPECT_EQ(q->children, p.children) << "PID " << pid;
    }
}

class Tracked : public ::testing::Test {
protected:
    void SetUp() override {
        fx.add_process(1, 0, "init");
        fx.add_process(100, 1, "bash");
        fx.add_process(200, 100, "sleep");
        auto s = std::make_unique<Script>();
        script = s.get();
        tracker = std::make_unique<pf::ProcessTracker>(fx.root(), std::move(s));
    }
    void remove(int pid) { std::filesystem::remove_all(fx.path(std::to_string(pid))); }

    tftest::ProcFixture fx;
    Script *script = nullptr;
    std::unique_ptr<pf::ProcessTracker> tracker;
};

TEST_F(Tracked, ForkExecCommExitAndReparenting) {
    const auto &first = tracker->current();
    EXPECT_EQ(first.size(), 3u);
    EXPECT_EQ(tracker->counters().scans, 1u);

    // fork, then exec as an engine; a thread of 100 is only a thread.
    fx.add_process(300, 100, "bash", 'S', 2000);
    fx.write("300/stat", tftest::ProcFixture::stat_line(300, "dockerd", 'S', 100, 2000));
    pf::ProcessEvent thread = event(Kind::fork, 100, 100);
    thread.pid = 101;
    script->steps.push_back({{event(Kind::fork, 300, 100), event(Kind::exec, 300), thread}});
    const auto &t = tracker->current();
    EXPECT_EQ(tracker->counters().scans, 1u) << "events, not a scan";
    ASSERT_NE(t.find(300), nullptr);
    EXPECT_EQ(t.find(300)->name, "dockerd");
    EXPECT_EQ(t.find(101), nullptr) << "a thread is no process";
    expect_same_as_scan(t, fx.root());

    // comm change of the process; a comm change of one of its threads does nothing.
    fx.write("200/stat", tftest::ProcFixture::stat_line(200, "renamed", 'S', 100, 1000));
    script->steps.push_back({{event(Kind::comm, 200, 0, "renamed")}});
    EXPECT_EQ(tracker->current().find(200)->name, "renamed");

    // 100 exits: its children are re-parented to 1 without events of their own.
    remove(100);
    fx.add_process(200, 1, "renamed");
    fx.add_process(300, 1, "dockerd", 'S', 2000);
    script->steps.push_back({{event(Kind::exit, 100)}});
    const auto &after = tracker->current();
    EXPECT_EQ(after.find(100), nullptr);
    EXPECT_EQ(after.find(300)->ppid, 1);
    expect_same_as_scan(after, fx.root());
    EXPECT_EQ(tracker->counters().scans, 1u);

    // An exit that leaves a zombie: gone, as a scan would skip it.
    fx.add_process(300, 1, "dockerd", 'Z', 2000);
    script->steps.push_back({{event(Kind::exit, 300)}});
    EXPECT_EQ(tracker->current().find(300), nullptr);
    expect_same_as_scan(tracker->current(), fx.root());
}

TEST_F(Tracked, ShortLivedProcessesLeaveNothing) {
    tracker->current();
    // Forked and gone before the table looks: nothing to read, nothing kept.
    std::vector<pf::ProcessEvent> burst;
    for (int pid = 1000; pid < 1100; ++pid) {
        burst.push_back(event(Kind::fork, pid, 100));
        burst.push_back(event(Kind::exec, pid));
        burst.push_back(event(Kind::exit, pid));
    }
    script->steps.push_back({burst});
    EXPECT_EQ(tracker->current().size(), 3u);
    EXPECT_EQ(tracker->counters().scans, 1u);
    EXPECT_EQ(tracker->counters().events, 300u);
}

TEST_F(Tracked, PidReuseIsANewProcess) {
    tracker->current();
    // 200 exits and its PID goes to a new process with another start time
    // and parent before the table looks.
    remove(200);
    fx.add_process(200, 1, "dockerd", 'S', 9999);
    script->steps.push_back({{event(Kind::exit, 200), event(Kind::fork, 200, 1), event(Kind::exec, 200)}});
    const auto &t = tracker->current();
    ASSERT_NE(t.find(200), nullptr);
    EXPECT_EQ(t.find(200)->starttime, 9999u);
    EXPECT_EQ(t.find(200)->name, "dockerd");
    EXPECT_EQ(t.find(200)->ppid, 1);
    EXPECT_TRUE(t.find(100)->children.empty()) << "the old parent lost it";
    expect_same_as_scan(t, fx.root());
}

TEST_F(Tracked, LostEventsRescan) {
    tracker->current();
    // A change whose events were lost (ENOBUFS): only a scan can know.
    fx.add_process(400, 1, "crio", 'S', 3000);
    remove(200);
    script->steps.push_back({{}, true});
    const auto &t = tracker->current();
    EXPECT_EQ(tracker->counters().scans, 2u);
    EXPECT_NE(t.find(400), nullptr);
    EXPECT_EQ(t.find(200), nullptr);
    expect_same_as_scan(t, fx.root());
    // Events after the rescan are applied again as usual.
    fx.add_process(401, 1, "x", 'S', 3001);
    script->steps.push_back({{event(Kind::fork, 401, 1)}});
    EXPECT_NE(tracker->current().find(401), nullptr);
    EXPECT_EQ(tracker->counters().scans, 2u);
}

TEST_F(Tracked, WithoutEventsEveryCallScans) {
    pf::ProcessTracker scanning(fx.root(), nullptr);
    EXPECT_FALSE(scanning.incremental());
    EXPECT_EQ(scanning.current().size(), 3u);
    fx.add_process(500, 1, "new");
    EXPECT_EQ(scanning.current().size(), 4u);
    EXPECT_EQ(scanning.counters().scans, 2u);
}

TEST(ProcessTableChanges, CursorTellsWhatChanged) {
    tftest::ProcFixture fx;
    fx.add_process(1, 0, "init");
    fx.add_process(2, 1, "a");
    auto table = pf::ProcessTable::scan(fx.root());
    auto start = table.cursor();
    EXPECT_EQ(table.changed_since(start), std::vector<int>{});
    fx.add_process(3, 1, "b");
    table.reread({3});
    auto middle = table.cursor();
    table.reread({2, 2});
    auto since_start = table.changed_since(start);
    ASSERT_TRUE(since_start);
    std::sort(since_start->begin(), since_start->end());
    EXPECT_EQ(*since_start, (std::vector<int>{2, 3}));
    EXPECT_EQ(table.changed_since(middle), std::vector<int>{2});
    // Another scan is another lineage: nothing is known about it.
    auto other = pf::ProcessTable::scan(fx.root());
    EXPECT_FALSE(other.changed_since(start));
    // A long history is cut: a reader too far behind looks at everything.
    for (int i = 0; i < 6000; ++i) table.reread({2});
    EXPECT_FALSE(table.changed_since(start));
    EXPECT_TRUE(table.changed_since(table.cursor()));
}

TEST(ProcessEventsTouched, ThreadsAndChildren) {
    auto table = pf::ProcessTable::from(
        {tftest::proc(1, 0, "init"), tftest::proc(10, 1, "p"), tftest::proc(11, 10, "c1"), tftest::proc(12, 10, "c2")});
    pf::ProcessEvent thread_exit = event(Kind::exit, 10);
    thread_exit.pid = 13;
    auto pids = pf::touched_by({thread_exit, event(Kind::exit, 10), event(Kind::other, 11)}, table);
    std::sort(pids.begin(), pids.end());
    EXPECT_EQ(pids, (std::vector<int>{10, 11, 12}));
}

} // namespace
