// SPDX-License-Identifier: Apache-2.0
#include "registry.hpp"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>

#include <boost/dll/library_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "installation.hpp"
#include "log.hpp"

namespace turtlefinder::plugins {

namespace fs = std::filesystem;

namespace {

// Bounds on what a plugin may claim: more is a bug, not a configuration.
constexpr uint32_t max_claims = 1024;
// `comm` is at most 15 bytes; a longer name can never match.
constexpr std::size_t max_comm = 15;

// The v1 descriptor ends with get_extension: anything shorter cannot be used.
constexpr std::size_t descriptor_v1_size =
    offsetof(tf_plugin_descriptor, get_extension) + sizeof(tf_plugin_descriptor::get_extension);

bool valid_name(const char *name) {
    std::size_t n = std::strlen(name);
    if (n == 0 || n > 64) return false;
    return std::all_of(name, name + n, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    });
}

std::string errno_text(int code) {
    return fmt::format("{} ({})", code, std::strerror(code < 0 ? -code : code));
}

// ---- host services handed to plugins --------------------------------------

struct HostContext {
    std::shared_ptr<spdlog::logger> logger;
};

void host_log(void *ctx, tf_log_level level, const char *message) {
    if (ctx == nullptr) return;
    auto &logger = *static_cast<HostContext *>(ctx)->logger;
    spdlog::level::level_enum l = spdlog::level::info;
    switch (level) {
    case TF_LOG_TRACE: l = spdlog::level::trace; break;
    case TF_LOG_DEBUG: l = spdlog::level::debug; break;
    case TF_LOG_INFO: l = spdlog::level::info; break;
    case TF_LOG_WARN: l = spdlog::level::warn; break;
    case TF_LOG_ERROR: l = spdlog::level::err; break;
    default: l = level < TF_LOG_TRACE ? spdlog::level::trace : spdlog::level::err; break;
    }
    try {
        logger.log(l, "{}", message != nullptr ? message : "(null)");
    } catch (...) {
        // Called from C: nothing may propagate; a lost log line is the lesser harm.
    }
}

const void *host_get_extension(void *, const char *) { return nullptr; }

// init/deinit are per shared object and process-wide, while several
// registries (one per Finder) may hold the same plugin: count holders per
// descriptor, init on the first and deinit after the last.
struct InitState {
    unsigned holders = 0;
    HostContext context;
    tf_host host{};
};

struct InitTable {
    std::mutex mutex;
    std::map<const tf_plugin_descriptor *, std::unique_ptr<InitState>> states;
};

InitTable &init_table() {
    static auto *table = new InitTable; // leaked: holders may outlive static destruction
    return *table;
}

// Returns an empty string on success, else why init failed.
std::string acquire(const tf_plugin_descriptor *d, const std::string &name) {
    InitTable &t = init_table();
    std::lock_guard lock(t.mutex);
    auto &state = t.states[d];
    if (!state) state = std::make_unique<InitState>();
    if (state->holders == 0 && d->init != nullptr) {
        state->context.logger = plugin_logger(name);
        state->host.struct_size = sizeof(tf_host);
        state->host.abi = {TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR, TF_ABI_VERSION_PATCH};
        state->host.ctx = &state->context;
        state->host.log = &host_log;
        state->host.get_extension = &host_get_extension;
        tf_error err{};
        int rc = d->init(&state->host, &err);
        err.message[TF_ERROR_MAX - 1] = '\0';
        if (rc < 0) {
            t.states.erase(d);
            return fmt::format("init failed: {}{}{}", errno_text(rc), err.message[0] ? ": " : "",
                               err.message);
        }
    }
    ++state->holders;
    return {};
}

void release(const tf_plugin_descriptor *d) {
    InitTable &t = init_table();
    std::lock_guard lock(t.mutex);
    auto it = t.states.find(d);
    if (it == t.states.end()) return;
    if (--it->second->holders == 0) {
        if (d->deinit != nullptr) d->deinit();
        t.states.erase(it);
    }
}

// Copies a versioned vtable: members the plugin's struct lacks stay zero.
template <typename T>
std::optional<T> copy_extension(const tf_plugin_descriptor &d, const char *id) {
    const auto *p = static_cast<const T *>(d.get_extension(id));
    if (p == nullptr) return std::nullopt;
    T copy{};
    std::memcpy(&copy, p, std::min<std::size_t>(p->struct_size, sizeof(T)));
    copy.struct_size = static_cast<uint32_t>(std::min<std::size_t>(p->struct_size, sizeof(T)));
    return copy;
}

// Reads a {count, pointer} list of names; NULL entries are skipped.
std::string read_names(uint32_t n, const char *const *names, const char *what, std::vector<std::string> &out) {
    if (n == 0) return {};
    if (names == nullptr) return fmt::format("{}: {} entries but no array", what, n);
    if (n > max_claims) return fmt::format("{}: {} entries (more than {})", what, n, max_claims);
    for (uint32_t i = 0; i < n; ++i)
        if (names[i] != nullptr && names[i][0] != '\0') out.emplace_back(names[i]);
    return {};
}

class LoadedPlugin final : public Plugin {
public:
    LoadedPlugin(std::string file, std::shared_ptr<void> library, const tf_plugin_descriptor *d)
        : file_(std::move(file)), library_(std::move(library)), raw_(d) {
        std::memcpy(&descriptor_, d, std::min<std::size_t>(d->struct_size, sizeof descriptor_));
    }
    ~LoadedPlugin() override {
        if (initialised_) release(raw_);
        // library_ is released after this body: the code deinit ran is still mapped.
    }

