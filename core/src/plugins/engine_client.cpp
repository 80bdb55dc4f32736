// SPDX-License-Identifier: Apache-2.0
// The plugin side is C: nothing thrown here may unwind through its frames.
// Host callbacks passed to the plugin therefore catch everything, park the
// exception, tell the plugin to stop, and rethrow once the plugin returned.
#include "engine_client.hpp"

#include <cerrno>
#include <climits>
#include <cstring>
#include <exception>
#include <optional>

#include <fmt/format.h>

#include "log.hpp"

namespace turtlefinder::plugins {

namespace {

// More labels than this is a plugin bug or hostile; keep the first ones.
constexpr uint32_t max_labels = 4096;

// A tf_engine usable by the host holds every v1 member, all non-NULL.
constexpr std::size_t engine_v1_size = offsetof(tf_engine, destroy) + sizeof(tf_engine::destroy);

std::string str(const char *s) { return s != nullptr ? std::string(s) : std::string(); }

CallResult result_of(int rc, const tf_error &err) {
    CallResult r;
    r.code = rc;
    if (rc < 0) {
        r.message.assign(err.message, strnlen(err.message, TF_ERROR_MAX));
        if (r.message.empty()) r.message = std::strerror(-rc);
    }
    return r;
}

CallResult missing(const char *what) {
    return CallResult{-ENOSYS, fmt::format("plugin engine has no {} function", what)};
}

struct ListContext {
    const std::function<void(RawContainer &&)> *each = nullptr;
    std::exception_ptr error;
    const Engine *engine = nullptr;
};

int list_add(void *ctx, const tf_container *c) {
    auto *l = static_cast<ListContext *>(ctx);
    if (l->error) return 1;
    try {
        if (c == nullptr) return 0;
        RawContainer raw = copy_container(*c);
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
    RawContainer *out = nullptr;
    bool found = false;
    std::exception_ptr error;
};

int inspect_add(void *ctx, const tf_container *c) {
    auto *i = static_cast<InspectContext *>(ctx);
    if (i->error) return 1;
    try {
        if (c == nullptr) return 0;
        RawContainer raw = copy_container(*c);
        if (raw.id.empty()) return 0;
        *i->out = std::move(raw);
        i->found = true;
        return 0;
    } catch (...) {
        i->error = std::current_exception();
        return 1;
    }
}

struct WatchContext {
    const EngineClient::WatchHandler *handler = nullptr;
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
        // Kinds added by later ABI minors mean nothing to this host yet.
        if (ev->kind < TF_EVENT_STARTED || ev->kind > TF_EVENT_UNPAUSED) {
            log().debug("engine {}: event kind {} ignored", w->engine->api, ev->kind);
            return 0;
        }
        std::optional<RawContainer> details;
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
        return w->handler->event(ev->kind, id, details ? &*details : nullptr) ? 0 : 1;
    } catch (...) {
        w->error = std::current_exception();
        return 1;
    }
}

} // namespace

// The end of member `m` in T: the writer's struct holds m if struct_size reaches it.
#define TF_MEMBER_END(T, m) (offsetof(T, m) + sizeof(T::m))

RawContainer copy_container(const tf_container &c) {
    RawContainer r;
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

EngineClient::EngineClient(tf_engine *engine, std::shared_ptr<const Plugin> plugin)
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

EngineClient::~EngineClient() {
    if (engine_ == nullptr) return;
    cancel();
    if (TF_HAS_MEMBER(engine_, tf_engine, destroy) && engine_->destroy != nullptr)
        engine_->destroy(engine_);
    else
        log().warn("engine {} ({}): no destroy function, its memory is leaked", identity_.api, identity_.plugin);
}

CallResult EngineClient::list(const std::function<void(RawContainer &&)> &each) {
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

CallResult EngineClient::inspect(const std::string &id, RawContainer &out, bool &found) {
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

CallResult EngineClient::watch(const WatchHandler &handler) {
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

void EngineClient::cancel() {
    if (engine_ != nullptr && TF_HAS_MEMBER(engine_, tf_engine, cancel) && engine_->cancel != nullptr)
        engine_->cancel(engine_);
}

namespace {

struct ProbeContext {
    const std::shared_ptr<const Plugin> *plugin = nullptr;
    std::vector<std::unique_ptr<EngineClient>> *engines = nullptr;
};

bool complete_v1(const tf_engine *e) {
    return e->struct_size >= engine_v1_size && e->info != nullptr && e->list != nullptr &&
           e->inspect != nullptr && e->watch != nullptr && e->cancel != nullptr && e->destroy != nullptr;
}

int engine_add(void *ctx, tf_engine *engine) {
    auto *p = static_cast<ProbeContext *>(ctx);
    if (engine == nullptr) return 1;
    const std::string &name = (*p->plugin)->name();
    if (!complete_v1(engine)) {
        log().warn("plugin {}: engine refused: its tf_engine lacks v1 members (struct_size {})", name,
                   engine->struct_size);
        return 1;
    }
    try {
        // Room first, so that once the client owns the engine nothing can throw.
        if (p->engines->size() == p->engines->capacity()) p->engines->reserve(p->engines->size() * 2 + 2);
        auto client = std::make_unique<EngineClient>(engine, *p->plugin);
        p->engines->push_back(std::move(client));
        return 0;
    } catch (...) {
        return 1;
    }
}

} // namespace

ProbeOutcome probe(const std::shared_ptr<const Plugin> &plugin, tf_probe_fn fn, const ProbeInput &input) {
    ProbeOutcome out;
    if (!plugin || fn == nullptr) {
        out.result = {-EINVAL, "no plugin or no probe function"};
        return out;
    }
    std::vector<const char *> paths;
    paths.reserve(input.api_paths.size());
    for (const auto &p : input.api_paths) paths.push_back(p.c_str());
    std::vector<tf_label> settings;
    settings.reserve(input.settings.size());
    for (const auto &[k, v] : input.settings) settings.push_back({k.c_str(), v.c_str()});
    auto ms = input.timeout.count();
    tf_probe_request request{};
    request.struct_size = sizeof request;
    request.pid = input.pid;
    request.process_name = input.process_name.c_str();
    request.n_api_paths = static_cast<uint32_t>(paths.size());
    request.api_paths = paths.data();
    request.timeout_ms = static_cast<int32_t>(ms < 1 ? 1 : (ms > INT32_MAX ? INT32_MAX : ms));
    request.n_settings = static_cast<uint32_t>(settings.size());
    request.settings = settings.data();

    ProbeContext ctx{&plugin, &out.engines};
    tf_engine_sink sink{sizeof(tf_engine_sink), &ctx, &engine_add};
    tf_error err{};
    int rc = fn(&request, &sink, &err);
    out.result = result_of(rc, err);
    if (rc >= 0) out.result.code = static_cast<int>(out.engines.size());
    return out;
}

} // namespace turtlefinder::plugins
