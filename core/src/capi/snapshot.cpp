// SPDX-License-Identifier: Apache-2.0
// Snapshots of containers and engines, and their accessors.
#include <algorithm>
#include <cstring>

#include "capi/capi.hpp"

namespace turtlefinder::capi {

void fill_container(tfc_container &out, Container c, const tfc_engine *engine) {
    out.container = std::move(c);
    out.engine = engine;
    out.labels.clear();
    for (const auto &[key, value] : out.container.labels) out.labels.emplace_back(&key, &value);
}

std::size_t depth(const Engine &e) {
    std::size_t d = 0;
    for (const Engine *p = e.parent.get(); p != nullptr && d < 64; p = p->parent.get()) ++d;
    return d;
}

std::unique_ptr<tfc_snapshot> make_snapshot(std::vector<Container> containers,
                                            const std::vector<std::shared_ptr<const Engine>> &engines) {
    auto snap = std::make_unique<tfc_snapshot>();
    std::map<const Engine *, tfc_engine *> index;
    std::vector<std::shared_ptr<const Engine>> pending = engines;
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

} // namespace turtlefinder::capi

using namespace turtlefinder::capi;

namespace {

const char *text(const std::string &s) { return s.c_str(); }

static_assert(static_cast<int>(tf::Engine::State::syncing) + 1 == TFC_ENGINE_SYNCING &&
                  static_cast<int>(tf::Engine::State::stale) + 1 == TFC_ENGINE_STALE,
              "tfc_engine_state follows Engine::State");

} // namespace

extern "C" {

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

tfc_engine_state tfc_engine_get_state(const tfc_engine *e) {
    if (e == nullptr) return static_cast<tfc_engine_state>(0);
    return static_cast<tfc_engine_state>(static_cast<int>(e->engine->state) + 1);
}

const char *tfc_engine_state_name(tfc_engine_state state) {
    // Any int may come from C: read it as one (see tfc_set_log_level).
    int raw = 0;
    static_assert(sizeof raw == sizeof state);
    std::memcpy(&raw, &state, sizeof raw);
    if (raw < TFC_ENGINE_SYNCING || raw > TFC_ENGINE_STALE) return nullptr;
    return tf::to_string(static_cast<tf::Engine::State>(raw - 1));
}

const char *tfc_engine_error(const tfc_engine *e) { return e != nullptr ? text(e->engine->error) : nullptr; }

int64_t tfc_engine_since_ms(const tfc_engine *e) {
    if (e == nullptr) return 0;
    return std::chrono::duration_cast<std::chrono::milliseconds>(e->engine->since.time_since_epoch()).count();
}

int tfc_container_stale(const tfc_container *c) { return c != nullptr && c->container.stale ? 1 : 0; }

tfc_event_kind tfc_event_get_kind(const tfc_event *ev) {
    return ev != nullptr ? ev->kind : static_cast<tfc_event_kind>(0);
}
const tfc_engine *tfc_event_engine(const tfc_event *ev) { return ev != nullptr ? &ev->engine : nullptr; }
const tfc_container *tfc_event_container(const tfc_event *ev) {
    return ev != nullptr && ev->has_container ? &ev->container : nullptr;
}

} // extern "C"
