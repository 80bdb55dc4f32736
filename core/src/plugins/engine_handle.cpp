// SPDX-License-Identifier: Apache-2.0
// The plugin side is C: nothing thrown here may unwind through its frames.
// Host callbacks passed to the plugin therefore catch everything, park the
// exception, tell the plugin to stop, and rethrow once the plugin returned.
#include "engine_handle.hpp"

#include <cerrno>
#include <cstring>
#include <exception>
#include <optional>

#include <fmt/format.h>
#include <turtlefinder/plugin.h>

#include "log.hpp"
#include "plugins/call_result.hpp"
#include "plugins/loaded_plugin.hpp"

namespace turtlefinder::plugins {

namespace {

// More labels than this is a plugin bug or hostile; keep the first ones.
constexpr uint32_t max_labels = 4096;

std::string str(const char *s) { return s != nullptr ? std::string(s) : std::string(); }

CallResult missing(const char *what) {
    return CallResult{-ENOSYS, fmt::format("plugin engine has no {} function", what)};
}

// The end of member `m` in T: the writer's struct holds m if struct_size reaches it.
#define TF_MEMBER_END(T, m) (offsetof(T, m) + sizeof(T::m))

// Copies a tf_container defensively: NULL strings become empty, labels with
// NULL parts are dropped, invalid UTF-8 is kept as bytes.
ReportedContainer copy_container(const tf_container &c) {
    ReportedContainer r;
    const std::size_t size = c.struct_size;
    if (size >= TF_MEMBER_END(tf_container, id)) r.id = str(c.id);
    if (size >= TF_MEMBER_END(tf_container, name)) r.name = str(c.name);
    if (r.name.empty()) r.name = r.id;
    if (size >= TF_MEMBER_END(tf_container, pid)) r.pid = c.pid > 0 ? c.pid : 0;
    if (size >= TF_MEMBER_END(tf_container, flags)) r.paused = (c.flags & TF_CONTAINER_PAUSED) != 0;
    if (size >= TF_MEMBER_END(tf_container, labels) && c.labels != nullptr) {
        uint32_t n = c.n_labels;
        if (n > max_labels) {
            log().warn("container {}: {} labels, only the first {} kept", r.id, n, max_labels);
            n = max_labels;
        }
        for (uint32_t i = 0; i < n; ++i)
            if (c.labels[i].key != nullptr && c.labels[i].value != nullptr)
                r.labels.insert_or_assign(c.labels[i].key, c.labels[i].value);
    }
    return r;
}

struct ListContext {
    const std::function<void(ReportedContainer &&)> *each = nullptr;
    std::exception_ptr error;
    const Engine *engine = nullptr;
};

int list_add(void *ctx, const tf_container *c) {
    auto *l = static_cast<ListContext *>(ctx);
    if (l->error) return 1;
    try {
        if (c == nullptr) return 0;
        ReportedContainer raw = copy_container(*c);
        if (raw.id.empty()) {
            log().warn("engine {} ({}): container without id ignored", l->engine->api, l->engine->plugin);
            return 0;
        }
        (*l->each)(std::move(raw));
        return 0;
    } catch (...) {
        l->error = std::current_exception();
        return 1;
    }
}

struct InspectContext {
    ReportedContainer *out = nullptr;
    bool found = false;
    std::exception_ptr error;
};

int inspect_add(void *ctx, const tf_container *c) {
    auto *i = static_cast<InspectContext *>(ctx);
    if (i->error) return 1;
    try {
        if (c == nullptr) return 0;
        ReportedContainer raw = copy_container(*c);
        if (raw.id.empty()) return 0;
        *i->out = std::move(raw);
        i->found = true;
        return 0;
    } catch (...) {
        i->error = std::current_exception();
        return 1;
    }
}

std::optional<EventKind> event_kind(tf_event_kind kind) {
    switch (kind) {
    case TF_EVENT_STARTED: return EventKind::started;
    case TF_EVENT_EXITED: return EventKind::exited;
    case TF_EVENT_PAUSED: return EventKind::paused;
    case TF_EVENT_UNPAUSED: return EventKind::unpaused;
    default: return std::nullopt;
    }
}

struct WatchContext {
    const EngineHandle::WatchHandler *handler = nullptr;
    std::exception_ptr error;
    const Engine *engine = nullptr;
};

int watch_subscribed(void *ctx) {
    auto *w = static_cast<WatchContext *>(ctx);
    if (w->error) return 1;
    try {
        return !w->handler->subscribed || w->handler->subscribed() ? 0 : 1;
    } catch (...) {
        w->error = std::current_exception();
        return 1;
    }
}

int watch_event(void *ctx, const tf_container_event *ev) {
    auto *w = static_cast<WatchContext *>(ctx);
    if (w->error) return 1;
    try {
        if (ev == nullptr || !TF_HAS_MEMBER(ev, tf_container_event, id)) return 0;
        std::optional<EventKind> kind = event_kind(ev->kind);
        if (!kind) {
            // Kinds added by later ABI minors mean nothing to this host yet.
            log().debug("engine {}: event kind {} ignored", w->engine->api, ev->kind);
            return 0;
        }
        std::optional<ReportedContainer> details;
        if (TF_HAS_MEMBER(ev, tf_container_event, container) && ev->container != nullptr)
            details = copy_container(*ev->container);
        std::string id = str(ev->id);
        if (id.empty() && details) id = details->id;
        if (id.empty()) {
            log().warn("engine {} ({}): event without container id ignored", w->engine->api, w->engine->plugin);
            return 0;
        }
        if (details && details->id.empty()) details->id = id;
        if (!w->handler->event) return 0;
        return w->handler->event(*kind, id, details ? &*details : nullptr) ? 0 : 1;
    } catch (...) {
        w->error = std::current_exception();
        return 1;
    }
}

} // namespace

EngineHandle::EngineHandle(tf_engine *engine, std::shared_ptr<const Plugin> plugin)
    : engine_(engine), plugin_(std::move(plugin)) {
    if (plugin_) identity_.plugin = plugin_->name();
    if (engine_ == nullptr || !TF_HAS_MEMBER(engine_, tf_engine, info) || engine_->info == nullptr) return;
    const tf_engine_info *info = engine_->info(engine_);
    if (info == nullptr) return;
    if (TF_HAS_MEMBER(info, tf_engine_info, type)) identity_.type = str(info->type);
    if (TF_HAS_MEMBER(info, tf_engine_info, flavor)) identity_.flavor = str(info->flavor);
    if (TF_HAS_MEMBER(info, tf_engine_info, id)) identity_.id = str(info->id);
    if (TF_HAS_MEMBER(info, tf_engine_info, version)) identity_.version = str(info->version);
    if (TF_HAS_MEMBER(info, tf_engine_info, api)) identity_.api = str(info->api);
    if (TF_HAS_MEMBER(info, tf_engine_info, pid)) identity_.pid = info->pid;
    if (identity_.flavor.empty()) identity_.flavor = identity_.type;
}

void EngineHandle::show_api_as(const std::string &given, const std::string &shown) {
    if (given.empty()) return;
    if (identity_.api == given) identity_.api = shown;
    // An id built from the path ("name@PATH") names the socket as shown;
    // "/proc/self/fd/1" must not match the start of "/proc/self/fd/12".
    for (std::size_t at = identity_.id.find(given); at != std::string::npos; at = identity_.id.find(given, at)) {
        std::size_t end = at + given.size();
        if (end < identity_.id.size() && identity_.id[end] >= '0' && identity_.id[end] <= '9') {
            at = end;
            continue;
        }
        identity_.id.replace(at, given.size(), shown);
        at += shown.size();
    }
}

EngineHandle::~EngineHandle() {
    if (engine_ == nullptr) return;
    cancel();
    if (TF_HAS_MEMBER(engine_, tf_engine, destroy) && engine_->destroy != nullptr)
        engine_->destroy(engine_);
    else
        log().warn("engine {} ({}): no destroy function, its memory is leaked", identity_.api, identity_.plugin);
}

CallResult EngineHandle::list(const std::function<void(ReportedContainer &&)> &each) {
    if (engine_ == nullptr || !TF_HAS_MEMBER(engine_, tf_engine, list) || engine_->list == nullptr)
        return missing("list");
    ListContext ctx;
    ctx.each = &each;
    ctx.engine = &identity_;
    tf_container_sink sink{sizeof(tf_container_sink), &ctx, &list_add};
    tf_error err{};
    int rc = engine_->list(engine_, &sink, &err);
    if (ctx.error) std::rethrow_exception(ctx.error);
    return result_of(rc, err);
}

CallResult EngineHandle::inspect(const std::string &id, ReportedContainer &out, bool &found) {
    found = false;
    if (engine_ == nullptr || !TF_HAS_MEMBER(engine_, tf_engine, inspect) || engine_->inspect == nullptr)
        return missing("inspect");
    InspectContext ctx;
    ctx.out = &out;
    tf_container_sink sink{sizeof(tf_container_sink), &ctx, &inspect_add};
    tf_error err{};
    int rc = engine_->inspect(engine_, id.c_str(), &sink, &err);
    if (ctx.error) std::rethrow_exception(ctx.error);
    found = rc >= 0 && ctx.found;
    return result_of(rc, err);
}

CallResult EngineHandle::watch(const WatchHandler &handler) {
    if (engine_ == nullptr || !TF_HAS_MEMBER(engine_, tf_engine, watch) || engine_->watch == nullptr)
        return missing("watch");
    WatchContext ctx;
    ctx.handler = &handler;
    ctx.engine = &identity_;
    tf_event_sink sink{sizeof(tf_event_sink), &ctx, &watch_subscribed, &watch_event};
    tf_error err{};
    int rc = engine_->watch(engine_, &sink, &err);
    if (ctx.error) std::rethrow_exception(ctx.error);
    if (rc >= 0) return CallResult{-EPIPE, "plugin's watch returned success (it must not): stream ended"};
    return result_of(rc, err);
}

void EngineHandle::cancel() {
    if (engine_ != nullptr && TF_HAS_MEMBER(engine_, tf_engine, cancel) && engine_->cancel != nullptr)
        engine_->cancel(engine_);
}

} // namespace turtlefinder::plugins
