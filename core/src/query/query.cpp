// SPDX-License-Identifier: Apache-2.0
#include "query/query.hpp"

#include <algorithm>
#include <optional>

#include "hierarchy/hierarchy.hpp"
#include "log.hpp"

namespace turtlefinder::query {

namespace {

// A watcher republishes its view after every relist, sharing the objects of
// unchanged containers: a new snapshot holding the same objects is the same view.
bool same_view(const std::shared_ptr<const watch::Snapshot> &a, const std::shared_ptr<const watch::Snapshot> &b) {
    if (a == b) return true;
    return a && b && a->size() == b->size() && std::equal(a->begin(), a->end(), b->begin());
}

// The PIDs hierarchy::stack walks from an engine: the engine's and its ancestors'.
void ancestry(const procfs::ProcessTable &table, int pid, std::vector<int> &out) {
    out.clear();
    for (int hops = 0; pid > 0 && hops < 4096; ++hops) {
        out.push_back(pid);
        const auto *p = table.find(pid);
        if (p == nullptr || p->ppid == pid) break;
        pid = p->ppid;
    }
}

int parent_of(const procfs::ProcessTable &table, int pid) {
    const auto *p = pid > 0 ? table.find(pid) : nullptr;
    return p != nullptr ? p->ppid : 0;
}

// Translates the engine's container PIDs again (those whose host PID is
// still in the table are kept) and records what the result came from.
void derive(const procfs::ProcessTable &table, const Input &in, std::optional<hierarchy::PidTranslator> &translator) {
    auto &st = *in.state;
    auto &memo = st.memo;
    memo.snapshot = in.snapshot;
    memo.host_pids.clear();
    memo.shim_pids.clear();
    memo.untranslated = false;
    memo.engine.reset(); // containers are built again
    std::map<std::pair<std::string, int>, int> still;
    for (const auto &raw : *in.snapshot) {
        int host = 0;
        std::pair<std::string, int> key{raw->id, raw->pid};
        if (auto it = st.host_pids.find(key); it != st.host_pids.end() && table.find(it->second) != nullptr) {
            host = it->second;
        } else if (raw->pid > 0) {
            if (!translator) translator.emplace(table);
            if (auto h = translator->to_host(st.pidns_pid, raw->pid)) {
                host = *h;
            } else {
                memo.untranslated = true;
                log().debug("cannot translate PID {} of container {} on \"{}\"", raw->pid, raw->id, st.engine->api);
            }
        }
        if (host > 0) still.emplace(std::move(key), host);
        memo.host_pids.push_back(host);
        memo.shim_pids.push_back(parent_of(table, host));
    }
    st.host_pids = std::move(still);
}

// True if the memo still holds for this table: same view, every host PID
// still there. Sets `moved` (and records the new parents) if a container's
// parent process changed: the placement must then be redone.
bool still_valid(const procfs::ProcessTable &table, const Input &in, bool &moved) {
    auto &memo = in.state->memo;
    if (memo.untranslated || !same_view(memo.snapshot, in.snapshot)) return false;
    const std::size_t n = memo.host_pids.size();
    for (std::size_t i = 0; i < n; ++i) {
        int host = memo.host_pids[i];
        if (host <= 0) continue; // the engine reported no PID: nothing to check
        const auto *p = table.find(host);
        if (p == nullptr) return false;
        if (p->ppid != memo.shim_pids[i]) {
            memo.shim_pids[i] = p->ppid;
            moved = true;
        }
    }
    return true;
}

} // namespace

Container to_container(const std::shared_ptr<const Engine> &engine, const plugins::ReportedContainer &raw,
                       int host_pid) {
    Container c;
    c.id = raw.id;
    c.name = raw.name.empty() ? raw.id : raw.name;
    c.type = engine->type;
    c.flavor = engine->flavor;
    c.pid = host_pid;
    c.paused = raw.paused;
    c.stale = engine->state == Engine::State::stale;
    c.labels = raw.labels;
    c.labels[prefix_label] = engine->prefix;
    c.engine = engine;
    return c;
}

void Assembler::update(const procfs::ProcessTable &table, const std::vector<Input> &engines) {
    ++counters_.updates;
    const std::size_t n = engines.size();
    bool replace = placed_.size() != n;
    std::optional<hierarchy::PidTranslator> translator; // built on first need: it reads NSpid chains
    for (std::size_t e = 0; e < n; ++e) {
        const auto &in = engines[e];
        if (!replace && placed_[e] != in.state) replace = true;
        // Replaced since the last query (its state changed): its children
        // must point at the new copy.
        if (in.state->memo.engine && in.state->memo.engine != in.state->engine) replace = true;
        bool moved = false;
        if (still_valid(table, in, moved)) {
            // The same view with the same PIDs: keep the new snapshot, whose
            // objects the containers were built from.
            in.state->memo.snapshot = in.snapshot;
            if (moved) replace = true;
            continue;
        }
        derive(table, in, translator);
        ++counters_.engines_derived;
        replace = true;
    }
    chains_.resize(n);
    std::vector<int> chain;
    for (std::size_t e = 0; e < n; ++e) {
        ancestry(table, engines[e].pid, chain);
        if (chain != chains_[e]) {
            chains_[e].swap(chain);
            replace = true;
        }
    }

    if (replace) {
        ++counters_.placements;
        std::vector<hierarchy::EngineNode> enodes;
        std::vector<hierarchy::ContainerNode> cnodes;
        enodes.reserve(n);
        for (std::size_t e = 0; e < n; ++e) {
            const auto &in = engines[e];
            enodes.push_back({in.pid});
            std::size_t i = 0;
            for (const auto &raw : *in.snapshot)
                cnodes.push_back({e, raw->name.empty() ? raw->id : raw->name, in.state->memo.host_pids[i++]});
        }
        auto placement = hierarchy::stack(table, enodes, cnodes);
        // Engines are immutable once published: replace those whose place
        // changed, outermost first so children point at their parent's final copy.
        std::vector<std::size_t> order(n);
        std::vector<int> depth(n, 0);
        for (std::size_t e = 0; e < n; ++e) {
            order[e] = e;
            for (auto p = placement.parent[e]; p && depth[e] < 64; p = placement.parent[*p]) ++depth[e];
        }
        std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return depth[a] < depth[b]; });
        for (auto e : order) {
            auto &st = *engines[e].state;
            std::shared_ptr<const Engine> parent =
                placement.parent[e] ? std::shared_ptr<const Engine>(engines[*placement.parent[e]].state->engine)
                                    : nullptr;
            if (st.engine->prefix != placement.prefix[e] || st.engine->parent != parent) {
                auto copy = std::make_shared<Engine>(*st.engine);
                copy->prefix = placement.prefix[e];
                copy->parent = parent;
                st.engine = copy;
            }
        }
        placed_.resize(n);
        for (std::size_t e = 0; e < n; ++e) placed_[e] = engines[e].state;
    }

    for (const auto &in : engines) {
        auto &memo = in.state->memo;
        if (memo.engine == in.state->engine) continue;
        ++counters_.engines_rebuilt;
        memo.engine = in.state->engine;
        memo.containers.clear();
        memo.containers.reserve(in.snapshot->size());
        std::size_t i = 0;
        for (const auto &raw : *in.snapshot)
            memo.containers.push_back(to_container(memo.engine, *raw, memo.host_pids[i++]));
    }
}

std::vector<Container> Assembler::collect(const std::vector<Input> &engines) {
    std::size_t total = 0;
    for (const auto &in : engines) total += in.state->memo.containers.size();
    std::vector<Container> out;
    out.reserve(total);
    for (const auto &in : engines)
        out.insert(out.end(), in.state->memo.containers.begin(), in.state->memo.containers.end());
    return out;
}

} // namespace turtlefinder::query
