// SPDX-License-Identifier: Apache-2.0
// Stacking engines into containers on fixture process tables.
#include <gtest/gtest.h>

#include "hierarchy/hierarchy.hpp"
#include "procfs_fixture.hpp"

namespace {

namespace tf = turtlefinder;
using tf::hierarchy::ContainerNode;
using tf::hierarchy::EngineNode;
using tf::procfs::Process;
using tf::procfs::ProcessTable;

using tftest::proc;

// host: systemd(1) ─ containerd(10) ─ shim(20) ─ init of "outer"(21) ─ dockerd(22)
//                                               └ inner shim(30) ─ "inner" init(31) ─ containerd(32)
//                                                                    └ shim(40) ─ "deep" init(41)
//       dockerd(11) (a host sibling of containerd)
ProcessTable three_levels() {
    return ProcessTable::from({proc(1, 0, "systemd"), proc(10, 1, "containerd"), proc(11, 1, "dockerd"),
                               proc(20, 1, "containerd-shim"), proc(21, 20, "sh"), proc(22, 21, "dockerd"),
                               proc(30, 22, "containerd-shim"), proc(31, 30, "sh"), proc(32, 31, "containerd"),
                               proc(40, 32, "containerd-shim"), proc(41, 40, "sleep")});
}

TEST(Stacking, ThreeLevelsGivePrefixesOutermostFirst) {
    auto table = three_levels();
    std::vector<EngineNode> engines{{10}, {11}, {22}, {32}};
    std::vector<ContainerNode> containers{{0, "outer", 21}, {2, "inner", 31}, {3, "deep", 41}};
    auto p = tf::hierarchy::stack(table, engines, containers);
    EXPECT_EQ(p.prefix, (std::vector<std::string>{"", "", "outer", "outer/inner"}));
    EXPECT_FALSE(p.parent[0]);
    EXPECT_FALSE(p.parent[1]) << "host siblings must not nest into each other";
    ASSERT_TRUE(p.parent[2]);
    EXPECT_EQ(*p.parent[2], 0u);
    ASSERT_TRUE(p.parent[3]);
    EXPECT_EQ(*p.parent[3], 2u);
    EXPECT_EQ(*p.container_of[3], 1u);
}

TEST(Stacking, EngineThatIsTheContainersInit) {
    // KinD-style: the engine is PID 1 of its container.
    auto table = ProcessTable::from(
        {proc(1, 0, "init"), proc(5, 1, "dockerd"), proc(6, 1, "containerd-shim"), proc(7, 6, "containerd")});
    auto p = tf::hierarchy::stack(table, {{5}, {7}}, {{0, "kind-control-plane", 7}});
    EXPECT_EQ(p.prefix[1], "kind-control-plane");
    EXPECT_EQ(*p.parent[1], 0u);
}

TEST(Stacking, EngineDirectlyUnderTheShim) {
    // devcontainer-style: the engine is a sibling of the init, child of the shim.
    auto table = ProcessTable::from({proc(1, 0, "init"), proc(5, 1, "dockerd"), proc(6, 1, "containerd-shim"),
                                     proc(7, 6, "sleep"), proc(8, 6, "dockerd")});
    auto p = tf::hierarchy::stack(table, {{5}, {8}}, {{0, "dev", 7}});
    EXPECT_EQ(p.prefix[1], "dev");
}

TEST(Stacking, SiblingEnginesInOneContainerShareThePrefix) {
    // docker-in-docker: dockerd and the containerd it starts, in one container.
    auto table = ProcessTable::from({proc(1, 0, "init"), proc(5, 1, "dockerd"), proc(6, 1, "shim"),
                                     proc(7, 6, "dockerd"), proc(8, 7, "containerd")});
    auto p = tf::hierarchy::stack(table, {{5}, {7}, {8}}, {{0, "dind", 7}});
    EXPECT_EQ(p.prefix[1], "dind");
    EXPECT_EQ(p.prefix[2], "dind");
    EXPECT_EQ(*p.parent[2], 0u);
}

TEST(Stacking, VanishedProcessesAndUnknownPidsStayOnTheHost) {
    // The engine's parent vanished from the scan; a container has no PID.
    auto table = ProcessTable::from({proc(1, 0, "init"), proc(5, 1, "dockerd"), proc(9, 99, "containerd")});
    auto p = tf::hierarchy::stack(table, {{5}, {9}, {12345}}, {{0, "nopid", 0}, {0, "gone", 4242}});
    EXPECT_EQ(p.prefix, (std::vector<std::string>{"", "", ""}));
}

TEST(Stacking, NeverInsideItsOwnContainerAndNoCycles) {
    // Two engines each "inside" the other's container: only possible with
    // stale data; neither may loop.
    auto table = ProcessTable::from({proc(1, 0, "init"), proc(5, 1, "a"), proc(6, 5, "b"), proc(7, 6, "x")});
    auto p = tf::hierarchy::stack(table, {{5}, {6}}, {{0, "own", 5}, {1, "b-in-a", 5}, {0, "a-in-b", 6}});
    // engine 0's own container is skipped; it lands in engine 1's container,
    // engine 1 in engine 0's: a cycle, which is broken.
    for (std::size_t e = 0; e < 2; ++e) EXPECT_LT(p.prefix[e].size(), 100u);
    EXPECT_FALSE(p.parent[0] && p.parent[1] && *p.parent[0] == 1u && *p.parent[1] == 0u);
}

} // namespace
