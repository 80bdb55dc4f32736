// SPDX-License-Identifier: Apache-2.0
// Footprint baselines (figure 5). Without arguments: a process that links
// what the CLI links and holds a Finder that knows every plugin but never
// discovers anything, so it has loaded none (plugins with metadata are
// loaded once a process they claim runs). `--plugin-dir DIR` (repeatable)
// knows the plugins of DIR only; `--discover` runs one discovery, which loads
// the plugins this host needs, and keeps watching what it found. Prints
// "ready", the plugins loaded and what was found, then waits for SIGTERM or
// SIGINT.
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
    std::size_t containers = discover ? finder.containers().size() : 0;
    std::size_t loaded = 0;
    std::string names;
    for (const auto &p : finder.plugins())
        if (p.loaded) {
            ++loaded;
            names += (names.empty() ? "" : " ") + p.name;
        }
    std::cout << "ready " << loaded << " plugins (" << names << "), " << finder.engine_count() << " engines, "
              << containers << " containers" << std::endl;
    int sig = 0;
    sigwait(&set, &sig);
    return 0;
}
