// SPDX-License-Identifier: Apache-2.0
// procfs against fixture /proc trees: every oddity a real /proc can show.
#include "procfs/procfs.hpp"

#include "discovery/socket_handle.hpp"
#include "procfs_fixture.hpp"
#include "testing.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace turtlefinder::procfs;
using tftest::ProcFixture;

// ---- stat parsing -----------------------------------------------------------

TEST(ProcfsStat, ParsesFullKernelLine) {
    auto process = parse_stat(ProcFixture::stat_line(4242, "containerd", 'S', 17, 987654321));
    ASSERT_TRUE(process);
    EXPECT_EQ(process->pid, 4242);
    EXPECT_EQ(process->ppid, 17);
    EXPECT_EQ(process->state, 'S');
    EXPECT_EQ(process->name, "containerd");
    EXPECT_EQ(process->starttime, 987654321u);
    EXPECT_TRUE(process->children.empty());
}

TEST(ProcfsStat, OddCommNames) {
    // comm is everything between the first '(' and the LAST ')'.
    for (std::string name : {"tmux: server", "a) (b", "x)", ")", ") S 1 2 (", "(", "((()))", "", "with  two  spaces",
                             "kworker/0:1H-kblockd"}) {
        SCOPED_TRACE("name: '" + name + "'");
        auto process = parse_stat(ProcFixture::stat_line(7, name, 'R', 3, 55));
        ASSERT_TRUE(process);
        EXPECT_EQ(process->name, name);
        EXPECT_EQ(process->pid, 7);
        EXPECT_EQ(process->ppid, 3);
        EXPECT_EQ(process->state, 'R');
        EXPECT_EQ(process->starttime, 55u);
    }
}

TEST(ProcfsStat, MinimalLineHasNoStarttime) {
    auto process = parse_stat("12 (sh) S 1");
    ASSERT_TRUE(process);
    EXPECT_EQ(process->pid, 12);
    EXPECT_EQ(process->ppid, 1);
    EXPECT_EQ(process->starttime, 0u);
}

TEST(ProcfsStat, RejectsGarbage) {
    for (std::string bad : {"", "abc", "12 (x", "12 x) S 1", "(x) S 1", "-1 (x) S 1", "0 (x) S 1", "12 (x) SS 1",
                            "12 (x) S", "12 (x) S abc", "12 (x) S -3", "a12 (x) S 1",
                            "12 (x) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 "
                            "1 1 1 1 notanumber 5",
                            ")12 (x S 1", "99999999999 (x) S 1"}) {
        SCOPED_TRACE("line: '" + bad + "'");
        EXPECT_FALSE(parse_stat(bad));
    }
}

// ---- process table ----------------------------------------------------------

TEST(ProcfsScan, FixtureTree) {
    tftest::LeakGuard leaks;
    ProcFixture proc;
    proc.add_process(1, 0, "init");
    proc.add_process(2, 0, "kthreadd");
    proc.add_process(10, 1, "dockerd", 'S', 5000);
    proc.add_process(11, 10, "containerd", 'S', 5001);
    proc.add_process(12, 10, "docker proxy)", 'R', 5002);
    proc.add_process(13, 10, "containerd-shim", 'Z'); // zombie: skipped
    proc.mkdirs("14"); // vanished: dir without stat
    proc.write("15/stat", ""); // vanished while read
    proc.write("16/stat", "garbage"); // unparseable: skipped
    proc.add_process(20, 99, "orphan"); // parent not in table
    proc.add_process(21, 12, "(sd-pam)", 'D');
    proc.symlink("11", "self");
    proc.mkdirs("net");
    proc.mkdirs("15abc");
    proc.mkdirs("0");
    proc.write("uptime", "1.0 1.0\n");

    auto table = ProcessTable::scan(proc.root());
    EXPECT_EQ(table.root(), proc.root());
    EXPECT_EQ(table.size(), 7u);
    for (int pid : {1, 2, 10, 11, 12, 20, 21}) EXPECT_NE(table.find(pid), nullptr) << pid;
    for (int pid : {0, 13, 14, 15, 16, 99}) EXPECT_EQ(table.find(pid), nullptr) << pid;

    const Process *dockerd = table.find(10);
    ASSERT_NE(dockerd, nullptr);
    EXPECT_EQ(dockerd->name, "dockerd");
    EXPECT_EQ(dockerd->ppid, 1);
    EXPECT_EQ(dockerd->starttime, 5000u);
    EXPECT_EQ(dockerd->children, (std::vector<int>{11, 12}));
    EXPECT_EQ(table.find(1)->children, (std::vector<int>{10}));
    EXPECT_TRUE(table.find(2)->children.empty());
    EXPECT_EQ(table.find(12)->name, "docker proxy)");
    EXPECT_EQ(table.find(12)->children, (std::vector<int>{21}));
    EXPECT_EQ(table.find(21)->name, "(sd-pam)");
    EXPECT_EQ(table.find(21)->state, 'D');
    EXPECT_EQ(table.find(20)->ppid, 99);

    EXPECT_TRUE(table.is_self_or_ancestor(1, 21));
    EXPECT_TRUE(table.is_self_or_ancestor(10, 21));
    EXPECT_TRUE(table.is_self_or_ancestor(21, 21));
    EXPECT_FALSE(table.is_self_or_ancestor(21, 10));
    EXPECT_FALSE(table.is_self_or_ancestor(11, 21));
    EXPECT_FALSE(table.is_self_or_ancestor(2, 21));
    EXPECT_FALSE(table.is_self_or_ancestor(1, 20));
    EXPECT_FALSE(table.is_self_or_ancestor(1, 4711));
    leaks.check();
}

