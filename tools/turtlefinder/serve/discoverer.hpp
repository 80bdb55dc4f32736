// SPDX-License-Identifier: Apache-2.0
// The service's discoveries: one thread runs Finder::containers() every
// period, after any change an event told (so a request after an event sees
// it), when a request finds the last one too old, and after new plugin files
// appeared. Each result is kept as a snapshot, rendered once for every client.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <turtlefinder/finder.hpp>

namespace turtlefinder::serve {

struct Snapshot {
    std::vector<std::shared_ptr<const Engine>> engines;
    std::vector<Container> containers;
    std::vector<Candidate> candidates;
    std::chrono::system_clock::time_point time; // when the discovery finished
    std::chrono::steady_clock::time_point finished;
    std::chrono::steady_clock::duration took{};
    // The CLI's `--json` documents, marked as the service's view.
    std::string containers_json;
    std::string engines_json;
};

// Adds the service marker to a `turtlefinder/v1` document: "service":
// {"discovered": TIME} (the time of the service's last discovery).
std::string mark_as_service(const std::string &document, std::chrono::system_clock::time_point discovered);

class Discoverer {
public:
    using Done = std::function<void(std::shared_ptr<const Snapshot>)>;

    Discoverer(Finder &finder, std::chrono::milliseconds period);
    ~Discoverer(); // stop()s
    Discoverer(const Discoverer &) = delete;
    Discoverer &operator=(const Discoverer &) = delete;

    // The last snapshot; null before the first discovery ended.
    std::shared_ptr<const Snapshot> latest() const;
    // Calls `done` with a snapshot that is younger than the period and was
    // taken after every change noted so far: at once when the latest is,
    // else from the discovery thread once the next discovery ended. [any-thread]
    void fresh(Done done);
    // An event told a change: the next request waits for a new discovery. [any-thread]
    void changed();
    // Plugin files appeared: read the plugin directories before the next discovery. [any-thread]
    void reload_plugins();
    // Ends the thread; pending `fresh` callers get the latest snapshot (maybe null).
    void stop();

private:
    void run();
    std::shared_ptr<const Snapshot> discover();

    Finder &finder_;
    const std::chrono::milliseconds period_;
    mutable std::mutex mu_;
    std::condition_variable wake_;
    std::shared_ptr<const Snapshot> latest_;
    std::vector<Done> waiting_;
    bool dirty_ = true; // a change since the latest snapshot began
    bool reload_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace turtlefinder::serve
