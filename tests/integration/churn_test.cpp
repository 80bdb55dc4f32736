// SPDX-License-Identifier: Apache-2.0
// Churn: 200 containers started, some paused, half stopped again across a
// real dockerd and a real containerd (ctr tasks), while another thread calls
// containers() without pause. Once the churn stops, the Finder's view must
// equal what the engines' own CLIs report: nothing lost, nothing left behind,
// paused state right.
#include <gtest/gtest.h>

#include <turtlefinder/finder.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "containerd.hpp"
#include "lab.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace tf = turtlefinder;
namespace lab = turtlefinder::lab;
using Clock = std::chrono::steady_clock;

using View = std::map<std::string, bool>; // container id → paused

View view_of(const std::vector<tf::Container> &all, const std::string &type, const std::string &socket) {
    View out;
    for (const auto &c : all)
        if (c.engine && c.engine->type == type && c.engine->api.ends_with(socket)) out[c.id] = c.paused;
    return out;
}

// Runs `work(i)` for i in [0, n) on `threads` threads; the first error is rethrown.
void parallel(int n, int threads, const std::function<void(int)> &work) {
    std::atomic<int> next{0};
    std::mutex mu;
    std::exception_ptr error;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            for (int i; (i = next++) < n;) {
                try {
                    work(i);
                } catch (...) {
                    std::lock_guard lock(mu);
                    if (!error) error = std::current_exception();
                    return;
                }
            }
        });
    for (auto &t : pool) t.join();
    if (error) std::rethrow_exception(error);
}

std::string describe(const View &v) {
    std::string out;
    for (const auto &[id, paused] : v) out += id.substr(0, 20) + (paused ? "(paused) " : " ");
    return out;
}

TEST(Churn, TwoHundredContainersAcrossDockerAndContainerd) {
    TF_REQUIRE_ROOT();
    for (const char *program : {"dockerd", "docker", "containerd", "ctr", "runc", "containerd-shim-runc-v2"})
        if (!lab::which(program)) TF_SKIP_OR_FAIL(std::string(program) + " is not installed");
    const auto test_start = Clock::now();
    lab::Lab lab("churn");
    lab::Dockerd dockerd(lab);
    dockerd.import_busybox();
    lab::ContainerdConfig config;
    config.cri = false;
    lab::Containerd containerd(lab, config);
    // runc state of a containerd namespace is shared host-wide: keep ours to this test.
    const std::string ns = "tf-churn";
    containerd.import_busybox(ns);

    tf::Options o;
    o.online_wait = 5s;
    o.probe_timeout = 1s;
    { // gRPC's process-wide poller lives from first use until exit
        tf::Finder warm_up(o);
        warm_up.containers();
    }
    constexpr int per_engine = 100;
    tftest::LeakGuard leaks;
    {
        tf::Finder finder(o);
        finder.containers();

        // The reader: containers() as fast as it can, checking every answer is sane.
        std::atomic<bool> stop{false};
        std::atomic<int> reads{0}, bad_reads{0};
        std::thread reader([&] {
            while (!stop) {
                auto all = finder.containers();
                std::map<std::pair<std::string, const tf::Engine *>, int> seen;
                for (const auto &c : all)
                    if (c.id.empty() || !c.engine || ++seen[{c.id, c.engine.get()}] > 1) ++bad_reads;
                ++reads;
            }
        });
        auto stop_reader = [&] {
            stop = true;
            if (reader.joinable()) reader.join();
        };
        // Joins the reader on every way out, failed assertions and exceptions included.
        std::shared_ptr<void> join_reader(nullptr, [&](void *) { stop_reader(); });

        // Docker: start 100 (4 at a time); pause every 5th; stop every odd one.
        // containerd: the same with ctr tasks.
        std::vector<std::string> docker_ids(per_engine);
        auto churn_start = Clock::now();
        std::exception_ptr docker_error;
        std::thread docker_side([&] {
            try {
                parallel(per_engine, 4, [&](int i) {
                    docker_ids[i] = dockerd.run_container({"--name", "c" + std::to_string(i)});
                    if (i % 5 == 0) dockerd.docker_ok({"pause", docker_ids[i]});
                    if (i % 2 == 1) dockerd.docker_ok({"rm", "-f", docker_ids[i]});
                });
            } catch (...) {
                docker_error = std::current_exception();
            }
        });
        std::exception_ptr containerd_error;
        std::thread containerd_side([&] {
            try {
                parallel(per_engine, 4, [&](int i) {
                    std::string id = "t" + std::to_string(i);
                    containerd.run_task(ns, id);
                    if (i % 5 == 0) containerd.pause_task(ns, id);
                    if (i % 2 == 1) containerd.kill_task(ns, id);
                });
            } catch (...) {
                containerd_error = std::current_exception();
            }
        });
        docker_side.join();
        containerd_side.join();
        if (docker_error) std::rethrow_exception(docker_error);
        if (containerd_error) std::rethrow_exception(containerd_error);
        auto churn_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - churn_start).count();

        // What the engines themselves say.
        View docker_want, containerd_want;
        std::istringstream running(dockerd.docker_ok({"ps", "-q", "--no-trunc"}));
        for (std::string id; running >> id;) docker_want[id] = false;
        std::istringstream paused(dockerd.docker_ok({"ps", "-q", "--no-trunc", "--filter", "status=paused"}));
        for (std::string id; paused >> id;) docker_want[id] = true;
        std::istringstream tasks(containerd.ctr_ok(ns, {"task", "ls"}));
        std::string header;
        std::getline(tasks, header);
        for (std::string line; std::getline(tasks, line);) {
            std::istringstream fields(line);
            std::string id, pid, status;
            if (fields >> id >> pid >> status) containerd_want[ns + "/" + id] = status == "PAUSED";
        }
        EXPECT_EQ(docker_want.size(), static_cast<std::size_t>(per_engine / 2));
        EXPECT_EQ(containerd_want.size(), static_cast<std::size_t>(per_engine / 2));
        int docker_paused = 0, containerd_paused = 0;
        for (auto &[id, p] : docker_want) docker_paused += p;
        for (auto &[id, p] : containerd_want) containerd_paused += p;
        EXPECT_EQ(docker_paused, 10);
        EXPECT_EQ(containerd_paused, 10);

        // The Finder settles on exactly that (events in flight may still land).
        View docker_got, containerd_got;
        bool settled = tftest::eventually(
            [&] {
                auto all = finder.containers();
                docker_got = view_of(all, "docker.com", dockerd.socket());
                containerd_got = view_of(all, "containerd.io", containerd.socket());
                return docker_got == docker_want && containerd_got == containerd_want;
            },
            5s, 50ms);
        stop_reader();
        EXPECT_TRUE(settled);
        EXPECT_EQ(docker_got, docker_want) << "got:  " << describe(docker_got) << "\nwant: " << describe(docker_want);
        EXPECT_EQ(containerd_got, containerd_want)
            << "got:  " << describe(containerd_got) << "\nwant: " << describe(containerd_want);
        EXPECT_EQ(bad_reads.load(), 0) << "containers() returned duplicates or empty ids during the churn";
        EXPECT_GT(reads.load(), 10);
        std::cout << "[ info ] churn of " << 2 * per_engine << " containers took " << churn_ms << " ms; "
                  << reads.load() << " concurrent containers() calls\n";
    }
    leaks.check();
    std::cout << "[ info ] test took "
              << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - test_start).count() << " ms\n";
}

} // namespace
