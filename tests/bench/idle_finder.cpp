// SPDX-License-Identifier: Apache-2.0
// Footprint baseline: a process that links what the CLI links and holds a
// Finder with every plugin loaded (so their libraries — gRPC, protobuf,
// Boost — are mapped), but never discovers anything. Prints "ready" once
// loaded, then waits for SIGTERM or SIGINT.
#include <signal.h>

#include <iostream>

#include <turtlefinder/finder.hpp>

int main() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr); // before any thread exists
    turtlefinder::Finder finder;
    std::size_t loaded = 0;
    for (const auto &p : finder.plugins()) loaded += p.loaded ? 1 : 0;
    std::cout << "ready " << loaded << " plugins" << std::endl;
    int sig = 0;
    sigwait(&set, &sig);
    return 0;
}
