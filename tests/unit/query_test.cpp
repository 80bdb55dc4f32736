// SPDX-License-Identifier: Apache-2.0
// The query step keeps its finished containers between calls: a warm call
// derives nothing again, and every change of an input shows up in the very
// next call — a new view, a relisted but unchanged view, a host PID that
// vanished, an engine or a container's process moving in the process tree,
// engines coming and going.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "procfs/procfs.hpp"
#include "procfs_fixture.hpp"
#include "query/query.hpp"

namespace {

namespace tf = turtlefinder;
using tf::procfs::Process;
using tf::procfs::ProcessTable;
using tf::query::Assembler;
using tf::query::EngineState;
using tf::query::Input;

constexpr const char *host_pidns = "pid:[4026531836]";

using tftest::proc;

std::shared_ptr<const tf::plugins::ReportedContainer> raw(std::string id, std::string name, int pid,
                                                          bool paused = false, tf::Labels labels = {}) {
    auto c = std::make_shared<tf::plugins::ReportedContainer>();
    c->id = std::move(id);
    c->name = std::move(name);
    c->pid = pid;
    c->paused = paused;
    c->labels = std::move(labels);
    return c;
}

std::shared_ptr<const tf::watch::Snapshot> view(std::vector<tf::watch::ContainerPtr> containers) {
    return std::make_shared<const tf::watch::Snapshot>(std::move(containers));
}

std::unique_ptr<EngineState> engine_state(const std::string &type, int pid) {
    auto st = std::make_unique<EngineState>();
    st->engine = std::make_shared<tf::Engine>();
    st->engine->type = type;
    st->engine->api = "/run/" + type + ".sock";
    st->engine->pid = pid;
    st->pidns_pid = pid;
    return st;
}

std::map<std::string, tf::Container> by_id(const std::vector<tf::Container> &all) {
    std::map<std::string, tf::Container> out;
    for (const auto &c : all) out.emplace(c.id, c);
    return out;
}

// host: systemd(1) ─ dockerd(10)
//                  ├ shim(20) ─ "outer" init(21)
//                  ├ shim(25) ─ "web" init(26)
//                  └ containerd(30)    (moved below 21 or 50 by some tests)
//                    other(50)
// Both engines report PIDs in the host's PID namespace.
class Query : public ::testing::Test {
protected:
    void SetUp() override {
        for (int pid : {10, 30}) {
            proc_.symlink(host_pidns, std::to_string(pid) + "/ns/pid");
            proc_.write(std::to_string(pid) + "/status", "Name:\tengine\nNSpid:\t" + std::to_string(pid) + "\n");
        }
        docker_ = engine_state("docker.com", 10);
        containerd_ = engine_state("containerd.io", 30);
        docker_view_ = view({raw("o", "outer", 21), raw("w", "web", 26, false, {{"app", "web"}})});
        containerd_view_ = view({raw("i", "inner", 0)});
    }

    ProcessTable table(int containerd_parent = 1, int outer_parent = 20) const {
        return ProcessTable::from({proc(1, 0, "systemd"), proc(10, 1, "dockerd"), proc(20, 1, "shim"),
                                   proc(21, outer_parent, "sh"), proc(25, 1, "shim"), proc(26, 25, "nginx"),
                                   proc(30, containerd_parent, "containerd"), proc(50, 1, "other")},
                                  proc_.root());
    }

    std::vector<Input> inputs() const {
        return {{docker_.get(), 10, docker_view_}, {containerd_.get(), 30, containerd_view_}};
    }

    std::map<std::string, tf::Container> run(const ProcessTable &t) { return run(t, inputs()); }
    std::map<std::string, tf::Container> run(const ProcessTable &t, const std::vector<Input> &in) {
        assembler_.update(t, in);
        return by_id(Assembler::collect(in));
    }

    tftest::ProcFixture proc_;
    std::unique_ptr<EngineState> docker_, containerd_;
    std::shared_ptr<const tf::watch::Snapshot> docker_view_, containerd_view_;
    Assembler assembler_;
};

TEST_F(Query, FirstCallTranslatesPlacesAndLabels) {
    auto all = run(table());
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all["o"].pid, 21);
    EXPECT_EQ(all["o"].name, "outer");
    EXPECT_EQ(all["o"].type, "docker.com");
    EXPECT_EQ(all["w"].labels.at("app"), "web");
    EXPECT_EQ(all["w"].labels.at(tf::prefix_label), "");
    EXPECT_EQ(all["i"].pid, 0);
    EXPECT_EQ(all["i"].labels.at(tf::prefix_label), "");
    EXPECT_EQ(all["i"].engine, containerd_->engine);
    EXPECT_FALSE(containerd_->engine->parent);
}

TEST_F(Query, WarmCallDerivesNothingAndReturnsTheSame) {
    auto first = run(table());
    auto before = assembler_.counters();
    auto second = run(table()); // a fresh scan of an unchanged host
    auto after = assembler_.counters();
    EXPECT_EQ(after.engines_derived, before.engines_derived);
    EXPECT_EQ(after.engines_rebuilt, before.engines_rebuilt);
    EXPECT_EQ(after.placements, before.placements);
    ASSERT_EQ(second.size(), first.size());
    for (auto &[id, c] : first) {
        EXPECT_EQ(second[id].pid, c.pid) << id;
        EXPECT_EQ(second[id].labels, c.labels) << id;
        EXPECT_EQ(second[id].engine, c.engine) << id;
    }
}

