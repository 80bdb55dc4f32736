// SPDX-License-Identifier: Apache-2.0
// One loaded and initialised plugin, as the rest of the core sees it: what
// it claims and its probes, in core types.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/engine_handle.hpp"
#include "plugins/metadata.hpp"

struct tf_plugin_descriptor;

namespace turtlefinder::plugins {

// Shared ownership keeps the shared object mapped as long as anything (an
// engine handle, a registry) holds the plugin. Made by the Registry.
class Plugin : public std::enable_shared_from_this<Plugin> {
public:
    // `library` (null for in-memory entries) keeps `descriptor` mapped.
    Plugin(std::string file, std::shared_ptr<void> library, const tf_plugin_descriptor *descriptor);
    ~Plugin(); // the plugin's deinit runs when this was its last holder
    Plugin(const Plugin &) = delete;
    Plugin &operator=(const Plugin &) = delete;

    // Inits the plugin and reads what it offers: an empty string on
    // success, else why it is refused.
    std::string start();

    const std::string &file() const { return file_; } // path, or "<builtin:NAME>" for in-memory entries
    const std::string &name() const { return name_; }
    const std::string &version() const { return version_; }
    const std::string &description() const { return description_; }
    // The plugin ABI version it was built for.
    unsigned abi_major() const;
    unsigned abi_minor() const;
    // "engine-detector", "socket-activator", "activated-engine": what it offers.
    const std::vector<std::string> &kinds() const { return kinds_; }
    // True if the plugin answers the extension id (tests of the contract).
    bool has_extension(const char *id) const;

    // Each role: whether the plugin has it, and what it claims in it. An
    // engine detector and a socket activator claim process names.
    bool is_detector() const;
    bool detects(std::string_view process_name) const;
    bool is_activator() const;
    bool activates(std::string_view process_name) const;
    // An activated engine claims socket suffixes and service process names.
    bool is_activated_engine() const;
    bool serves_socket(std::string_view socket_path) const;
    bool is_service(std::string_view process_name) const;
    // Every name and suffix it claims, without repeats.
    std::vector<std::string> claims() const;
    // Every process name it claims in any role.
    std::vector<std::string> claimed_process_names() const;
    // What differs between the started plugin and its metadata section
    // (name, claims in each role), or an empty string when nothing does.
    std::string differs_from(const PluginInfo &info) const;

    // Probes an engine process with the detector, or an activated service
    // with the activated-engine probe. Engines lacking a v1 member are
    // refused back to the plugin (which destroys them) with a warning.
    ProbeOutcome probe(const ProbeInput &input) const;
    ProbeOutcome probe_activated(const ProbeInput &input) const;

private:
    struct Capabilities; // the plugin's vtables, copied
    ProbeOutcome call_probe(bool activated, const ProbeInput &input) const;

    std::string file_;
    std::shared_ptr<void> library_;
    const tf_plugin_descriptor *descriptor_;
    std::unique_ptr<Capabilities> capabilities_;
    bool initialised_ = false;
    std::string name_, version_, description_;
    std::vector<std::string> kinds_;
    std::vector<std::string> process_names_, activator_names_, socket_suffixes_, service_names_;
};

} // namespace turtlefinder::plugins
