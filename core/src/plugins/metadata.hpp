// SPDX-License-Identifier: Apache-2.0
// A plugin's metadata section (plugin.h, since 1.1): what it is and what it
// claims, read from its file without running any of its code.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turtlefinder::plugins {

struct PluginInfo {
    unsigned abi_major = 0, abi_minor = 0;
    std::string name, version, description;
    std::vector<std::string> process_names; // engine detector
    std::vector<std::string> activator_names; // socket activator
    std::vector<std::string> socket_suffixes, service_names; // activated engine

    // As Plugin has them once loaded: "engine-detector", ...; every claim once.
    std::vector<std::string> kinds() const;
    std::vector<std::string> claims() const;
};

// A section's entries checked and parsed; `refusal` says what was wrong.
struct ParsedInfo {
    std::optional<PluginInfo> info;
    std::string refusal;
};
ParsedInfo parse_plugin_info(std::string_view section);

// Reads the section from the ELF file at `path` (never mapping it). Neither
// info nor refusal: the file has no such section (a plugin built for 1.0),
// or is not an ELF file of this machine's class, left to the dynamic
// linker to refuse.
ParsedInfo read_plugin_info(const std::string &path);

} // namespace turtlefinder::plugins
