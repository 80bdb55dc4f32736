// SPDX-License-Identifier: Apache-2.0
#include <turtlefinder/model.hpp>

namespace turtlefinder {

const char *to_string(EventKind kind) {
    switch (kind) {
    case EventKind::engine_found: return "engine-found";
    case EventKind::engine_lost: return "engine-lost";
    case EventKind::started: return "started";
    case EventKind::exited: return "exited";
    case EventKind::paused: return "paused";
    case EventKind::unpaused: return "unpaused";
    case EventKind::engine_changed: return "engine-changed";
    }
    return "unknown";
}

const char *to_string(Engine::State state) {
    switch (state) {
    case Engine::State::syncing: return "syncing";
    case Engine::State::online: return "online";
    case Engine::State::stale: return "stale";
    }
    return "unknown";
}

std::vector<Group> group(const std::vector<Container> &containers) {
    std::vector<Group> groups;
    std::map<std::pair<std::string, std::string>, std::size_t> index;
    auto add = [&](const char *kind, std::string name, const Container &c) {
        // Groups are per engine: equal project names on two engines are two projects.
        auto key = std::make_pair(std::string(kind) + '\n' + (c.engine ? c.engine->id : ""), name);
        auto [it, inserted] = index.emplace(key, groups.size());
        if (inserted) groups.push_back({kind, std::move(name), {}});
        groups[it->second].containers.push_back(&c);
    };
    for (const auto &c : containers) {
        if (auto p = c.labels.find("com.docker.compose.project"); p != c.labels.end())
            add("com.docker.compose.project", p->second, c);
        auto pod = c.labels.find("io.kubernetes.pod.name");
        if (pod != c.labels.end()) {
            auto ns = c.labels.find("io.kubernetes.pod.namespace");
            add("io.kubernetes.pod", (ns != c.labels.end() ? ns->second + "/" : std::string()) + pod->second, c);
        }
    }
    return groups;
}

} // namespace turtlefinder
