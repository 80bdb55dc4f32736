// SPDX-License-Identifier: Apache-2.0
// The C API (turtlefinder/turtlefinder.h) over the C++ Finder: handles are
// checked, nothing throws across it, snapshots own copies of what they show.
#include <turtlefinder/turtlefinder.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <thread>

#include <turtlefinder/finder.hpp>

namespace tf = turtlefinder;

namespace {

int fail(tfc_error *err, int code, const char *format, ...) __attribute__((format(printf, 3, 4)));
int fail(tfc_error *err, int code, const char *format, ...) {
    if (err != nullptr) {
        va_list args;
        va_start(args, format);
        std::vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
    }
    return code;
}

// Runs `body`, turning what it throws into a negative errno and a message.
template <typename F>
int guarded(tfc_error *err, const char *what, F &&body) {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        return fail(err, -ENOMEM, "%s: out of memory", what);
    } catch (const std::exception &e) {
        return fail(err, -EIO, "%s: %s", what, e.what());
    } catch (...) {
        return fail(err, -EIO, "%s: unknown error", what);
    }
}

// A C subscription: unsubscribe waits for a delivery in progress (except
// the one running on the unsubscribing thread itself).
struct Subscription {
    tfc_event_fn callback;
    void *user;
    std::mutex mutex;
    std::condition_variable idle;
    bool removed = false;
    std::multiset<std::thread::id> delivering; // threads inside the callback now
};

} // namespace

struct tfc_engine {
    std::shared_ptr<const tf::Engine> engine;
    const tfc_engine *parent = nullptr;
};

struct tfc_container {
    tf::Container container;
    const tfc_engine *engine = nullptr;
    std::vector<std::pair<const std::string *, const std::string *>> labels; // into container.labels
};

struct tfc_snapshot {
    std::vector<std::unique_ptr<tfc_engine>> engines;
    std::vector<std::unique_ptr<tfc_container>> containers;
};

struct tfc_event {
    tfc_event_kind kind;
    tfc_engine engine;
    tfc_container container;
    bool has_container;
};

struct tfc_finder {
    // In place, not behind a unique_ptr: std::unique_ptr<Finder>'s helper
    // templates would carry the public Finder's visibility into the exports.
    std::optional<tf::Finder> finder;
    std::mutex mutex; // guards subscriptions
    std::map<int, std::shared_ptr<Subscription>> subscriptions;
};

