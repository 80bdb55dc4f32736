// SPDX-License-Identifier: Apache-2.0
// The data a Finder hands to host applications: engines and their containers.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <turtlefinder/export.hpp>

namespace turtlefinder {

// Label put on every container: the chain of enclosing container names of the
// container's engine, outermost first, joined with '/'; empty on the host.
inline constexpr const char *prefix_label = "turtlefinder/container/prefix";

using Labels = std::map<std::string, std::string>;

// One container engine API endpoint being watched.
struct Engine {
    std::string id; // as the engine reports it
    std::string type; // API kind: "docker.com", "containerd.io", "k8s.io/cri-api", "podman.io"
    std::string flavor; // product behind the API
    std::string version;
    std::string api; // API path as reachable from here
    int pid = 0; // engine process, in the Finder's PID namespace
    std::string plugin; // plugin that created the client
    std::string prefix; // enclosing container names, outermost first; "" on the host
    std::shared_ptr<const Engine> parent; // engine whose container holds this one; null on the host

    // How far its containers can be trusted.
    enum class State {
        syncing, // found; its first list has not completed yet (containers: none yet)
        online, // its view is current
        stale, // its API fails while its process lives: containers are its last good view
    };
    State state = State::syncing;
    std::string error; // last error of its API; "" when none since it was online
    std::chrono::system_clock::time_point since; // when it entered `state`
    // Owner: the real UID of the engine process as the Finder's user
    // namespace sees it (a rootless engine's user, not the root it has inside
    // its own user namespace); -1 when unknown.
    std::int64_t uid = -1;
};

TF_PUBLIC const char *to_string(Engine::State state);

// One alive (running or paused) container.
struct Container {
    std::string id;
    std::string name;
    std::string type; // engine type
    std::string flavor; // engine flavor
    int pid = 0; // init process, in the Finder's PID namespace; 0 when unknown
    bool paused = false;
    bool stale = false; // from the last good view of a stale engine (see Engine::State)
    Labels labels;
    std::shared_ptr<const Engine> engine;
};

// Containers of one compose project or one Kubernetes pod.
struct Group {
    std::string kind; // "com.docker.compose.project" or "io.kubernetes.pod"
    std::string name; // project name, or "namespace/pod"
    std::vector<const Container *> containers;
};

// Groups `containers` by compose project and Kubernetes pod; the pointers
// borrow from `containers`.
TF_PUBLIC std::vector<Group> group(const std::vector<Container> &containers);

// engine_changed: the engine's state, error or place (prefix, parent)
// changed; the event's engine is the engine as it now is. engine_lost: the
// engine and all its containers are gone.
enum class EventKind { engine_found, engine_lost, started, exited, paused, unpaused, engine_changed };

struct Event {
    EventKind kind;
    std::shared_ptr<const Engine> engine; // placed (prefix, parent) and with its state
    Container container; // empty for engine events; for exited, what was last known
    std::chrono::system_clock::time_point time; // when the Finder told it
    bool initial = false; // part of the state handed over at subscription (Finder::Replay::state)
};

TF_PUBLIC const char *to_string(EventKind kind);

} // namespace turtlefinder
