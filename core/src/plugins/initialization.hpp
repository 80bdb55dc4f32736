// SPDX-License-Identifier: Apache-2.0
// A plugin's init and deinit, with the host services init hands it.
//
// init/deinit are per shared object and process-wide, while several
// registries (one per Finder) may hold the same plugin: holders are counted
// per descriptor, init runs for the first and deinit after the last.
#pragma once

#include <string>

#include <turtlefinder/plugin.h>

namespace turtlefinder::plugins {

// Counts one more holder, calling init for the first. Returns an empty
// string on success, else why init failed (nothing is then counted).
std::string acquire(const tf_plugin_descriptor *descriptor, const std::string &name);

// Counts one holder less, calling deinit after the last.
void release(const tf_plugin_descriptor *descriptor);

} // namespace turtlefinder::plugins