TEST(ProcfsScan, MissingRootGivesEmptyTable) {
    tftest::LeakGuard leaks;
    ProcFixture proc;
    auto table = ProcessTable::scan(proc.path("nonexistent"));
    EXPECT_EQ(table.size(), 0u);
    auto from_file = ProcessTable::scan(proc.path("uptime"));
    EXPECT_EQ(from_file.size(), 0u);
    leaks.check();
}

TEST(ProcfsScan, ManyProcesses) {
    // More entries than one getdents64 buffer (16 KiB) holds: 600 six-digit
    // names take 32 bytes each.
    ProcFixture proc;
    constexpr int first = 100000;
    constexpr int count = 600;
    for (int pid = first; pid < first + count; ++pid) proc.add_process(pid, 1, "p" + std::to_string(pid));
    proc.add_process(1, 0, "init");
    auto table = ProcessTable::scan(proc.root());
    EXPECT_EQ(table.size(), static_cast<std::size_t>(count + 1));
    ASSERT_NE(table.find(1), nullptr);
    const auto &children = table.find(1)->children;
    EXPECT_EQ(children.size(), static_cast<std::size_t>(count));
    EXPECT_TRUE(std::is_sorted(children.begin(), children.end()));
    ASSERT_NE(table.find(first + 377), nullptr);
    EXPECT_EQ(table.find(first + 377)->name, "p" + std::to_string(first + 377));
}

TEST(ProcfsTable, FromDerivesChildrenAndSurvivesCycles) {
    std::vector<Process> processes(4);
    processes[0] = {.pid = 5, .ppid = 6, .state = 'S', .starttime = 1, .name = "a", .children = {99}};
    processes[1] = {.pid = 6, .ppid = 5, .state = 'S', .starttime = 2, .name = "b", .children = {}};
    processes[2] = {.pid = 7, .ppid = 7, .state = 'S', .starttime = 3, .name = "self", .children = {}};
    processes[3] = {.pid = 8, .ppid = 6, .state = 'S', .starttime = 4, .name = "c", .children = {}};
    auto table = ProcessTable::from(processes, "/fixture");
    EXPECT_EQ(table.root(), "/fixture");
    EXPECT_EQ(table.find(5)->children, (std::vector<int>{6})); // the given {99} is not trusted
    EXPECT_EQ(table.find(6)->children, (std::vector<int>{5, 8}));
    EXPECT_TRUE(table.find(7)->children.empty());
    // PPID cycles end the walk instead of spinning.
    EXPECT_FALSE(table.is_self_or_ancestor(1, 5));
    EXPECT_FALSE(table.is_self_or_ancestor(1, 7));
    EXPECT_TRUE(table.is_self_or_ancestor(5, 8));
}

TEST(ProcfsReadProcess, SingleProcess) {
    tftest::LeakGuard leaks;
    ProcFixture proc;
    proc.add_process(30, 1, "podman", 'S', 77);
    proc.add_process(31, 30, "zombie", 'Z');
    proc.mkdirs("32");
    auto podman = read_process(proc.root(), 30);
    ASSERT_TRUE(podman);
    EXPECT_EQ(podman->name, "podman");
    EXPECT_EQ(podman->starttime, 77u);
    auto zombie = read_process(proc.root(), 31);
    ASSERT_TRUE(zombie);
    EXPECT_EQ(zombie->state, 'Z');
    EXPECT_FALSE(read_process(proc.root(), 32));
    EXPECT_FALSE(read_process(proc.root(), 33));
    EXPECT_FALSE(read_process(proc.root(), 0));
    EXPECT_FALSE(read_process(proc.root(), -1));
    leaks.check();
}

