// SPDX-License-Identifier: Apache-2.0
// Finders, subscriptions and the log, over the C++ Finder.
#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <new>

#include "capi/capi.hpp"

namespace turtlefinder::capi {

int fail(tfc_error *err, int code, const char *format, ...) {
    if (err != nullptr) {
        va_list args;
        va_start(args, format);
        std::vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
    }
    return code;
}

} // namespace turtlefinder::capi

using namespace turtlefinder::capi;

namespace {

void deliver(const std::shared_ptr<Subscription> &sub, const tf::Event &event) {
    {
        std::lock_guard lock(sub->mutex);
        if (sub->removed) return;
        sub->delivering.insert(std::this_thread::get_id());
    }
    tfc_event ev;
    ev.kind = static_cast<tfc_event_kind>(static_cast<int>(event.kind) + 1);
    ev.engine.engine = event.engine;
    ev.has_container = event.kind != tf::EventKind::engine_found && event.kind != tf::EventKind::engine_lost;
    if (ev.has_container) fill_container(ev.container, event.container, &ev.engine);
    sub->callback(sub->user, &ev);
    {
        std::lock_guard lock(sub->mutex);
        sub->delivering.erase(sub->delivering.find(std::this_thread::get_id()));
    }
    sub->idle.notify_all();
}

// The v1.0 options end with workers (now ignored): anything shorter is not a tfc_options.
constexpr std::size_t options_v1_size = offsetof(tfc_options, workers) + sizeof(tfc_options::workers);

// Keeps the C log callback and its user pointer together.
struct CLog {
    tfc_log_fn callback;
    void *user;
};

static_assert(static_cast<int>(tf::EventKind::engine_found) + 1 == TFC_EVENT_ENGINE_FOUND &&
                  static_cast<int>(tf::EventKind::unpaused) + 1 == TFC_EVENT_UNPAUSED,
              "tfc_event_kind follows EventKind");
static_assert(static_cast<int>(tf::LogLevel::critical) == TFC_LOG_CRITICAL, "tfc_log_level follows LogLevel");

} // namespace

