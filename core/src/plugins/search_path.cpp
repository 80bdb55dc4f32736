// SPDX-License-Identifier: Apache-2.0
#include "plugins/search_path.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

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

void check_plugin_dirs(const std::vector<std::string> &dirs) {
    for (const auto &dir : dirs) {
        struct stat st {};
        int err = ::stat(dir.c_str(), &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        if (err != 0) throw std::runtime_error(fmt::format("plugin directory \"{}\": {}", dir, std::strerror(err)));
    }
}

} // namespace turtlefinder::plugins