// ---- namespaces -------------------------------------------------------------

constexpr const char *status_head = "Name:\tdockerd\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t29535\nNgid:\t0\n";

TEST(ProcfsNspid, Levels) {
    auto status = [](const std::string &nspid_line) {
        return std::string(status_head) + "NStgid:\t9 8 7\n" + nspid_line + "NSpgid:\t1 1 1\n" +
               "NSsid:\t1\nVmPeak:\t  123 kB\n";
    };
    EXPECT_EQ(parse_nspid(status("NSpid:\t4242\n")), (std::vector<int>{4242}));
    EXPECT_EQ(parse_nspid(status("NSpid:\t29535\t84\n")), (std::vector<int>{29535, 84}));
    EXPECT_EQ(parse_nspid(status("NSpid:\t29535\t84\t1\n")), (std::vector<int>{29535, 84, 1}));
    // No NSpid line (old kernel); NSpgid and NStgid must not be mistaken for it.
    EXPECT_FALSE(parse_nspid(status("")));
    EXPECT_FALSE(parse_nspid(status("NSpid:\n")));
    EXPECT_FALSE(parse_nspid(status("NSpid:\t12\tx\n")));
    EXPECT_FALSE(parse_nspid(status("NSpid:\t-4\n")));
    EXPECT_FALSE(parse_nspid(""));
    // Last line without a newline.
    EXPECT_EQ(parse_nspid("NSpid:\t5\t1"), (std::vector<int>{5, 1}));
}

// The owner of a process: the real UID, first of the Uid line's four.
TEST(ProcfsUid, RealUidOfTheUidLine) {
    auto status = [](const std::string &uid_line) {
        return std::string(status_head) + "PPid:\t1\nTracerPid:\t0\n" + uid_line + "Gid:\t0\t0\t0\t0\n";
    };
    EXPECT_EQ(parse_uid(status("Uid:\t1000\t1000\t1000\t1000\n")), 1000u);
    EXPECT_EQ(parse_uid(status("Uid:\t0\t0\t0\t0\n")), 0u);
    EXPECT_EQ(parse_uid(status("Uid:\t100999\t0\t0\t0\n")), 100999u); // real, not effective
    EXPECT_EQ(parse_uid(status("Uid:\t4294967294\t1\t1\t1\n")), 4294967294u);
    EXPECT_FALSE(parse_uid(status(""))); // no Uid line
    EXPECT_FALSE(parse_uid(status("Uid:\n")));
    EXPECT_FALSE(parse_uid(status("Uid:\t-1\t0\t0\t0\n")));
    EXPECT_FALSE(parse_uid(status("Uid:\tx\t0\t0\t0\n")));
    EXPECT_FALSE(parse_uid("Uid:\t5\t5\t5\t5\n")); // a line, but not one of a status file
    EXPECT_FALSE(parse_uid(""));
    // Last line without a newline.
    EXPECT_EQ(parse_uid("Name:\tx\nUid:\t7"), 7u);
}

TEST(ProcfsUid, FromFixture) {
    tftest::LeakGuard leaks;
    ProcFixture proc;
    proc.write("50/status", std::string(status_head) + "Uid:\t1000\t1000\t1000\t1000\n");
    proc.write("51/status", std::string(status_head));
    EXPECT_EQ(read_uid(proc.root(), 50), 1000u);
    EXPECT_FALSE(read_uid(proc.root(), 51));
    EXPECT_FALSE(read_uid(proc.root(), 52));
    EXPECT_FALSE(read_uid(proc.root(), 0));
    leaks.check();
}

TEST(ProcfsNspid, FromFixture) {
    tftest::LeakGuard leaks;
    ProcFixture proc;
    proc.write("40/status", std::string(status_head) + "NSpid:\t40\t12\t1\n");
    proc.write("41/status", std::string(status_head));
    EXPECT_EQ(read_nspid(proc.root(), 40), (std::vector<int>{40, 12, 1}));
    EXPECT_FALSE(read_nspid(proc.root(), 41));
    EXPECT_FALSE(read_nspid(proc.root(), 42));
    leaks.check();
}