extern "C" {

uint32_t tfc_api_version(void) { return (TFC_API_VERSION_MAJOR << 16) | TFC_API_VERSION_MINOR; }

const char *tfc_library_version(void) { return tf::version(); }

int tfc_finder_new(const tfc_options *options, tfc_finder **out, tfc_error *err) {
    if (out == nullptr) return fail(err, -EINVAL, "tfc_finder_new: NULL out");
    *out = nullptr;
    tfc_options o{};
    if (options != nullptr) {
        if (options->struct_size < options_v1_size)
            return fail(err, -EINVAL,
                        "tfc_finder_new: options.struct_size %u is too small (set it to sizeof(tfc_options))",
                        options->struct_size);
        std::memcpy(&o, options, std::min<std::size_t>(options->struct_size, sizeof o));
    }
    return guarded(err, "tfc_finder_new", [&] {
        tf::Options opts;
        if (o.config_file != nullptr) tf::load_config(o.config_file, opts);
        if (o.n_plugin_dirs > 0 && o.plugin_dirs == nullptr)
            return fail(err, -EINVAL, "tfc_finder_new: n_plugin_dirs is %zu but plugin_dirs is NULL", o.n_plugin_dirs);
        if (o.n_disabled_plugins > 0 && o.disabled_plugins == nullptr)
            return fail(err, -EINVAL, "tfc_finder_new: n_disabled_plugins is %zu but disabled_plugins is NULL",
                        o.n_disabled_plugins);
        if (o.n_builtin_plugins > 0 && o.builtin_plugins == nullptr)
            return fail(err, -EINVAL, "tfc_finder_new: n_builtin_plugins is %zu but builtin_plugins is NULL",
                        o.n_builtin_plugins);
        std::vector<std::string> dirs;
        for (std::size_t i = 0; i < o.n_plugin_dirs; ++i) {
            if (o.plugin_dirs[i] == nullptr) return fail(err, -EINVAL, "tfc_finder_new: plugin_dirs[%zu] is NULL", i);
            dirs.emplace_back(o.plugin_dirs[i]);
        }
        opts.plugin_dirs.insert(opts.plugin_dirs.begin(), dirs.begin(), dirs.end());
        for (std::size_t i = 0; i < o.n_disabled_plugins; ++i) {
            if (o.disabled_plugins[i] == nullptr)
                return fail(err, -EINVAL, "tfc_finder_new: disabled_plugins[%zu] is NULL", i);
            opts.disabled_plugins.insert(o.disabled_plugins[i]);
        }
        for (std::size_t i = 0; i < o.n_builtin_plugins; ++i) opts.builtin_plugins.push_back(o.builtin_plugins[i]);
        if (o.no_default_plugin_dirs != 0) opts.default_plugin_dirs = false;
        if (o.procfs_root != nullptr) opts.procfs_root = o.procfs_root;
        if (o.online_wait_ms != 0) opts.online_wait = std::chrono::milliseconds(o.online_wait_ms);
        auto finder = std::make_unique<tfc_finder>();
        finder->finder.emplace(std::move(opts));
        *out = finder.release();
        return 0;
    });
}

void tfc_finder_free(tfc_finder *finder) {
    if (finder == nullptr) return;
    std::map<int, std::shared_ptr<Subscription>> subscriptions;
    {
        std::lock_guard lock(finder->mutex);
        subscriptions.swap(finder->subscriptions);
    }
    for (auto &[handle, sub] : subscriptions) finder->finder->unsubscribe(handle);
    finder->finder.reset(); // joins every thread: no callback runs after this
    delete finder;
}

int tfc_finder_snapshot(tfc_finder *finder, tfc_snapshot **out, tfc_error *err) {
    if (out == nullptr) return fail(err, -EINVAL, "tfc_finder_snapshot: NULL out");
    *out = nullptr;
    if (finder == nullptr) return fail(err, -EINVAL, "tfc_finder_snapshot: NULL finder");
    return guarded(err, "tfc_finder_snapshot", [&] {
        auto containers = finder->finder->containers();
        *out = make_snapshot(std::move(containers), finder->finder->engines()).release();
        return 0;
    });
}

int tfc_cancel_new(tfc_cancel **out, tfc_error *err) {
    if (out == nullptr) return fail(err, -EINVAL, "tfc_cancel_new: NULL out");
    *out = nullptr;
    return guarded(err, "tfc_cancel_new", [&] {
        *out = new tfc_cancel;
        return 0;
    });
}

void tfc_cancel_request(tfc_cancel *cancel) {
    if (cancel != nullptr) cancel->source.request_stop();
}

int tfc_cancel_requested(const tfc_cancel *cancel) {
    return cancel != nullptr && cancel->source.stop_requested() ? 1 : 0;
}

void tfc_cancel_free(tfc_cancel *cancel) { delete cancel; }

int tfc_finder_snapshot_bounded(tfc_finder *finder, tfc_cancel *cancel, uint32_t timeout_ms, tfc_snapshot **out,
                                tfc_error *err) {
    if (out == nullptr) return fail(err, -EINVAL, "tfc_finder_snapshot_bounded: NULL out");
    *out = nullptr;
    if (finder == nullptr) return fail(err, -EINVAL, "tfc_finder_snapshot_bounded: NULL finder");
    return guarded(err, "tfc_finder_snapshot_bounded", [&] {
        using Clock = std::chrono::steady_clock;
        const auto deadline =
            timeout_ms == 0 ? Clock::time_point::max() : Clock::now() + std::chrono::milliseconds(timeout_ms);
        std::stop_token stop = cancel != nullptr ? cancel->source.get_token() : std::stop_token();
        auto containers = finder->finder->containers(stop, deadline);
        const bool cut_short = stop.stop_requested() || Clock::now() >= deadline;
        *out = make_snapshot(std::move(containers), finder->finder->engines()).release();
        return cut_short ? 1 : 0;
    });
}

int tfc_subscribe(tfc_finder *finder, tfc_event_fn callback, void *user, tfc_error *err) {
    if (finder == nullptr) return fail(err, -EINVAL, "tfc_subscribe: NULL finder");
    if (callback == nullptr) return fail(err, -EINVAL, "tfc_subscribe: NULL callback");
    return guarded(err, "tfc_subscribe", [&] {
        auto sub = std::make_shared<Subscription>();
        sub->callback = callback;
        sub->user = user;
        std::lock_guard lock(finder->mutex); // so the handle is known before a first delivery can remove it
        int handle = finder->finder->subscribe([sub](const tf::Event &event) { deliver(sub, event); });
        finder->subscriptions.emplace(handle, std::move(sub));
        return handle;
    });
}

int tfc_unsubscribe(tfc_finder *finder, int handle, tfc_error *err) {
    if (finder == nullptr) return fail(err, -EINVAL, "tfc_unsubscribe: NULL finder");
    std::shared_ptr<Subscription> sub;
    {
        std::lock_guard lock(finder->mutex);
        auto it = finder->subscriptions.find(handle);
        if (it == finder->subscriptions.end()) return fail(err, -ENOENT, "tfc_unsubscribe: no subscription %d", handle);
        sub = std::move(it->second);
        finder->subscriptions.erase(it);
    }
    finder->finder->unsubscribe(handle);
    std::unique_lock lock(sub->mutex);
    sub->removed = true;
    // Deliveries on other threads are waited for; one on this thread (the
    // callback unsubscribing itself) finishes after we return.
    const auto self = std::this_thread::get_id();
    sub->idle.wait(lock, [&] { return sub->delivering.size() == sub->delivering.count(self); });
    return 0;
}

int tfc_set_log_level(tfc_log_level level) {
    static const char *const names[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    // A C caller may pass any int: read it as one (a C++ load of an enum
    // outside its values is undefined), then check it.
    int raw = 0;
    static_assert(sizeof raw == sizeof level);
    std::memcpy(&raw, &level, sizeof raw);
    if (raw < 0 || raw > TFC_LOG_OFF) return -EINVAL;
    return tf::set_log_level(names[raw]) ? 0 : -EINVAL;
}

void tfc_set_log_callback(tfc_log_fn callback, void *user) {
    try {
        if (callback == nullptr) {
            tf::set_log_callback({});
            return;
        }
        CLog target{callback, user};
        tf::set_log_callback([target](const tf::LogRecord &r) {
            std::string component(r.component), message(r.message); // NUL-terminated for C
            target.callback(target.user, static_cast<tfc_log_level>(r.level), component.c_str(), message.c_str());
        });
    } catch (...) {
        // Out of memory making the callback: the previous sink stays.
    }
}

} // extern "C"