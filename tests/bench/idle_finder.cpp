// SPDX-License-Identifier: Apache-2.0
// Footprint baselines (figure 5). Without arguments: a process that links
// what the CLI links and holds a Finder with every plugin loaded (so their
// libraries — gRPC, protobuf, Boost — are mapped), but never discovers
// anything. `--plugin-dir DIR` (repeatable) loads the plugins of DIR only;
// `--discover` runs one discovery and keeps watching what it found. Prints
// "ready" once there, then waits for SIGTERM or SIGINT.
//
// Loading only some plugins needs other directories, not `disabled_plugins`:
// a disabled plugin is still loaded to learn its name, and libraries with
// unique symbols (gRPC's, protobuf's) stay mapped after it is refused.
#include <signal.h>

#include <iostream>
#include <string>

#include <turtlefinder/finder.hpp>

int main(int argc, char **argv) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr); // before any thread exists: none gets these signals
    turtlefinder::Options options;
    bool discover = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--plugin-dir" && i + 1 < argc) {
            options.plugin_dirs.push_back(argv[++i]);
            options.default_plugin_dirs = false;
        } else if (arg == "--discover") {
            discover = true;
        } else {
            std::cerr << "usage: tf-bench-idle-finder [--plugin-dir DIR]... [--discover]\n";
            return 2;
        }
    }
    turtlefinder::Finder finder(options);
    std::size_t loaded = 0;
    for (const auto &p : finder.plugins()) loaded += p.loaded ? 1 : 0;
    std::size_t containers = discover ? finder.containers().size() : 0;
    std::cout << "ready " << loaded << " plugins, " << finder.engine_count() << " engines, " << containers
              << " containers" << std::endl;
    int sig = 0;
    sigwait(&set, &sig);
    return 0;
}