TEST(ProcfsPidNamespace, FromLink) {
    tftest::LeakGuard leaks;
    ProcFixture proc;
    proc.symlink("pid:[4026531836]", "50/ns/pid");
    proc.symlink("net:[4026531840]", "51/ns/pid");
    proc.symlink("pid:[]", "52/ns/pid");
    proc.write("53/ns/pid", "pid:[1]");
    EXPECT_EQ(pid_namespace(proc.root(), 50), 4026531836u);
    EXPECT_FALSE(pid_namespace(proc.root(), 51));
    EXPECT_FALSE(pid_namespace(proc.root(), 52));
    EXPECT_FALSE(pid_namespace(proc.root(), 53)); // not a link
    EXPECT_FALSE(pid_namespace(proc.root(), 54));
    leaks.check();
}

// ---- sockets ----------------------------------------------------------------

TEST(ProcfsSockets, ParseSocketLink) {
    EXPECT_EQ(parse_socket_link("socket:[12345]"), 12345u);
    EXPECT_EQ(parse_socket_link("socket:[18446744073709551615]"), 18446744073709551615u);
    for (std::string bad : {"socket:[]", "socket:[12", "socket:12]", "pipe:[12]", "socket:[-1]", "socket:[1x]",
                            "socket:[18446744073709551616]", "", "socket:", "/run/docker.sock", "anon_inode:[eventfd]",
                            " socket:[1]", "socket:[1] "}) {
        EXPECT_FALSE(parse_socket_link(bad)) << bad;
    }
}

TEST(ProcfsSockets, FdLinks) {
    tftest::LeakGuard leaks;
    ProcFixture proc;
    proc.add_fd(60, 0, "/dev/null");
    proc.add_fd(60, 3, "socket:[500]");
    proc.add_fd(60, 4, "socket:[300]");
    proc.add_fd(60, 5, "pipe:[700]");
    proc.add_fd(60, 6, "socket:[500]"); // dup()ed: reported once
    proc.add_fd(60, 7, "anon_inode:[eventfd]");
    proc.add_fd(60, 8, "socket:[abc]");
    proc.add_fd(60, 9, "/run/my socket:[42]");
    proc.mkdirs("61/fd");
    proc.write("62/stat", ProcFixture::stat_line(62, "x", 'S', 1, 1)); // no fd dir
    EXPECT_EQ(socket_inodes(proc.root(), 60), (std::vector<std::uint64_t>{300, 500}));
    EXPECT_TRUE(socket_inodes(proc.root(), 61).empty());
    EXPECT_TRUE(socket_inodes(proc.root(), 62).empty());
    EXPECT_TRUE(socket_inodes(proc.root(), 63).empty());
    EXPECT_TRUE(socket_inodes(proc.root(), -1).empty());
    leaks.check();
}

// Written as the kernel does: "%pK: %08X %08X %08X %04X %02X %5lu" then " path".
constexpr const char *net_unix =
    "Num       RefCount Protocol Flags    Type St Inode Path\n"
    "0000000000000000: 00000002 00000000 00010000 0001 01    42 /run/containerd/containerd.sock\n"
    "0000000000000000: 00000002 00000000 00010000 0001 01 123456 /run/with space/eng ine.sock\n"
    "0000000000000000: 00000003 00000000 00000000 0001 03  1148 /run/connected.sock\n"
    "0000000000000000: 00000002 00000000 00010000 0001 01  2000 @/containerd-shim/abc.sock\n"
    "0000000000000000: 00000002 00000000 00010000 0001 01  2005 @\n"
    "0000000000000000: 00000002 00000000 00000000 0002 01  2001 /run/dgram.sock\n"
    "0000000000000000: 00000002 00000000 00010000 0005 01  2002 /run/seqpacket.sock\n"
    "0000000000000000: 00000002 00000000 00010000 0001 01  2003\n"
    "0000000000000000: 00000002 00000000 00010000 0001 01    42 /run/containerd/containerd.sock\n"
    "0000000000000000: 00000002 00000000 00000000 0001 01  2006 /run/not-yet-listening.sock\n"
    "garbage line\n"
    "0000000000000000: 00000002 00000000 zz010000 0001 01  2007 /run/bad-flags.sock\n"
    "0000000000000000: 00000002 00000000 00010000 0001 01 2008x /run/bad-inode.sock\n"
    "\n"
    "0000000000000000: 00000002 00000000 00010000 0001 01 99999999999 /run/last.sock";

TEST(ProcfsNetUnix, Parse) {
    auto sockets = parse_net_unix(net_unix);
    ASSERT_EQ(sockets.size(), 3u);
    EXPECT_EQ(sockets[0].inode, 42u);
    EXPECT_EQ(sockets[0].path, "/run/containerd/containerd.sock");
    EXPECT_EQ(sockets[1].inode, 123456u);
    EXPECT_EQ(sockets[1].path, "/run/with space/eng ine.sock");
    EXPECT_EQ(sockets[2].inode, 99999999999u);
    EXPECT_EQ(sockets[2].path, "/run/last.sock");
}