namespace {

void fill_container(tfc_container &out, tf::Container c, const tfc_engine *engine) {
    out.container = std::move(c);
    out.engine = engine;
    out.labels.clear();
    for (const auto &[key, value] : out.container.labels) out.labels.emplace_back(&key, &value);
}

std::size_t depth(const tf::Engine &e) {
    std::size_t d = 0;
    for (const tf::Engine *p = e.parent.get(); p != nullptr && d < 64; p = p->parent.get()) ++d;
    return d;
}

// One entry per engine met in `containers`, the finder's list or as a parent.
std::unique_ptr<tfc_snapshot> make_snapshot(std::vector<tf::Container> containers,
                                            const std::vector<std::shared_ptr<const tf::Engine>> &engines) {
    auto snap = std::make_unique<tfc_snapshot>();
    std::map<const tf::Engine *, tfc_engine *> index;
    std::vector<std::shared_ptr<const tf::Engine>> pending = engines;
    for (const auto &c : containers)
        if (c.engine) pending.push_back(c.engine);
    while (!pending.empty()) {
        auto e = std::move(pending.back());
        pending.pop_back();
        if (!e || index.count(e.get()) != 0) continue;
        auto entry = std::make_unique<tfc_engine>();
        entry->engine = e;
        index.emplace(e.get(), entry.get());
        snap->engines.push_back(std::move(entry));
        if (e->parent) pending.push_back(e->parent);
    }
    for (auto &entry : snap->engines)
        if (entry->engine->parent) entry->parent = index.at(entry->engine->parent.get());
    std::stable_sort(snap->engines.begin(), snap->engines.end(), [](const auto &a, const auto &b) {
        std::size_t da = depth(*a->engine), db = depth(*b->engine);
        if (da != db) return da < db;
        return a->engine->api < b->engine->api;
    });
    for (auto &c : containers) {
        auto entry = std::make_unique<tfc_container>();
        const tfc_engine *engine = c.engine ? index.at(c.engine.get()) : nullptr;
        fill_container(*entry, std::move(c), engine);
        snap->containers.push_back(std::move(entry));
    }
    return snap;
}

const char *text(const std::string &s) { return s.c_str(); }

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

// The v1.0 options end with workers: anything shorter is not a tfc_options.
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
        if (o.workers != 0) opts.workers = o.workers;
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

void tfc_snapshot_free(tfc_snapshot *snapshot) { delete snapshot; }

size_t tfc_snapshot_container_count(const tfc_snapshot *s) { return s != nullptr ? s->containers.size() : 0; }

const tfc_container *tfc_snapshot_container(const tfc_snapshot *s, size_t i) {
    return s != nullptr && i < s->containers.size() ? s->containers[i].get() : nullptr;
}

size_t tfc_snapshot_engine_count(const tfc_snapshot *s) { return s != nullptr ? s->engines.size() : 0; }

const tfc_engine *tfc_snapshot_engine(const tfc_snapshot *s, size_t i) {
    return s != nullptr && i < s->engines.size() ? s->engines[i].get() : nullptr;
}

const char *tfc_container_id(const tfc_container *c) { return c != nullptr ? text(c->container.id) : nullptr; }
const char *tfc_container_name(const tfc_container *c) { return c != nullptr ? text(c->container.name) : nullptr; }
int tfc_container_pid(const tfc_container *c) { return c != nullptr ? c->container.pid : 0; }
int tfc_container_paused(const tfc_container *c) { return c != nullptr && c->container.paused ? 1 : 0; }
const tfc_engine *tfc_container_engine(const tfc_container *c) { return c != nullptr ? c->engine : nullptr; }
size_t tfc_container_label_count(const tfc_container *c) { return c != nullptr ? c->labels.size() : 0; }

const char *tfc_container_label_key(const tfc_container *c, size_t i) {
    return c != nullptr && i < c->labels.size() ? text(*c->labels[i].first) : nullptr;
}

const char *tfc_container_label_value(const tfc_container *c, size_t i) {
    return c != nullptr && i < c->labels.size() ? text(*c->labels[i].second) : nullptr;
}

const char *tfc_container_label(const tfc_container *c, const char *key) {
    if (c == nullptr || key == nullptr) return nullptr;
    auto it = c->container.labels.find(key);
    return it != c->container.labels.end() ? text(it->second) : nullptr;
}

const char *tfc_engine_id(const tfc_engine *e) { return e != nullptr ? text(e->engine->id) : nullptr; }
const char *tfc_engine_type(const tfc_engine *e) { return e != nullptr ? text(e->engine->type) : nullptr; }
const char *tfc_engine_flavor(const tfc_engine *e) { return e != nullptr ? text(e->engine->flavor) : nullptr; }
const char *tfc_engine_version(const tfc_engine *e) { return e != nullptr ? text(e->engine->version) : nullptr; }
const char *tfc_engine_api(const tfc_engine *e) { return e != nullptr ? text(e->engine->api) : nullptr; }
int tfc_engine_pid(const tfc_engine *e) { return e != nullptr ? e->engine->pid : 0; }
const char *tfc_engine_plugin(const tfc_engine *e) { return e != nullptr ? text(e->engine->plugin) : nullptr; }
const char *tfc_engine_prefix(const tfc_engine *e) { return e != nullptr ? text(e->engine->prefix) : nullptr; }
int64_t tfc_engine_uid(const tfc_engine *e) { return e != nullptr ? e->engine->uid : -1; }
const tfc_engine *tfc_engine_parent(const tfc_engine *e) { return e != nullptr ? e->parent : nullptr; }

tfc_event_kind tfc_event_get_kind(const tfc_event *ev) {
    return ev != nullptr ? ev->kind : static_cast<tfc_event_kind>(0);
}
const tfc_engine *tfc_event_engine(const tfc_event *ev) { return ev != nullptr ? &ev->engine : nullptr; }
const tfc_container *tfc_event_container(const tfc_event *ev) {
    return ev != nullptr && ev->has_container ? &ev->container : nullptr;
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