    // Inits and reads the capabilities; an empty string on success.
    std::string start() {
        if (std::string failed = acquire(raw_, name()); !failed.empty()) return failed;
        initialised_ = true;
        std::string bad;
        detector_ = copy_extension<tf_engine_detector>(descriptor_, TF_EXT_ENGINE_DETECTOR);
        if (detector_) {
            if (!TF_HAS_MEMBER(&*detector_, tf_engine_detector, probe) || detector_->probe == nullptr)
                return "engine detector without a probe function";
            bad = read_names(detector_->n_process_names, detector_->process_names, "detector process names",
                             process_names_);
            if (!bad.empty()) return bad;
            kinds_.emplace_back("engine-detector");
        }
        activator_ = copy_extension<tf_socket_activator>(descriptor_, TF_EXT_SOCKET_ACTIVATOR);
        if (activator_) {
            bad = read_names(activator_->n_process_names, activator_->process_names, "activator process names",
                             activator_names_);
            if (!bad.empty()) return bad;
            kinds_.emplace_back("socket-activator");
        }
        activated_ = copy_extension<tf_activated_engine>(descriptor_, TF_EXT_ACTIVATED_ENGINE);
        if (activated_) {
            if (!TF_HAS_MEMBER(&*activated_, tf_activated_engine, probe) || activated_->probe == nullptr)
                return "activated engine without a probe function";
            bad = read_names(activated_->n_socket_suffixes, activated_->socket_suffixes, "socket suffixes",
                             socket_suffixes_);
            if (bad.empty())
                bad = read_names(activated_->n_service_names, activated_->service_names, "service names",
                                 service_names_);
            if (!bad.empty()) return bad;
            kinds_.emplace_back("activated-engine");
        }
        if (kinds_.empty()) return "offers no capability (no known extension id)";
        for (const auto *list : {&process_names_, &activator_names_, &service_names_})
            for (const auto &n : *list)
                if (n.size() > max_comm)
                    log().warn("plugin \"{}\" claims process name \"{}\", longer than {} bytes: it never matches",
                               file_, n, max_comm);
        return {};
    }

    const std::string &file() const override { return file_; }
    const tf_plugin_descriptor &descriptor() const override { return descriptor_; }
    const tf_engine_detector *detector() const override { return detector_ ? &*detector_ : nullptr; }
    const tf_socket_activator *activator() const override { return activator_ ? &*activator_ : nullptr; }
    const tf_activated_engine *activated_engine() const override { return activated_ ? &*activated_ : nullptr; }

