// SPDX-License-Identifier: Apache-2.0
// `turtlefinder serve`: one Finder, discovering in the background, served
// read-only over HTTP/1.1 (Boost.Beast) on a unix socket, TCP when asked, or
// sockets systemd passes (socket activation).
#pragma once

#include <memory>
#include <vector>

#include <turtlefinder/finder.hpp>

#include "routes.hpp"
#include "settings.hpp"

namespace turtlefinder::serve {

class Service {
public:
    // Opens the listening sockets (throws std::runtime_error saying which
    // and why one cannot be opened) and starts discovering.
    Service(Finder &finder, Settings settings);
    ~Service();
    Service(const Service &) = delete;
    Service &operator=(const Service &) = delete;

    // Serves until SIGTERM or SIGINT (or stop()), then drains: stops
    // accepting, ends event streams, finishes the responses under way.
    void run();
    // Starts the drain. [any-thread]
    void stop();

    // What the service listens on ("unix:PATH", "tcp:ADDR:PORT"), in order.
    std::vector<std::string> endpoints() const;
    const std::vector<Route> &routes() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace turtlefinder::serve
