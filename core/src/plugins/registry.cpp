// SPDX-License-Identifier: Apache-2.0
#include "plugins/registry.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <turtlefinder/plugin.h>

#include "log.hpp"
#include "plugins/loader.hpp"

namespace turtlefinder::plugins {

namespace fs = std::filesystem;

namespace {

// The v1 descriptor ends with get_extension: anything shorter cannot be used.
constexpr std::size_t descriptor_v1_size =
    offsetof(tf_plugin_descriptor, get_extension) + sizeof(tf_plugin_descriptor::get_extension);

bool valid_name(const char *name) {
    std::size_t n = std::strlen(name);
    if (n == 0 || n > 64) return false;
    return std::all_of(name, name + n,
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

} // namespace

Registry::Registry() = default;
Registry::~Registry() = default;

bool Registry::refuse(const std::string &file, const std::string &name, const std::string &reason) {
    log().warn("plugin \"{}\" refused: {}", file, reason);
    PluginStatus s;
    s.file = file;
    s.name = name;
    s.reason = reason;
    statuses_.push_back(std::move(s));
    return false;
}

bool Registry::record_disabled(PluginStatus status, const char *how) {
    log().info("plugin \"{}\" ({}) disabled by configuration{}", status.file, status.name, how);
    status.reason = "disabled";
    statuses_.push_back(std::move(status));
    return false;
}

void Registry::load_directories(const std::vector<std::string> &dirs, const std::set<std::string> &disabled) {
    std::set<fs::path> seen;
    for (const auto &dir : dirs) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) {
            log().debug("plugin directory \"{}\" skipped: not a directory", dir);
            continue;
        }
        if (!seen.insert(fs::canonical(dir, ec)).second) continue;
        std::vector<std::string> files;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            const fs::path &p = it->path();
            std::error_code fec;
            if (p.extension() == ".so" && !fs::is_directory(p, fec)) files.push_back(p.string());
        }
        if (ec) {
            log().warn("plugin directory \"{}\" cannot be read: {}", dir, ec.message());
            continue;
        }
        std::sort(files.begin(), files.end());
        for (const auto &f : files) load_file(f, disabled);
    }
}

void Registry::reload_directories(const std::vector<std::string> &dirs, const std::set<std::string> &disabled) {
    std::erase_if(statuses_, [](const PluginStatus &s) { return !s.loaded && !s.builtin; });
    load_directories(dirs, disabled);
}

void Registry::warn_unmatched(const std::set<std::string> &disabled) const {
    for (const auto &name : disabled) {
        bool known =
            std::any_of(statuses_.begin(), statuses_.end(), [&](const PluginStatus &s) { return s.name == name; });
        if (!known) log().warn("disabled_plugins names \"{}\", which matches no plugin", name);
    }
}

bool Registry::load_file(const std::string &path, const std::set<std::string> &disabled) {
    std::error_code ec;
    fs::path canonical = fs::canonical(path, ec);
    if (ec) return refuse(path, {}, fmt::format("cannot resolve: {}", ec.message()));
    if (loaded_files_.count(canonical.string()) != 0) {
        log().debug("plugin \"{}\" already loaded", path);
        return true;
    }
    if (!fs::is_regular_file(canonical, ec)) return refuse(path, {}, "not a regular file");
    if (std::string bad = insecure_reason(path); !bad.empty()) return refuse(path, {}, bad);
    // The host links this plugin in: its file (an installed copy) is not mapped.
    if (std::string stem = fs::path(path).stem().string(); builtin_names_.count(stem) != 0) {
        log().debug("plugin \"{}\" skipped: \"{}\" is built in", path, stem);
        return true;
    }
    // A disabled plugin whose file is named after it is not even loaded:
    // dlopen alone maps its libraries, and gRPC's stay mapped for good.
    if (std::string stem = fs::path(path).stem().string(); disabled.count(stem) != 0) {
        PluginStatus status;
        status.file = path;
        status.name = stem;
        return record_disabled(std::move(status), ", not loaded");
    }

    OpenedLibrary opened = open_library(canonical.string());
    if (!opened.refusal.empty()) return refuse(path, {}, opened.refusal);
    bool ok = admit(opened.descriptor, path, std::move(opened.library), disabled);
    if (ok) loaded_files_.insert(canonical.string());
    return ok;
}