    const std::vector<std::string> &kinds() const { return kinds_; }
    const std::vector<std::string> &process_names() const { return process_names_; }
    const std::vector<std::string> &activator_names() const { return activator_names_; }
    const std::vector<std::string> &socket_suffixes() const { return socket_suffixes_; }
    const std::vector<std::string> &service_names() const { return service_names_; }

private:
    std::string file_;
    std::shared_ptr<void> library_;
    const tf_plugin_descriptor *raw_;
    tf_plugin_descriptor descriptor_{};
    bool initialised_ = false;
    std::optional<tf_engine_detector> detector_;
    std::optional<tf_socket_activator> activator_;
    std::optional<tf_activated_engine> activated_;
    std::vector<std::string> kinds_;
    std::vector<std::string> process_names_, activator_names_, socket_suffixes_, service_names_;
};

const LoadedPlugin &loaded(const Plugin &p) { return static_cast<const LoadedPlugin &>(p); }

bool has(const std::vector<std::string> &names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

std::string check_owner_and_mode(const std::string &path, const char *what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return fmt::format("cannot stat {} {}: {}", what, path, std::strerror(errno));
    if (st.st_uid != 0) return fmt::format("{} {} is owned by uid {}, not root", what, path, st.st_uid);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return fmt::format("{} {} is writable by group or others (mode {:04o})", what, path, st.st_mode & 07777);
    return {};
}

bool has_elf_magic(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    return in.read(magic, sizeof magic) && std::memcmp(magic, "\x7f" "ELF", 4) == 0;
}

} // namespace

std::string insecure_reason(const std::string &path) {
    if (::geteuid() != 0) return {};
    std::error_code ec;
    fs::path real = fs::canonical(path, ec);
    if (ec) return fmt::format("cannot resolve {}: {}", path, ec.message());
    std::vector<std::pair<std::string, const char *>> checks{{real.string(), "file"},
                                                              {real.parent_path().string(), "directory"}};
    // A symlink in the scanned directory can be swapped by whoever may write there.
    fs::path given_dir = fs::absolute(path, ec).parent_path();
    if (!ec && given_dir != real.parent_path()) checks.emplace_back(given_dir.string(), "directory");
    for (const auto &[p, what] : checks)
        if (std::string bad = check_owner_and_mode(p, what); !bad.empty()) return bad;
    return {};
}

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
    // A disabled plugin whose file is named after it is not even loaded:
    // dlopen alone maps its libraries, and gRPC's stay mapped for good.
    if (std::string stem = fs::path(path).stem().string(); disabled.count(stem) != 0) {
        PluginStatus status;
        status.file = path;
        status.name = stem;
        return record_disabled(std::move(status), ", not loaded");
    }

    // Looks into the ELF file before dlopen, so no constructor of a file that
    // is not a plugin at all ever runs.
    if (!has_elf_magic(canonical.string())) return refuse(path, {}, "not a shared object (no ELF header)");
    try {
        boost::dll::library_info info(canonical.string());
        auto symbols = info.symbols();
        if (std::find(symbols.begin(), symbols.end(), TF_PLUGIN_ENTRY_SYMBOL) == symbols.end())
            return refuse(path, {}, "no " TF_PLUGIN_ENTRY_SYMBOL " symbol");
    } catch (const std::exception &e) {
        return refuse(path, {}, fmt::format("not a shared object (unreadable ELF file: {})", e.what()));
    }

    auto library = std::make_shared<boost::dll::shared_library>();
    try {
        library->load(canonical.string(), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    } catch (const std::exception &e) {
        // Boost keeps only an error code; dlopen again to learn what the dynamic linker said.
        std::string why = e.what();
        if (void *h = ::dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL)) {
            ::dlclose(h);
        } else if (const char *dl = ::dlerror()) {
            why = dl;
        }
        return refuse(path, {}, fmt::format("cannot load: {}", why));
    }
    if (!library->has(TF_PLUGIN_ENTRY_SYMBOL)) return refuse(path, {}, TF_PLUGIN_ENTRY_SYMBOL " is not exported");
    const auto *descriptor = &library->get<const tf_plugin_descriptor>(TF_PLUGIN_ENTRY_SYMBOL);
    bool ok = admit(descriptor, path, std::move(library), disabled);
    if (ok) loaded_files_.insert(canonical.string());
    return ok;
}

