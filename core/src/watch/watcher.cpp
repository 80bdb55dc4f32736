// SPDX-License-Identifier: Apache-2.0
#include "watch/watcher.hpp"

#include <cerrno>

#include "log.hpp"

namespace turtlefinder::watch {

namespace {

bool same_state(const plugins::ReportedContainer &a, const plugins::ReportedContainer &b) {
    return a.paused == b.paused && a.pid == b.pid && a.name == b.name && a.labels == b.labels;
}

std::string describe(const plugins::EngineHandle &engine) {
    const Engine &e = engine.identity();
    return fmt::format("{} engine \"{}\" (PID {})", e.type, e.api, e.pid);
}

} // namespace

Watcher::Watcher(std::shared_ptr<plugins::EngineHandle> engine, WatcherOptions options, ChangeListener on_change,
                 std::function<bool()> alive, HealthListener on_health)
    : engine_(std::move(engine)),
      options_(options),
      on_change_(std::move(on_change)),
      alive_(std::move(alive)),
      on_health_(std::move(on_health)),
      snapshot_(std::make_shared<const Snapshot>()) {
    thread_ = std::thread([this] { run(); });
    heartbeat_ = std::thread([this] { heartbeat(); });
}

Watcher::~Watcher() {
    {
        std::lock_guard lock(mu_); // pairs with the sleepers' predicate check
        stopping_ = true;
    }
    engine_->cancel();
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (heartbeat_.joinable()) heartbeat_.join();
}

Health Watcher::health() const {
    std::lock_guard lock(mu_);
    return health_;
}

void Watcher::set_health(Engine::State state, const std::string &error) {
    std::lock_guard order(health_mu_);
    Health now;
    {
        std::lock_guard lock(mu_);
        if (health_.state == state && health_.error == error) return;
        if (health_.state != state) health_.since = std::chrono::system_clock::now();
        health_.state = state;
        health_.error = error;
        now = health_;
    }
    if (state != Engine::State::online)
        log().info("{} is {}: {}", describe(*engine_), to_string(state), error);
    else
        log().debug("{} is online", describe(*engine_));
    if (on_health_) on_health_(now);
}

void Watcher::answered(bool by_heartbeat) {
    Engine::State state;
    {
        std::lock_guard lock(mu_);
        state = health_.state;
        if (by_heartbeat && !(state == Engine::State::stale && stale_by_heartbeat_)) return;
        stale_by_heartbeat_ = false;
    }
    set_health(Engine::State::online, "");
}

void Watcher::failed(const std::string &error, bool by_heartbeat) {
    if (stopping_) return;
    Engine::State state;
    {
        std::lock_guard lock(mu_);
        state = health_.state == Engine::State::syncing ? Engine::State::syncing : Engine::State::stale;
        if (state == Engine::State::stale && health_.state == Engine::State::online)
            stale_by_heartbeat_ = by_heartbeat;
        else if (!by_heartbeat)
            stale_by_heartbeat_ = false;
    }
    set_health(state, error);
}

void Watcher::heartbeat() {
    while (sleep_for(options_.health_interval)) {
        // A polled engine is listed anyway; before the first sync there is no
        // view to call stale.
        if (polling_ || !ready_) continue;
        auto rc = engine_->list([](plugins::ReportedContainer &&) {});
        if (stopping_) break;
        if (rc.ok())
            answered(true);
        else
            failed(rc.message, true);
    }
}

bool Watcher::wait_ready(std::chrono::milliseconds timeout, std::stop_token stop) const {
    // Declared before the lock, so it is gone (its callback, which takes the
    // lock, done) only after the lock is released.
    std::stop_callback wake(stop, [this] {
        std::lock_guard lock(mu_);
        cv_.notify_all();
    });
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return ready_.load() || dead_.load() || stop.stop_requested(); });
    return ready_.load();
}

std::shared_ptr<const Snapshot> Watcher::snapshot() const {
    std::lock_guard lock(mu_);
    return snapshot_;
}

void Watcher::publish_locked() {
    auto snap = std::make_shared<Snapshot>();
    snap->reserve(view_.size());
    for (const auto &[id, c] : view_) snap->push_back(c);
    snapshot_ = std::move(snap);
}

void Watcher::mark_ready() {
    if (!ready_.exchange(true)) {
        std::lock_guard lock(mu_); // pairs with wait_ready's predicate check
        cv_.notify_all();
    }
}

bool Watcher::sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [&] { return stopping_.load(); });
    return !stopping_;
}