TEST(ProcfsNetUnix, HeaderOnlyAndEmpty) {
    EXPECT_TRUE(parse_net_unix("").empty());
    EXPECT_TRUE(parse_net_unix("Num       RefCount Protocol Flags    Type St Inode Path\n").empty());
    // A data-looking first line is the header and is never taken.
    EXPECT_TRUE(parse_net_unix("0000000000000000: 00000002 00000000 00010000 0001 01 5 /run/x.sock\n").empty());
}

TEST(ProcfsNetUnix, FromFixture) {
    tftest::LeakGuard leaks;
    ProcFixture proc;
    proc.write("70/net/unix", net_unix);
    auto sockets = listening_unix_sockets(proc.root(), 70);
    ASSERT_EQ(sockets.size(), 3u);
    EXPECT_EQ(sockets[1].path, "/run/with space/eng ine.sock");
    EXPECT_TRUE(listening_unix_sockets(proc.root(), 71).empty());
    EXPECT_TRUE(listening_unix_sockets(proc.root(), 0).empty());
    leaks.check();
}

// ---- resolve_in_root --------------------------------------------------------

class ProcfsResolve : public ::testing::Test {
protected:
    void SetUp() override {
        fs_.mkdirs("root/run/containerd");
        fs_.write("root/run/containerd/containerd.sock", "");
        fs_.write("root/etc/passwd", "inner\n");
        fs_.mkdirs("root/var");
        fs_.symlink("../run", "root/var/run");
        fs_.symlink("/run", "root/var/run-abs");
        fs_.symlink("sub/dir", "root/rel");
        fs_.mkdirs("root/sub/dir");
        fs_.symlink("/run/containerd", "root/dirlink");
        fs_.write("outside/secret/flag", "outer\n");
        root_ = fs_.path("root");
    }
    // Every answer must name something below the root.
    std::optional<std::string> resolve(std::string_view path) const {
        auto result = resolve_in_root(root_, path);
        if (result) {
            EXPECT_EQ(result->rfind(root_ + "/", 0), 0u) << *result << " escaped " << root_;
            EXPECT_EQ(result->find("/../"), std::string::npos) << *result;
        }
        return result;
    }
    std::string in_root(std::string_view path) const { return root_ + std::string(path); }

    ProcFixture fs_;
    std::string root_;
};

TEST_F(ProcfsResolve, PlainPaths) {
    tftest::LeakGuard leaks;
    EXPECT_EQ(resolve("/run/containerd/containerd.sock"), in_root("/run/containerd/containerd.sock"));
    EXPECT_EQ(resolve("//run///containerd/./containerd.sock"), in_root("/run/containerd/containerd.sock"));
    EXPECT_EQ(resolve("/"), in_root("/"));
    EXPECT_EQ(resolve("/run/"), in_root("/run"));
    EXPECT_EQ(resolve_in_root(root_ + "/", "/etc/passwd"), in_root("/etc/passwd"));
    // A socket not bound yet: the last name may be missing, nothing before it.
    EXPECT_EQ(resolve("/run/new.sock"), in_root("/run/new.sock"));
    EXPECT_FALSE(resolve("/nonexistent/x.sock"));
    // A file in the middle is not a directory.
    EXPECT_FALSE(resolve("/etc/passwd/x"));
    EXPECT_FALSE(resolve("/etc/passwd/.."));
    // Only absolute paths have a meaning inside a root.
    EXPECT_FALSE(resolve("run/containerd/containerd.sock"));
    EXPECT_FALSE(resolve(""));
    EXPECT_FALSE(resolve(std::string_view("/etc/passwd\0/x", 14)));
    leaks.check();
}

TEST_F(ProcfsResolve, SymlinksInsideTheRoot) {
    EXPECT_EQ(resolve("/var/run/containerd/containerd.sock"), in_root("/run/containerd/containerd.sock"));
    EXPECT_EQ(resolve("/var/run-abs/containerd/containerd.sock"), in_root("/run/containerd/containerd.sock"));
    EXPECT_EQ(resolve("/rel/x.sock"), in_root("/sub/dir/x.sock"));
    // ".." after a link applies to the link's target, as in the kernel.
    EXPECT_EQ(resolve("/dirlink/../containerd/containerd.sock"), in_root("/run/containerd/containerd.sock"));
    EXPECT_EQ(resolve("/var/run"), in_root("/run"));
}