bool Registry::add(const tf_plugin_descriptor *descriptor, const std::string &origin) {
    std::string file = origin;
    if (file.empty())
        file = fmt::format("<builtin:{}>", descriptor != nullptr && descriptor->name != nullptr ? descriptor->name : "?");
    if (descriptor == nullptr) return refuse(file, {}, "no descriptor");
    return admit(descriptor, file, nullptr, {});
}

bool Registry::admit(const tf_plugin_descriptor *d, const std::string &file, std::shared_ptr<void> library,
                     const std::set<std::string> &disabled) {
    const tf_abi_version &abi = d->abi;
    if (abi.major != TF_ABI_VERSION_MAJOR)
        return refuse(file, {}, fmt::format("ABI major version differs: plugin {}.{}, host {}.{}", abi.major, abi.minor,
                                            TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR));
    if (abi.minor > TF_ABI_VERSION_MINOR)
        return refuse(file, {}, fmt::format("ABI minor version too new: plugin {}.{}, host {}.{}", abi.major, abi.minor,
                                            TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR));
    if (d->struct_size < descriptor_v1_size)
        return refuse(file, {}, fmt::format("entry struct too small: {} bytes, at least {} expected", d->struct_size,
                                            descriptor_v1_size));
    if (d->name == nullptr) return refuse(file, {}, "entry has a NULL name");
    std::string name = d->name;
    if (!valid_name(d->name)) return refuse(file, {}, fmt::format("invalid name \"{}\" (want [a-z0-9-]+)", name));
    if (d->get_extension == nullptr) return refuse(file, name, "entry has a NULL get_extension");
    if (auto other = find(name)) return refuse(file, name, fmt::format("name \"{}\" already taken by \"{}\"", name, other->file()));

    PluginStatus status;
    status.file = file;
    status.name = name;
    status.version = d->version != nullptr ? d->version : "";
    status.description = d->description != nullptr ? d->description : "";
    if (disabled.count(name) != 0) return record_disabled(std::move(status), "");

    auto plugin = std::make_shared<LoadedPlugin>(file, std::move(library), d);
    if (std::string failed = plugin->start(); !failed.empty()) return refuse(file, name, failed);

    status.kinds = plugin->kinds();
    for (const auto *list : {&plugin->process_names(), &plugin->activator_names(), &plugin->service_names(),
                             &plugin->socket_suffixes()})
        for (const auto &n : *list)
            if (!has(status.claims, n)) status.claims.push_back(n);
    status.loaded = true;
    log().debug("plugin \"{}\" loaded: {} {} ({})", file, name, status.version, fmt::join(status.kinds, ", "));
    statuses_.push_back(std::move(status));
    plugins_.push_back(std::move(plugin));
    return true;
}

std::shared_ptr<const Plugin> Registry::find(std::string_view name) const {
    for (const auto &p : plugins_)
        if (p->descriptor().name == name) return p;
    return nullptr;
}

std::shared_ptr<const Plugin> Registry::detector_for(std::string_view process_name) const {
    for (const auto &p : plugins_)
        if (p->detector() != nullptr && has(loaded(*p).process_names(), process_name)) return p;
    return nullptr;
}

std::shared_ptr<const Plugin> Registry::activator_for(std::string_view process_name) const {
    for (const auto &p : plugins_)
        if (p->activator() != nullptr && has(loaded(*p).activator_names(), process_name)) return p;
    return nullptr;
}

std::shared_ptr<const Plugin> Registry::activated_engine_for_socket(std::string_view socket_path) const {
    for (const auto &p : plugins_) {
        if (p->activated_engine() == nullptr) continue;
        for (const auto &suffix : loaded(*p).socket_suffixes())
            if (socket_path.size() >= suffix.size() &&
                socket_path.substr(socket_path.size() - suffix.size()) == suffix)
                return p;
    }
    return nullptr;
}

std::set<std::string, std::less<>> Registry::claimed_process_names() const {
    std::set<std::string, std::less<>> names;
    for (const auto &p : plugins_) {
        const auto &l = loaded(*p);
        names.insert(l.process_names().begin(), l.process_names().end());
        names.insert(l.activator_names().begin(), l.activator_names().end());
        names.insert(l.service_names().begin(), l.service_names().end());
    }
    return names;
}

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

} // namespace turtlefinder::plugins
