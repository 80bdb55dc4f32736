// SPDX-License-Identifier: Apache-2.0
// The CLI's side of the node service: asks a running service first, and reads
// its answers back into the model, so that the CLI prints the service's view
// exactly as it prints its own discovery.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <turtlefinder/finder.hpp>

namespace turtlefinder::serve {

// The body of `GET target` from the service listening at the unix socket
// `socket`; nullopt when none answers there with 200 within `timeout` (no
// socket, nobody listening: at once).
std::optional<std::string> service_get(const std::string &socket, const std::string &target,
                                       std::chrono::milliseconds timeout);

// Reads the service's /v1/events.
class EventReader {
public:
    explicit EventReader(std::string socket);
    ~EventReader();
    // Asks for the stream; false when no service answers with one.
    bool open(std::chrono::milliseconds timeout);
    // Calls `on_event` with each event's data (one JSON object) until the
    // stream ends or stop() is called.
    void run(const std::function<void(const std::string &data)> &on_event);
    void stop(); // [any-thread]

private:
    std::string socket_;
    int fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    std::string data_; // read past the head
};

// A `turtlefinder/v1` document (as /v1/containers or /v1/engines serve it)
// read back into the model.
struct View {
    std::vector<std::shared_ptr<const Engine>> engines;
    std::vector<Container> containers;
    std::vector<Candidate> candidates;
};
View parse_view(const std::string &document);

// An event as `--watch --json` prints it, read back; engines are named by key
// and remembered in `engines` (engine events add and drop them).
Event parse_event(const std::string &json, std::map<std::string, std::shared_ptr<const Engine>> &engines);

} // namespace turtlefinder::serve