TEST_F(ProcfsResolve, HostileEscapes) {
    tftest::LeakGuard leaks;
    fs_.symlink("../../../../../../../../etc/passwd", "root/up");
    fs_.symlink("/etc/passwd", "root/abs");
    fs_.symlink("/proc", "root/procl");
    fs_.symlink("/etc", "root/etcl");
    fs_.symlink("/proc/self/root/etc", "root/selfroot");
    fs_.symlink(fs_.path("outside/secret"), "root/out");
    fs_.symlink("../outside/secret", "root/out-rel");
    fs_.symlink("../outside", "root/out-dir");
    fs_.symlink("/nowhere", "root/dangling");

    EXPECT_EQ(resolve("/up"), in_root("/etc/passwd"));
    EXPECT_EQ(resolve("/abs"), in_root("/etc/passwd"));
    EXPECT_EQ(resolve("/../../../etc/passwd"), in_root("/etc/passwd"));
    EXPECT_EQ(resolve("/run/../../../../etc/passwd"), in_root("/etc/passwd"));
    EXPECT_EQ(resolve("/etcl/passwd"), in_root("/etc/passwd"));
    EXPECT_EQ(resolve("/etcl/shadow"), in_root("/etc/shadow"));
    // The host's /proc is not inside the root: the walk ends, never outside.
    EXPECT_EQ(resolve("/procl"), in_root("/proc"));
    EXPECT_FALSE(resolve("/procl/1/root/etc/shadow"));
    EXPECT_FALSE(resolve("/selfroot/passwd"));
    // Links to the real outside directory are re-rooted, never followed.
    EXPECT_FALSE(resolve("/out/flag"));
    EXPECT_FALSE(resolve("/out-rel/flag"));
    EXPECT_FALSE(resolve("/out-rel"));
    EXPECT_EQ(resolve("/out-dir"), in_root("/outside"));
    EXPECT_EQ(resolve("/dangling"), in_root("/nowhere"));
    leaks.check();
}

TEST_F(ProcfsResolve, LoopsAndLinkLimit) {
    fs_.symlink("loop_b", "root/loop_a");
    fs_.symlink("/loop_a", "root/loop_b");
    fs_.symlink("self", "root/self");
    fs_.symlink(".", "root/dot");
    fs_.symlink("../../../x/y", "root/run/containerd/up");
    fs_.symlink("/run/containerd/up", "root/x");
    EXPECT_FALSE(resolve("/loop_a"));
    EXPECT_FALSE(resolve("/loop_b/x.sock"));
    EXPECT_FALSE(resolve("/self"));
    EXPECT_FALSE(resolve("/x/y"));

    // A chain of exactly 40 links resolves; 41 are refused (Linux's MAXSYMLINKS).
    for (int i = 1; i < 40; ++i) fs_.symlink("c" + std::to_string(i + 1), "root/c" + std::to_string(i));
    fs_.symlink("/etc", "root/c40");
    fs_.symlink("c1", "root/c0");
    EXPECT_EQ(resolve("/c1/passwd"), in_root("/etc/passwd"));
    EXPECT_FALSE(resolve("/c0/passwd"));

    // The limit counts links over the whole walk, not per component.
    std::string forty = "/";
    for (int i = 0; i < 40; ++i) forty += "dot/";
    EXPECT_EQ(resolve(forty + "etc"), in_root("/etc"));
    EXPECT_FALSE(resolve(forty + "dot/etc"));
}

// ---- Root: opening inside a root, by the kernel and by the walker ----------

// The walker's cases again, through Root::open with each resolver: a handle
// names a file below the root or nothing, never a file outside it.
class ProcfsRootOpen : public ProcfsResolve, public ::testing::WithParamInterface<Resolver> {
protected:
    // The path inside the root of what `path` opens, or nullopt.
    std::optional<std::string> open_in(std::string_view path) const {
        Root root(root_);
        EXPECT_TRUE(root.ok());
        auto handle = root.open(path, GetParam());
        if (!handle) return std::nullopt;
        auto shown = root.shown_path(*handle);
        EXPECT_TRUE(shown) << path;
        if (!shown) return "(unnamed)";
        EXPECT_EQ(shown->rfind(root_ + "/", 0), 0u) << *shown << " escaped " << root_;
        return shown->substr(root_.size());
    }
    bool walker() const { return GetParam() == Resolver::walker; }
};

