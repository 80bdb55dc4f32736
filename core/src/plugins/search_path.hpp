// SPDX-License-Identifier: Apache-2.0
// Where plugins are looked for when the caller names no directory.
#pragma once

#include <string>
#include <vector>

namespace turtlefinder::plugins {

// Directories searched when Options::default_plugin_dirs is set:
// TURTLEFINDER_PLUGIN_PATH (colon separated), then the installation's plugin
// folder (see installation_path).
std::vector<std::string> default_plugin_dirs();

// Throws std::runtime_error naming the first of `dirs` that is not a
// directory, with the reason ("No such file or directory", "Not a
// directory"): directories a caller names are meant to exist, unlike the
// default ones.
void check_plugin_dirs(const std::vector<std::string> &dirs);

} // namespace turtlefinder::plugins
