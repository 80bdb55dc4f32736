// SPDX-License-Identifier: Apache-2.0
#include "plugins/search_path.hpp"

#include <cstdlib>
#include <string_view>

#include "installation.hpp"

namespace turtlefinder::plugins {

std::vector<std::string> default_plugin_dirs() {
    std::vector<std::string> dirs;
    if (const char *env = std::getenv("TURTLEFINDER_PLUGIN_PATH")) {
        std::string_view rest = env;
        while (!rest.empty()) {
            auto colon = rest.find(':');
            std::string_view entry = rest.substr(0, colon);
            if (!entry.empty()) dirs.emplace_back(entry);
            rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
        }
    }
    // No build-tree path is compiled in: a build tree's plugins are found
    // through TURTLEFINDER_PLUGIN_PATH, which `meson devenv` and the tests set.
    dirs.push_back(installation_path(TF_RELATIVE_PLUGIN_DIR, TF_INSTALLED_PLUGIN_DIR));
    return dirs;
}

} // namespace turtlefinder::plugins