TEST_P(ProcfsRootOpen, PlainPaths) {
    tftest::LeakGuard leaks;
    EXPECT_EQ(open_in("/run/containerd/containerd.sock"), "/run/containerd/containerd.sock");
    EXPECT_EQ(open_in("//run///containerd/./containerd.sock"), "/run/containerd/containerd.sock");
    EXPECT_EQ(open_in("/"), "/");
    EXPECT_EQ(open_in("/run/"), "/run");
    EXPECT_FALSE(open_in("/run/new.sock")); // a handle needs a file
    EXPECT_FALSE(open_in("/nonexistent/x.sock"));
    EXPECT_FALSE(open_in("/etc/passwd/x"));
    EXPECT_FALSE(open_in("/etc/passwd/.."));
    EXPECT_FALSE(open_in("run/containerd/containerd.sock"));
    EXPECT_FALSE(open_in(""));
    EXPECT_FALSE(open_in(std::string_view("/etc/passwd\0/x", 14)));
    leaks.check();
}

TEST_P(ProcfsRootOpen, SymlinksInsideTheRoot) {
    EXPECT_EQ(open_in("/var/run/containerd/containerd.sock"), "/run/containerd/containerd.sock");
    EXPECT_EQ(open_in("/var/run-abs/containerd/containerd.sock"), "/run/containerd/containerd.sock");
    EXPECT_EQ(open_in("/dirlink/../containerd/containerd.sock"), "/run/containerd/containerd.sock");
    // The last component is not followed: the handle is the link itself
    // (the walker follows it, inside the root).
    EXPECT_EQ(open_in("/var/run"), walker() ? "/run" : "/var/run");
}

TEST_P(ProcfsRootOpen, HostileEscapes) {
    tftest::LeakGuard leaks;
    fs_.symlink("../../../../../../../../etc", "root/up");
    fs_.symlink("/etc", "root/etcl");
    fs_.symlink("/proc", "root/procl");
    fs_.symlink("/proc/self/root/etc", "root/selfroot");
    fs_.symlink(fs_.path("outside/secret"), "root/out");
    fs_.symlink("../outside/secret", "root/out-rel");
    fs_.symlink("../outside", "root/out-dir");
    fs_.symlink("/nowhere", "root/dangling");

    EXPECT_EQ(open_in("/up/passwd"), "/etc/passwd");
    EXPECT_EQ(open_in("/../../../etc/passwd"), "/etc/passwd");
    EXPECT_EQ(open_in("/run/../../../../etc/passwd"), "/etc/passwd");
    EXPECT_EQ(open_in("/etcl/passwd"), "/etc/passwd");
    EXPECT_FALSE(open_in("/etcl/shadow"));
    EXPECT_FALSE(open_in("/procl/1/root/etc/shadow"));
    EXPECT_FALSE(open_in("/procl/self/root/etc/passwd"));
    EXPECT_FALSE(open_in("/selfroot/passwd"));
    EXPECT_FALSE(open_in("/out/flag"));
    EXPECT_FALSE(open_in("/out-rel/flag"));
    EXPECT_FALSE(open_in("/out-dir/secret/flag"));
    EXPECT_FALSE(open_in("/dangling/x"));
    leaks.check();
}

TEST_P(ProcfsRootOpen, LoopsAndLinkLimit) {
    fs_.symlink("loop_b", "root/loop_a");
    fs_.symlink("/loop_a", "root/loop_b");
    fs_.symlink("self", "root/self");
    fs_.symlink(".", "root/dot");
    EXPECT_FALSE(open_in("/loop_a/x.sock"));
    EXPECT_FALSE(open_in("/loop_b/x.sock"));
    EXPECT_FALSE(open_in("/self/x"));

    for (int i = 1; i < 40; ++i) fs_.symlink("c" + std::to_string(i + 1), "root/c" + std::to_string(i));
    fs_.symlink("/etc", "root/c40");
    fs_.symlink("c1", "root/c0");
    EXPECT_EQ(open_in("/c1/passwd"), "/etc/passwd");
    EXPECT_FALSE(open_in("/c0/passwd"));
    std::string forty = "/";
    for (int i = 0; i < 40; ++i) forty += "dot/";
    EXPECT_EQ(open_in(forty + "etc/passwd"), "/etc/passwd");
    EXPECT_FALSE(open_in(forty + "dot/etc/passwd"));
}

// Magic links exist only in a real procfs: from the host's root, the kernel
// resolver refuses them where the walker would read their text.
TEST(ProcfsRootOpenKernel, RefusesMagicLinks) {
    Root host("/");
    ASSERT_TRUE(host.ok());
    EXPECT_TRUE(host.open("/proc/self/status"));
    EXPECT_FALSE(host.open("/proc/self/root/proc/self/status"));
    EXPECT_FALSE(host.open("/proc/self/cwd/x"));
}

