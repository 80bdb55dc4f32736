// SPDX-License-Identifier: Apache-2.0
// The plugins a Finder uses: admitted or refused (with the reason), and
// looked up by what they claim.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <turtlefinder/finder.hpp>

#include "plugins/loaded_plugin.hpp"

struct tf_plugin_descriptor;

namespace turtlefinder::plugins {

// Loading (load_*, add) is not thread-safe; once loaded, the const lookups
// may run from any number of threads.
class Registry {
public:
    Registry();
    ~Registry(); // deinit()s every plugin no one else holds any more
    Registry(const Registry &) = delete;
    Registry &operator=(const Registry &) = delete;

    // Loads every shared object (*.so) in each directory, in order. Broken ones
    // are skipped with one warning naming the file and the reason, and listed
    // in statuses(). Plugins whose name is in `disabled` are not initialised.
    void load_directories(const std::vector<std::string> &dirs, const std::set<std::string> &disabled = {});
    // Loads the files of `dirs` not loaded yet, and tries those refused or
    // disabled before again (their earlier statuses are dropped).
    void reload_directories(const std::vector<std::string> &dirs, const std::set<std::string> &disabled = {});
    // Warns once for each name in `disabled` that matches no plugin found (a
    // typo would otherwise leave the plugin enabled without a word).
    void warn_unmatched(const std::set<std::string> &disabled) const;
    // Loads one file; false (and a logged reason) if refused.
    bool load_file(const std::string &path, const std::set<std::string> &disabled = {});
    // Registers an in-memory descriptor (tests; built-in plugins); an empty
    // `origin` means built in: listed as "<builtin:NAME>", and load_file
    // then skips a file named NAME.so.
    bool add(const tf_plugin_descriptor *descriptor, const std::string &origin,
             const std::set<std::string> &disabled = {});

    const std::vector<std::shared_ptr<const Plugin>> &plugins() const { return plugins_; }
    const std::vector<PluginStatus> &statuses() const { return statuses_; }

    // The first plugin whose detector claims `process_name`, or null.
    std::shared_ptr<const Plugin> detector_for(std::string_view process_name) const;
    std::shared_ptr<const Plugin> activator_for(std::string_view process_name) const;
    // The first activated-engine plugin with a suffix that `socket_path` ends in.
    std::shared_ptr<const Plugin> activated_engine_for_socket(std::string_view socket_path) const;
    // Every process name any detector, activator or activated engine claims.
    std::set<std::string, std::less<>> claimed_process_names() const;
    // The loaded plugin called `name`, or null.
    std::shared_ptr<const Plugin> find(std::string_view name) const;

private:
    // Validates, initialises and registers a descriptor; `library` (null for
    // in-memory entries) keeps its shared object mapped.
    bool admit(const tf_plugin_descriptor *descriptor, const std::string &file, std::shared_ptr<void> library,
               const std::set<std::string> &disabled);
    bool refuse(const std::string &file, const std::string &name, const std::string &reason);
    // Lists a plugin the configuration disabled (one info line); returns false.
    bool record_disabled(PluginStatus status, const char *how);

    std::vector<std::shared_ptr<const Plugin>> plugins_;
    std::vector<PluginStatus> statuses_;
    std::set<std::string> loaded_files_; // canonical paths, so a file seen twice loads once
    std::set<std::string, std::less<>> builtin_names_;
};

} // namespace turtlefinder::plugins