bool Watcher::sync() {
    std::map<std::string, ContainerPtr> fresh;
    auto rc = engine_->list([&](plugins::ReportedContainer &&c) {
        auto id = c.id;
        fresh[id] = std::make_shared<const plugins::ReportedContainer>(std::move(c));
    });
    if (!rc.ok()) {
        if (!stopping_) {
            log().debug("listing {} failed: {}", describe(*engine_), rc.message);
            failed(rc.message, false);
        }
        return false;
    }
    // Diff against the last good view so listeners hear about what changed
    // while we were not subscribed (resyncs and polling).
    std::vector<std::pair<EventKind, ContainerPtr>> changes;
    {
        std::lock_guard lock(mu_);
        for (const auto &[id, c] : fresh) {
            auto old = view_.find(id);
            if (old == view_.end())
                changes.emplace_back(EventKind::started, c);
            else if (old->second->paused != c->paused)
                changes.emplace_back(c->paused ? EventKind::paused : EventKind::unpaused, c);
            else if (same_state(*old->second, *c))
                fresh[id] = old->second; // keep sharing the unchanged object
        }
        for (const auto &[id, c] : view_)
            if (!fresh.contains(id)) changes.emplace_back(EventKind::exited, c);
        view_ = std::move(fresh);
        publish_locked();
    }
    ++syncs_;
    answered(false);
    if (on_change_ && ready_)
        for (const auto &[kind, c] : changes) on_change_(kind, *c);
    mark_ready();
    return true;
}

void Watcher::apply(EventKind kind, const std::string &id, const plugins::ReportedContainer *details) {
    ContainerPtr changed;
    EventKind what{};
    if (kind == EventKind::started) {
        plugins::ReportedContainer c;
        bool found = false;
        if (details != nullptr) {
            c = *details;
            found = true;
        } else {
            auto rc = engine_->inspect(id, c, found);
            if (!rc.ok()) {
                log().debug("inspecting {} on {} failed: {}", id, describe(*engine_), rc.message);
                return;
            }
        }
        if (!found) return; // already gone again: do not resurrect it
        changed = std::make_shared<const plugins::ReportedContainer>(std::move(c));
        what = EventKind::started;
        std::lock_guard lock(mu_);
        view_[changed->id] = changed;
        publish_locked();
    } else {
        std::lock_guard lock(mu_);
        auto it = view_.find(id);
        if (it == view_.end()) return; // e.g. died before it was listed
        if (kind == EventKind::exited) {
            changed = it->second;
            what = EventKind::exited;
            view_.erase(it);
        } else if (kind == EventKind::paused || kind == EventKind::unpaused) {
            bool paused = kind == EventKind::paused;
            if (it->second->paused == paused) return;
            auto copy = std::make_shared<plugins::ReportedContainer>(*it->second);
            copy->paused = paused;
            it->second = copy;
            changed = copy;
            what = paused ? EventKind::paused : EventKind::unpaused;
        } else {
            return; // engine events do not come from an engine handle
        }
        publish_locked();
    }
    if (on_change_) on_change_(what, *changed);
}

void Watcher::run() {
    auto backoff = options_.backoff_min;
    bool told_polling = false;
    while (!stopping_) {
        bool synced = false;
        plugins::EngineHandle::WatchHandler handler{
            [&] {
                const bool again = ready_; // a list after the first: the stream broke
                synced = sync();
                if (synced && again) ++resyncs_;
                return synced && !stopping_;
            },
            [&](EventKind kind, const std::string &id, const plugins::ReportedContainer *details) {
                apply(kind, id, details);
                return !stopping_.load();
            }};
        auto rc = engine_->watch(handler);
        if (stopping_) break;
        if (rc.code == -ENOTSUP) {
            polling_ = true;
            if (!told_polling) {
                log().info("{} has no event stream ({}); relisting every {} ms", describe(*engine_), rc.message,
                           options_.relist_interval.count());
                told_polling = true;
            }
            if (sync()) {
                backoff = options_.backoff_min;
                if (!sleep_for(options_.relist_interval)) break;
                continue;
            }
        } else {
            if (synced)
                backoff = options_.backoff_min; // the stream worked for a while
            else
                failed(rc.message, false); // no subscription: the API fails
            log().debug("watch of {} ended: {}", describe(*engine_), rc.message);
        }
        if (!alive_ || !alive_()) {
            log().info("{} is gone; its watch ends", describe(*engine_));
            break;
        }
        if (!sleep_for(backoff)) break;
        backoff = std::min(backoff * 2, options_.backoff_max);
    }
    dead_ = !stopping_;
    std::lock_guard lock(mu_);
    cv_.notify_all();
}

} // namespace turtlefinder::watch