TEST_F(Query, RelistedUnchangedViewIsNotDerivedAgain) {
    run(table());
    auto before = assembler_.counters();
    // A relist republishes the view, sharing the objects of unchanged containers.
    docker_view_ = view(std::vector<tf::watch::ContainerPtr>(*docker_view_));
    auto all = run(table());
    EXPECT_EQ(assembler_.counters().engines_derived, before.engines_derived);
    EXPECT_EQ(assembler_.counters().engines_rebuilt, before.engines_rebuilt);
    EXPECT_EQ(all.size(), 3u);
}

TEST_F(Query, ChangedViewShowsUpInTheNextCall) {
    run(table());
    run(table());
    // Started, paused, relabelled and exited, all behind one warm call.
    docker_view_ =
        view({raw("o", "outer", 21, true), raw("w", "web", 26, false, {{"app", "api"}}), raw("n", "new", 26)});
    containerd_view_ = view({});
    auto all = run(table());
    ASSERT_EQ(all.size(), 3u);
    EXPECT_TRUE(all["o"].paused);
    EXPECT_EQ(all["w"].labels.at("app"), "api");
    EXPECT_EQ(all["n"].pid, 26);
    EXPECT_FALSE(all.contains("i"));
}

TEST_F(Query, EngineMovingIntoAContainerGetsItsPrefix) {
    run(table());
    run(table());
    auto before = assembler_.counters();
    // Same views; containerd now runs inside "outer" (a child of its init).
    auto all = run(table(21));
    EXPECT_GT(assembler_.counters().placements, before.placements);
    EXPECT_EQ(all["i"].labels.at(tf::prefix_label), "outer");
    ASSERT_TRUE(all["i"].engine->parent);
    EXPECT_EQ(all["i"].engine->parent, docker_->engine);
    EXPECT_EQ(all["i"].engine, containerd_->engine);
    EXPECT_EQ(all["o"].labels.at(tf::prefix_label), "") << "the outer engine stays on the host";
    // And back out again.
    all = run(table(1));
    EXPECT_EQ(all["i"].labels.at(tf::prefix_label), "");
    EXPECT_FALSE(all["i"].engine->parent);
}

TEST_F(Query, ContainerMovingUnderTheEnginesParentPlacesTheEngine) {
    // containerd is a child of 50; "outer"'s init becomes a child of 50 too,
    // so 50 is now the shim of "outer" and containerd sits next to its init.
    run(table(50, 20));
    auto all = run(table(50, 20));
    EXPECT_EQ(all["i"].labels.at(tf::prefix_label), "");
    all = run(table(50, 50));
    EXPECT_EQ(all["i"].labels.at(tf::prefix_label), "outer");
    EXPECT_EQ(all["o"].pid, 21);
}

TEST_F(Query, VanishedHostPidIsTranslatedAgain) {
    // A nested engine: process 40 is PID 1 of its own PID namespace; its
    // container's init is 41 here and 5 inside.
    auto nested = engine_state("k8s.io/cri-api", 40);
    proc_.symlink("pid:[4026532000]", "40/ns/pid");
    proc_.write("40/status", "NSpid:\t40\t1\n");
    proc_.write("41/status", "NSpid:\t41\t5\n");
    proc_.symlink("pid:[4026532000]", "41/ns/pid");
    auto nested_view = view({raw("p", "pod", 5)});
    auto with = [&](bool container_alive) {
        std::vector<Process> ps{proc(1, 0, "systemd"), proc(10, 1, "dockerd"), proc(40, 1, "containerd")};
        if (container_alive) ps.push_back(proc(41, 40, "sleep"));
        return ProcessTable::from(ps, proc_.root());
    };
    std::vector<Input> in{{nested.get(), 40, nested_view}};
    EXPECT_EQ(run(with(true), in)["p"].pid, 41);
    EXPECT_EQ(run(with(true), in)["p"].pid, 41);
    EXPECT_EQ(run(with(false), in)["p"].pid, 0) << "a host PID no longer in the table must not be reported";
    EXPECT_EQ(run(with(true), in)["p"].pid, 41) << "an untranslated PID is tried again";
}

TEST_F(Query, EnginesComingAndGoing) {
    std::vector<Input> docker_only{{docker_.get(), 10, docker_view_}};
    auto all = run(table(), docker_only);
    EXPECT_EQ(all.size(), 2u);
    all = run(table());
    EXPECT_EQ(all.size(), 3u);
    EXPECT_TRUE(all.contains("i"));
    auto before = assembler_.counters();
    all = run(table(), docker_only);
    EXPECT_EQ(all.size(), 2u);
    EXPECT_FALSE(all.contains("i"));
    EXPECT_EQ(assembler_.counters().engines_derived, before.engines_derived)
        << "an engine's going must not derive the others again";
    // A new engine in the same place (its state at another address) starts afresh.
    auto replacement = engine_state("containerd.io", 30);
    all = run(table(), {{docker_.get(), 10, docker_view_}, {replacement.get(), 30, view({raw("j", "j", 0)})}});
    EXPECT_EQ(all.size(), 3u);
    EXPECT_TRUE(all.contains("j"));
    EXPECT_FALSE(all.contains("i"));
    EXPECT_EQ(all["j"].engine, replacement->engine);
}

} // namespace
