// SPDX-License-Identifier: Apache-2.0
// Query and stack: the watched engines' views turned into the containers a
// caller gets — host PIDs, engines placed into containers, prefix labels.
//
// A warm containers() call, where nothing changed, must cost little more
// than copying its result. So what is derived is kept between calls and
// derived again only when an input changed: an engine's view (snapshot), a
// container's host PID vanishing from the process table, a container's parent
// process (its shim), an engine's position in the process tree, or the set of
// engines.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <turtlefinder/model.hpp>

#include "procfs/procfs.hpp"
#include "watch/watcher.hpp"

namespace turtlefinder::query {

// What a query keeps of one watched engine between calls. The Finder owns
// one per watched engine; one query at a time uses it.
struct EngineState {
    // The published engine: replaced, never changed in place, when its place
    // (prefix, parent) changes.
    std::shared_ptr<Engine> engine;
    // Process whose PID namespace the engine reports container PIDs in.
    int pidns_pid = 0;
    // Host PIDs of containers, by (container id, engine-side PID). Event
    // callbacks read it too, under the Finder's lock.
    std::map<std::pair<std::string, int>, int> host_pids;

    // The finished containers of the last query and what they came from.
    struct Memo {
        std::shared_ptr<const watch::Snapshot> snapshot;
        std::vector<int> host_pids; // per snapshot entry; 0: unknown
        std::vector<int> shim_pids; // parent of each host PID in that table (0: none)
        bool untranslated = false; // a PID could not be translated: try again next call
        std::shared_ptr<const Engine> engine; // the engine the containers point at
        std::vector<Container> containers;
    } memo;
};

// One engine of a query.
struct Input {
    EngineState *state = nullptr;
    // Where the engine sits in the process tree: its process, or, for a
    // service activated after the scan, its activator.
    int pid = 0;
    std::shared_ptr<const watch::Snapshot> snapshot;
};

class Assembler {
public:
    // Derives what changed since the last call: host PIDs, placement, each
    // engine's published copy and finished containers. Call with the lock
    // that guards the states' `engine` and `host_pids` held.
    void update(const procfs::ProcessTable &table, const std::vector<Input> &engines);
    // Copies out the finished containers of `engines` (as given to the last
    // update), in that order. Needs no lock beyond the one that serializes
    // queries.
    static std::vector<Container> collect(const std::vector<Input> &engines);

    // What the last calls had to derive again (tests and profiling).
    struct Counters {
        std::uint64_t updates = 0;
        std::uint64_t engines_derived = 0; // host PIDs translated again
        std::uint64_t engines_rebuilt = 0; // containers built again
        std::uint64_t placements = 0; // hierarchy stacked again
    };
    const Counters &counters() const { return counters_; }

private:
    // The hierarchy's inputs at the last placement, beyond the memos.
    std::vector<EngineState *> placed_;
    std::vector<std::vector<int>> chains_; // per engine: its PID and its ancestors' in that table
    Counters counters_;
};

// A container as the caller sees it.
Container to_container(const std::shared_ptr<const Engine> &engine, const plugins::ReportedContainer &raw,
                       int host_pid);

} // namespace turtlefinder::query
