// SPDX-License-Identifier: Apache-2.0
// What subscribers are told: engines announced once placed, their changes of
// place and state, their containers' changes, and the state a subscription
// starts with.
#include "finder_impl.hpp"

#include <algorithm>

#include "hierarchy/hierarchy.hpp"
#include "log.hpp"

namespace turtlefinder {

void Finder::Impl::announce(Watched &w) {
    auto held = stream.hold();
    w.announced = true;
    std::shared_ptr<const Engine> engine;
    {
        std::shared_lock lock(mu);
        engine = w.engine;
    }
    w.told = engine;
    stream.deliver({EventKind::engine_found, engine, {}, {}, false});
    // Held for the loop: the watcher may replace its view meanwhile, and a
    // temporary shared_ptr would not outlive the range expression.
    const auto view = w.watcher->snapshot();
    for (const auto &raw : *view) stream.deliver({EventKind::started, engine, container_of(w, *raw), {}, false});
}

void Finder::Impl::tell_placement() {
    std::vector<std::shared_ptr<Watched>> engines;
    {
        std::shared_lock lock(mu);
        engines = watched;
    }
    auto same_engine = [](const std::shared_ptr<const Engine> &a, const std::shared_ptr<const Engine> &b) {
        return (!a && !b) || (a && b && a->api == b->api && a->pid == b->pid && a->type == b->type);
    };
    auto held = stream.hold();
    for (auto &w : engines) {
        if (!w->announced || !w->told) continue;
        std::shared_ptr<const Engine> now;
        {
            std::shared_lock lock(mu);
            now = w->engine;
        }
        if (now->prefix == w->told->prefix && same_engine(now->parent, w->told->parent)) continue;
        w->told = now;
        stream.deliver({EventKind::engine_changed, now, {}, {}, false});
    }
}

void Finder::Impl::on_health(Watched &w, const watch::Health &health) {
    std::shared_ptr<const Engine> engine;
    {
        std::unique_lock lock(mu);
        auto copy = std::make_shared<Engine>(*w.engine);
        copy->state = health.state;
        copy->error = health.error;
        copy->since = health.since;
        w.engine = copy;
        engine = std::move(copy);
    }
    auto held = stream.hold();
    if (!w.announced) return;
    w.told = engine;
    stream.deliver({EventKind::engine_changed, engine, {}, {}, false});
}

void Finder::Impl::on_change(Watched &w, EventKind kind, const plugins::ReportedContainer &raw) {
    auto held = stream.hold();
    if (stream.empty() || !w.announced) return; // not announced: announce() reads the view
    std::shared_ptr<const Engine> engine;
    {
        std::shared_lock lock(mu);
        engine = w.engine;
    }
    stream.deliver({kind, engine, container_of(w, raw), {}, false});
}

Container Finder::Impl::container_of(Watched &w, const plugins::ReportedContainer &raw) {
    int host_pid = 0;
    std::shared_ptr<const Engine> engine;
    {
        std::shared_lock lock(mu);
        engine = w.engine;
        if (auto it = w.host_pids.find({raw.id, raw.pid}); it != w.host_pids.end()) host_pid = it->second;
    }
    if (host_pid == 0 && raw.pid > 0) {
        if (w.in_root_pidns) {
            host_pid = raw.pid;
        } else { // rare: a nested engine's new container; needs the NSpid chains
            auto table = procfs::ProcessTable::scan(options.procfs_root);
            hierarchy::PidTranslator translate(table);
            host_pid = translate.to_host(w.pidns_pid, raw.pid).value_or(0);
        }
    }
    return query::to_container(engine, raw, host_pid);
}

int Finder::Impl::subscribe(Callback callback, bool with_state) {
    std::unique_lock<BoundedMutex> serial;
    if (with_state) serial = std::unique_lock(discovery_mu); // no discovery moves engines meanwhile
    auto held = stream.hold();
    if (with_state) {
        auto containers = query(processes->current());
        std::vector<std::shared_ptr<Watched>> engines;
        {
            std::shared_lock lock(mu);
            engines = watched;
        }
        const auto now = std::chrono::system_clock::now();
        for (auto &w : engines) {
            if (!w->announced) continue;
            std::shared_ptr<const Engine> engine;
            {
                std::shared_lock lock(mu);
                engine = w->engine;
            }
            w->told = engine;
            events::Stream::tell(callback, {EventKind::engine_found, engine, {}, now, true});
        }
        for (auto &c : containers) {
            auto engine = c.engine;
            events::Stream::tell(callback, {EventKind::started, std::move(engine), std::move(c), now, true});
        }
    }
    int handle = stream.add(std::move(callback));
    held.unlock();
    if (trigger) trigger->start();
    return handle;
}

void Finder::Impl::unsubscribe(int handle) {
    stream.remove(handle);
    if (trigger) trigger->wake(); // ends its thread when nobody listens any more
}

void Finder::Impl::refresh_claimed_names() {
    auto names = registry.claimed_process_names();
    names.merge(registry.wanted_process_names());
    std::lock_guard lock(claimed_mu);
    claimed_names = std::move(names);
}

void Finder::Impl::start_trigger() {
    if (!processes->incremental()) return;
    discovery::Trigger::Hooks hooks;
    refresh_claimed_names();
    hooks.claimed = [this](std::string_view name) {
        std::lock_guard lock(claimed_mu);
        return claimed_names.contains(name);
    };
    hooks.engine = [this](int pid) {
        std::shared_lock lock(mu);
        return std::any_of(watched.begin(), watched.end(), [&](const auto &w) { return w->process.pid == pid; });
    };
    hooks.wanted = [this] {
        auto held = stream.hold();
        return !stream.empty();
    };
    hooks.discover = [this](const std::vector<procfs::ProcessKey> &again) {
        Bound bound{closing.get_token()};
        if (!discovery_mu.lock(bound)) return;
        std::unique_lock serial(discovery_mu, std::adopt_lock);
        for (const auto &key : again) prober.probe_again(key);
        discover(bound);
    };
    trigger = std::make_unique<discovery::Trigger>(*processes, std::move(hooks));
}

} // namespace turtlefinder