bool Registry::add(const tf_plugin_descriptor *descriptor, const std::string &origin,
                   const std::set<std::string> &disabled) {
    const bool builtin = origin.empty();
    std::string file = origin;
    if (builtin)
        file =
            fmt::format("<builtin:{}>", descriptor != nullptr && descriptor->name != nullptr ? descriptor->name : "?");
    bool ok = descriptor == nullptr ? refuse(file, {}, "no descriptor") : admit(descriptor, file, nullptr, disabled);
    if (builtin) {
        statuses_.back().builtin = true; // admitted, disabled or refused: listed last
        if (descriptor != nullptr && descriptor->name != nullptr) builtin_names_.insert(descriptor->name);
    }
    return ok;
}

bool Registry::admit(const tf_plugin_descriptor *d, const std::string &file, std::shared_ptr<void> library,
                     const std::set<std::string> &disabled) {
    const tf_abi_version &abi = d->abi;
    if (abi.major != TF_ABI_VERSION_MAJOR)
        return refuse(file, {},
                      fmt::format("ABI major version differs: plugin {}.{}, host {}.{}", abi.major, abi.minor,
                                  TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR));
    if (abi.minor > TF_ABI_VERSION_MINOR)
        return refuse(file, {},
                      fmt::format("ABI minor version too new: plugin {}.{}, host {}.{}", abi.major, abi.minor,
                                  TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR));
    if (d->struct_size < descriptor_v1_size)
        return refuse(
            file, {},
            fmt::format("entry struct too small: {} bytes, at least {} expected", d->struct_size, descriptor_v1_size));
    if (d->name == nullptr) return refuse(file, {}, "entry has a NULL name");
    std::string name = d->name;
    if (!valid_name(d->name)) return refuse(file, {}, fmt::format("invalid name \"{}\" (want [a-z0-9-]+)", name));
    if (d->get_extension == nullptr) return refuse(file, name, "entry has a NULL get_extension");
    if (auto other = find(name))
        return refuse(file, name, fmt::format("name \"{}\" already taken by \"{}\"", name, other->file()));

    PluginStatus status;
    status.file = file;
    status.name = name;
    status.version = d->version != nullptr ? d->version : "";
    status.description = d->description != nullptr ? d->description : "";
    if (disabled.count(name) != 0) return record_disabled(std::move(status), "");

    auto plugin = std::make_shared<Plugin>(file, std::move(library), d);
    if (std::string failed = plugin->start(); !failed.empty()) return refuse(file, name, failed);

    status.kinds = plugin->kinds();
    status.claims = plugin->claims();
    status.loaded = true;
    log().debug("plugin \"{}\" loaded: {} {} ({})", file, name, status.version, fmt::join(status.kinds, ", "));
    statuses_.push_back(std::move(status));
    plugins_.push_back(std::move(plugin));
    return true;
}

std::shared_ptr<const Plugin> Registry::find(std::string_view name) const {
    for (const auto &p : plugins_)
        if (p->name() == name) return p;
    return nullptr;
}

std::shared_ptr<const Plugin> Registry::detector_for(std::string_view process_name) const {
    for (const auto &p : plugins_)
        if (p->detects(process_name)) return p;
    return nullptr;
}

std::shared_ptr<const Plugin> Registry::activator_for(std::string_view process_name) const {
    for (const auto &p : plugins_)
        if (p->activates(process_name)) return p;
    return nullptr;
}

std::shared_ptr<const Plugin> Registry::activated_engine_for_socket(std::string_view socket_path) const {
    for (const auto &p : plugins_)
        if (p->serves_socket(socket_path)) return p;
    return nullptr;
}

std::set<std::string, std::less<>> Registry::claimed_process_names() const {
    std::set<std::string, std::less<>> names;
    for (const auto &p : plugins_)
        for (auto &n : p->claimed_process_names()) names.insert(std::move(n));
    return names;
}

} // namespace turtlefinder::plugins
