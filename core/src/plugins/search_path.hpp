// SPDX-License-Identifier: Apache-2.0
// Where plugins are looked for when the caller names no directory.
#pragma once

#include <string>
#include <vector>

namespace turtlefinder::plugins {

// Directories searched when Options::default_plugin_dirs is set: the build
// tree's plugin folders when running from it, else the installed folder; plus
// TURTLEFINDER_PLUGIN_PATH (colon separated) first.
std::vector<std::string> default_plugin_dirs();

} // namespace turtlefinder::plugins
