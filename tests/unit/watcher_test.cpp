// SPDX-License-Identifier: Apache-2.0
// The core's watcher against a scripted engine client. ScriptedEngine is a
// test double: it plays the races a real engine produces only by chance.
#include <gtest/gtest.h>

#include <turtlefinder/plugin.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "testing.hpp"
#include "watch/watcher.hpp"

namespace {

using namespace std::chrono_literals;
using turtlefinder::EventKind;
using turtlefinder::sdk::Container;
using turtlefinder::sdk::Error;
namespace sdk = turtlefinder::sdk;

// Test double of an engine: its containers, and a script of what watch() does.
class ScriptedEngine final : public sdk::EngineClient {
public:
    ScriptedEngine() : sdk::EngineClient({"test.invalid", "test.invalid", "scripted", "1", "/scripted.sock", 1}) {}

    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, Container> alive;
    // Events to deliver right after the list returned: they "happened during the list".
    std::deque<std::pair<sdk::EventKind, std::string>> during_list;
    std::deque<std::pair<sdk::EventKind, std::string>> pending; // delivered while watching
    int fail_watches = 0; // the next N watch() calls fail at once with -EIO
    bool has_events = true; // false: watch() says -ENOTSUP
    std::atomic<int> watch_calls{0}, list_calls{0};
    std::vector<std::chrono::steady_clock::time_point> watch_times;
    bool cancelled = false;

    void add(const std::string &id, bool paused = false) {
        std::lock_guard lock(mu);
        alive[id] = Container{id, "name-" + id, 100, paused, {{"k", "v"}}};
    }
    void push(sdk::EventKind kind, const std::string &id) {
        std::lock_guard lock(mu);
        pending.emplace_back(kind, id);
        cv.notify_all();
    }

    void list(const std::function<bool(const Container &)> &emit) override {
        ++list_calls;
        std::vector<Container> copy;
        {
            std::lock_guard lock(mu);
            if (cancelled) throw Error(-ECANCELED, "cancelled");
            for (auto &[id, c] : alive) copy.push_back(c);
        }
        for (auto &c : copy)
            if (!emit(c)) break;
    }
    std::optional<Container> inspect(const std::string &id) override {
        std::lock_guard lock(mu);
        auto it = alive.find(id);
        if (it == alive.end()) return std::nullopt;
        return it->second;
    }
    void watch(sdk::WatchSink &sink) override {
        {
            std::lock_guard lock(mu);
            ++watch_calls;
            watch_times.push_back(std::chrono::steady_clock::now());
            if (!has_events) throw Error(-ENOTSUP, "scripted: no events");
            if (fail_watches > 0) {
                --fail_watches;
                throw Error(-EIO, "scripted stream failure");
            }
        }
        if (!sink.subscribed()) return;
        std::unique_lock lock(mu);
        for (auto &[kind, id] : std::exchange(during_list, {})) {
            lock.unlock();
            if (!sink.event(kind, id)) return;
            lock.lock();
        }
        while (true) {
            cv.wait(lock, [&] { return cancelled || !pending.empty() || fail_watches > 0; });
            if (cancelled) throw Error(-ECANCELED, "cancelled");
            if (fail_watches > 0) {
                --fail_watches;
                throw Error(-EIO, "scripted stream broke");
            }
            auto [kind, id] = pending.front();
            pending.pop_front();
            lock.unlock();
            if (!sink.event(kind, id)) return;
            lock.lock();
        }
    }
    void cancel() override {
        std::lock_guard lock(mu);
        cancelled = true;
        cv.notify_all();
    }
};

struct Harness {
    ScriptedEngine *engine; // owned by the client below
    std::shared_ptr<turtlefinder::plugins::EngineHandle> client;
    std::mutex mu;
    std::vector<std::pair<EventKind, std::string>> changes;
    std::atomic<bool> alive{true};

