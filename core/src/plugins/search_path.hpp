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

} // namespace turtlefinder::plugins
