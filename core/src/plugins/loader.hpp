// SPDX-License-Identifier: Apache-2.0
// Opening a plugin file: who may have put it there, whether it is a plugin
// at all (read from the ELF file, before any of its code runs), dlopen.
#pragma once

#include <memory>
#include <string>

struct tf_plugin_descriptor;

namespace turtlefinder::plugins {

// Checks that a plugin file (and the directories it sits in) could only have
// been put there by root: owned by root, writable by no group or other. Only
// enforced when running as root, as sudo does for its plugins. Returns the
// reason for refusal, or an empty string.
std::string insecure_reason(const std::string &path);

struct OpenedLibrary {
    std::shared_ptr<void> library; // keeps the shared object mapped
    const tf_plugin_descriptor *descriptor = nullptr;
    std::string refusal; // why it was not opened; then the rest is empty
};

// Opens the shared object at `canonical` (a resolved path of a regular
// file) and finds its entry. The ELF header and symbol table are read
// first, so no constructor of a file that is not a plugin ever runs.
OpenedLibrary open_library(const std::string &canonical);

} // namespace turtlefinder::plugins