    Harness() {
        auto e = std::make_unique<ScriptedEngine>();
        engine = e.get();
        client = std::make_shared<turtlefinder::plugins::EngineHandle>(sdk::detail::make_engine(std::move(e)), nullptr);
    }
    std::unique_ptr<turtlefinder::watch::Watcher> start(turtlefinder::watch::WatcherOptions o = {}) {
        return std::make_unique<turtlefinder::watch::Watcher>(
            client, o,
            [this](EventKind k, const turtlefinder::plugins::ReportedContainer &c) {
                std::lock_guard lock(mu);
                changes.emplace_back(k, c.id);
            },
            [this] { return alive.load(); });
    }
};

std::map<std::string, bool> view(const turtlefinder::watch::Watcher &w) {
    std::map<std::string, bool> out;
    auto snapshot = w.snapshot(); // held: a range-for over *w.snapshot() would outlive it
    for (auto &c : *snapshot) out[c->id] = c->paused;
    return out;
}

TEST(Watcher, FirstSyncListsAliveContainers) {
    tftest::LeakGuard leaks;
    {
        Harness h;
        h.engine->add("a");
        h.engine->add("b", true);
        auto w = h.start();
        ASSERT_TRUE(w->wait_ready(2s));
        EXPECT_EQ(view(*w), (std::map<std::string, bool>{{"a", false}, {"b", true}}));
        auto snap = w->snapshot();
        EXPECT_EQ((*snap)[0]->pid, 100);
        EXPECT_EQ((*snap)[0]->labels.at("k"), "v");
        EXPECT_EQ((*snap)[0]->name, "name-a");
    }
    leaks.check();
}

TEST(Watcher, AppliesLifecycleEvents) {
    tftest::LeakGuard leaks;
    {
        Harness h;
        h.engine->add("a");
        auto w = h.start();
        ASSERT_TRUE(w->wait_ready(2s));
        h.engine->add("c");
        h.engine->push(sdk::EventKind::started, "c");
        EXPECT_TRUE(tftest::eventually([&] { return view(*w).contains("c"); }, 2s));
        h.engine->push(sdk::EventKind::paused, "a");
        EXPECT_TRUE(tftest::eventually([&] { return view(*w)["a"]; }, 2s));
        h.engine->push(sdk::EventKind::unpaused, "a");
        EXPECT_TRUE(tftest::eventually([&] { return !view(*w)["a"]; }, 2s));
        h.engine->push(sdk::EventKind::exited, "c");
        EXPECT_TRUE(tftest::eventually([&] { return !view(*w).contains("c"); }, 2s));
        std::lock_guard lock(h.mu);
        std::vector<std::pair<EventKind, std::string>> want{
            {EventKind::started, "c"}, {EventKind::paused, "a"}, {EventKind::unpaused, "a"}, {EventKind::exited, "c"}};
        EXPECT_EQ(h.changes, want);
    }
    leaks.check();
}

TEST(Watcher, ReconcilesEventsThatRacedTheList) {
    Harness h;
    h.engine->add("dies-during-list");
    h.engine->add("paused-during-list");
    // The list shows both running; meanwhile one died and one was paused, and
    // one started and died again before we could inspect it.
    h.engine->during_list = {{sdk::EventKind::exited, "dies-during-list"},
                             {sdk::EventKind::paused, "paused-during-list"},
                             {sdk::EventKind::started, "gone-before-inspect"},
                             {sdk::EventKind::exited, "gone-before-inspect"}};
    auto w = h.start();
    ASSERT_TRUE(w->wait_ready(2s));
    EXPECT_TRUE(tftest::eventually(
        [&] {
            return view(*w) == std::map<std::string, bool>{{"paused-during-list", true}};
        },
        2s));
    EXPECT_EQ(view(*w), (std::map<std::string, bool>{{"paused-during-list", true}}));
}

TEST(Watcher, ResyncsWithCappedExponentialBackoffKeepingTheLastView) {
    Harness h;
    h.engine->add("a");
    auto w = h.start({1000ms, 20ms, 80ms});
    ASSERT_TRUE(w->wait_ready(2s));
    {
        std::lock_guard lock(h.engine->mu);
        h.engine->fail_watches = 6; // the stream breaks, then five resubscriptions fail
        h.engine->alive.erase("a");
        h.engine->alive["b"] = Container{"b", "b", 7, false, {}};
        h.engine->cv.notify_all();
    }
    // Resyncs fail for 300 ms at least; until one succeeds the last good view stays.
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(view(*w), (std::map<std::string, bool>{{"a", false}}));
    ASSERT_TRUE(tftest::eventually([&] { return view(*w) == std::map<std::string, bool>{{"b", false}}; }, 5s));
    std::vector<std::chrono::steady_clock::time_point> times;
    {
        std::lock_guard lock(h.engine->mu);
        times = h.engine->watch_times;
    }
    ASSERT_GE(times.size(), 7u); // first watch + 6 retries
    // Gaps between failed resubscriptions: 40, 80, 80, 80 ms (doubling from
    // 20, capped at 80; uncapped they would be 160 and 320).
    std::vector<long> gaps;
    for (std::size_t i = 2; i < times.size(); ++i)
        gaps.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(times[i] - times[i - 1]).count());
    EXPECT_GE(gaps[0], 40);
    EXPECT_GE(gaps[1], 80);
    EXPECT_GE(gaps[3], 80);
    EXPECT_LT(gaps[3], 240) << "backoff must be capped";
    EXPECT_GE(w->syncs(), 2u);
    EXPECT_EQ(w->resyncs(), w->syncs() - 1) << "every list after the first is a resync";
    std::lock_guard lock(h.mu); // the resync's differences were reported
    EXPECT_NE(std::find(h.changes.begin(), h.changes.end(), std::make_pair(EventKind::exited, std::string("a"))),
              h.changes.end());
    EXPECT_NE(std::find(h.changes.begin(), h.changes.end(), std::make_pair(EventKind::started, std::string("b"))),
              h.changes.end());
}

TEST(Watcher, PollsEnginesWithoutEventStream) {
    Harness h;
    h.engine->has_events = false;
    h.engine->add("a");
    auto w = h.start({30ms, 10ms, 50ms});
    ASSERT_TRUE(w->wait_ready(2s));
    EXPECT_TRUE(w->polling());
    h.engine->add("b", true);
    EXPECT_TRUE(tftest::eventually([&] { return view(*w).contains("b"); }, 2s));
    EXPECT_GE(h.engine->list_calls.load(), 2);
    EXPECT_EQ(h.engine->watch_calls.load() >= 2, true) << "each poll round asks for events again";
    EXPECT_EQ(w->resyncs(), 0u) << "a polling relist is no resync";
}

TEST(Watcher, EndsForGoodWhenTheEngineIsGone) {
    Harness h;
    h.engine->add("a");
    auto w = h.start({1000ms, 10ms, 20ms});
    ASSERT_TRUE(w->wait_ready(2s));
    h.alive = false;
    {
        std::lock_guard lock(h.engine->mu);
        h.engine->fail_watches = 1000;
        h.engine->cv.notify_all();
    }
    EXPECT_TRUE(tftest::eventually([&] { return w->dead(); }, 2s));
}

TEST(Watcher, DestructionCancelsABlockedWatchAndJoins) {
    tftest::LeakGuard leaks;
    for (int i = 0; i < 20; ++i) {
        Harness h;
        auto w = h.start();
        ASSERT_TRUE(w->wait_ready(2s));
        w.reset(); // blocked in watch(): must return promptly
        EXPECT_TRUE(h.engine->cancelled);
    }
    leaks.check();
}

} // namespace