// A unix socket bound in a fixture root, for the socket handles.
class ProcfsRootSocket : public ProcfsRootOpen {
protected:
    void SetUp() override {
        ProcfsRootOpen::SetUp();
        fs_.mkdirs("root/run/eng");
        fs_.mkdirs("outside/trap");
        inside_ = listen_at(fs_.path("root/run/eng/e.sock"));
        trap_ = listen_at(fs_.path("outside/trap/e.sock"));
    }
    void TearDown() override {
        ::close(inside_);
        ::close(trap_);
    }
    static int listen_at(const std::string &path) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (fd < 0 || path.size() >= sizeof addr.sun_path) throw std::runtime_error("cannot listen at " + path);
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::listen(fd, 8) != 0)
            throw std::runtime_error("cannot listen at " + path);
        return fd;
    }
    static bool connects(const std::string &path) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        bool ok = ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
        ::close(fd);
        return ok;
    }
    static int pending(int listener) {
        int n = 0;
        for (int c; (c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) >= 0; ++n) ::close(c);
        return n;
    }
    int inside_ = -1, trap_ = -1;
};

TEST_P(ProcfsRootSocket, HandleKeepsReachingTheSocketItOpened) {
    tftest::LeakGuard leaks;
    {
        Root root(root_);
        EXPECT_FALSE(root.open_socket("/etc/passwd", GetParam())) << "a regular file is no socket";
        EXPECT_FALSE(root.open_socket("/run", GetParam()));
        auto handle = root.open_socket("/run/eng/e.sock", GetParam());
        ASSERT_TRUE(handle);
        EXPECT_EQ(root.shown_path(*handle), root_ + "/run/eng/e.sock");
        const std::string through = "/proc/self/fd/" + std::to_string(handle->get());
        EXPECT_EQ(::fcntl(handle->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

        // The directory swapped for a link to the trap after the handle was made.
        ASSERT_EQ(::rename(fs_.path("root/run/eng").c_str(), fs_.path("root/run/eng.orig").c_str()), 0);
        fs_.symlink(fs_.path("outside/trap"), "root/run/eng");
        EXPECT_TRUE(connects(through));
        EXPECT_EQ(pending(inside_), 1);
        EXPECT_EQ(pending(trap_), 0);
        // A plain path would now follow the link out: the trap is armed.
        EXPECT_TRUE(connects(root_ + "/run/eng/e.sock"));
        EXPECT_EQ(pending(trap_), 1);
        // Resolving afresh stays inside the root, where nothing is.
        EXPECT_FALSE(root.open_socket("/run/eng/e.sock", GetParam()));
        // The socket file itself swapped for a link: refused, never followed.
        fs_.symlink(fs_.path("outside/trap/e.sock"), "root/run/swapped.sock");
        auto link = root.open_socket("/run/swapped.sock", GetParam());
        EXPECT_FALSE(link);
    }
    leaks.check();
}

// An engine that re-binds its socket (a new inode at the same path) is not
// followed through the handle of the old one: it is probed again instead.
TEST_P(ProcfsRootSocket, AReboundSocketIsNotFollowed) {
    tftest::LeakGuard leaks;
    {
        Root root(root_);
        auto fd = root.open_socket("/run/eng/e.sock", GetParam());
        ASSERT_TRUE(fd);
        turtlefinder::discovery::SocketHandle handle(std::move(*fd));
        EXPECT_TRUE(handle.served());
        EXPECT_EQ(pending(inside_), 1);
        ::close(inside_);
        ::unlink(fs_.path("root/run/eng/e.sock").c_str());
        inside_ = listen_at(fs_.path("root/run/eng/e.sock"));
        EXPECT_FALSE(handle.served());
        EXPECT_FALSE(connects(handle.connect_path()));
        EXPECT_EQ(pending(inside_), 0);
    }
    leaks.check();
}

INSTANTIATE_TEST_SUITE_P(Resolvers, ProcfsRootOpen, ::testing::Values(Resolver::kernel, Resolver::walker),
                         [](const auto &info) { return info.param == Resolver::kernel ? "kernel" : "walker"; });
INSTANTIATE_TEST_SUITE_P(Resolvers, ProcfsRootSocket, ::testing::Values(Resolver::kernel, Resolver::walker),
                         [](const auto &info) { return info.param == Resolver::kernel ? "kernel" : "walker"; });

} // namespace
