// SPDX-License-Identifier: Apache-2.0
// The README's embedding example: the plugins known, then every container,
// nested engines included.
#include <turtlefinder/finder.hpp>

#include <iostream>

int main() {
    turtlefinder::Options options;
    options.online_wait = std::chrono::seconds(3); // wait for engines' first sync
    turtlefinder::Finder finder(options); // knows the installed plugins, loads those a process needs
    for (const auto &p : finder.plugins())
        std::cout << "plugin " << (p.loaded || p.deferred ? p.name : "REFUSED " + p.reason) << " " << p.file << '\n';

    for (const auto &c : finder.containers()) {
        const auto &prefix = c.engine->prefix; // "" on the host, "outer/inner" nested
        std::cout << (prefix.empty() ? "" : prefix + "/") << c.name << " pid=" << c.pid << (c.paused ? " paused" : "")
                  << " engine=" << c.engine->type << " " << c.engine->api << '\n';
    }
    for (const auto &e : finder.engines())
        std::cout << "engine " << e->type << " " << e->version << " pid=" << e->pid << '\n';
}
