// SPDX-License-Identifier: Apache-2.0
#include "plugins/loaded_plugin.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <turtlefinder/plugin.h>

#include "log.hpp"
#include "plugins/call_result.hpp"
#include "plugins/initialization.hpp"

namespace turtlefinder::plugins {

namespace {

// Bounds on what a plugin may claim: more is a bug, not a configuration.
constexpr uint32_t max_claims = 1024;
// `comm` is at most 15 bytes; a longer name can never match.
constexpr std::size_t max_comm = 15;

// A tf_engine usable by the host holds every v1 member, all non-NULL.
constexpr std::size_t engine_v1_size = offsetof(tf_engine, destroy) + sizeof(tf_engine::destroy);

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

bool has(const std::vector<std::string> &names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

std::string str(const char *s) { return s != nullptr ? std::string(s) : std::string(); }

bool complete_v1(const tf_engine *e) {
    return e->struct_size >= engine_v1_size && e->info != nullptr && e->list != nullptr && e->inspect != nullptr &&
           e->watch != nullptr && e->cancel != nullptr && e->destroy != nullptr;
}

struct ProbeContext {
    std::shared_ptr<const Plugin> plugin;
    std::vector<std::unique_ptr<EngineHandle>> *engines = nullptr;
};

int engine_add(void *ctx, tf_engine *engine) {
    auto *p = static_cast<ProbeContext *>(ctx);
    if (engine == nullptr) return 1;
    if (!complete_v1(engine)) {
        log().warn("plugin {}: engine refused: its tf_engine lacks v1 members (struct_size {})", p->plugin->name(),
                   engine->struct_size);
        return 1;
    }
    try {
        // Room first, so that once the handle owns the engine nothing can throw.
        if (p->engines->size() == p->engines->capacity()) p->engines->reserve(p->engines->size() * 2 + 2);
        auto handle = std::make_unique<EngineHandle>(engine, p->plugin);
        p->engines->push_back(std::move(handle));
        return 0;
    } catch (...) {
        return 1;
    }
}

// tf_probe_request.report: hands what the plugin tells of a path to the
// prober. Called by the plugin, so nothing may escape; a NULL path is not one
// of the request's and is dropped.
void probe_report(void *ctx, const char *api_path, int32_t outcome, const char *message) {
    if (ctx == nullptr || api_path == nullptr) return;
    try {
        static_cast<const ProbeInput *>(ctx)->on_report(api_path, outcome > 0 ? 0 : outcome, str(message));
    } catch (...) {
    }
}

} // namespace

struct Plugin::Capabilities {
    tf_plugin_descriptor descriptor{};
    std::optional<tf_engine_detector> detector;
    std::optional<tf_socket_activator> activator;
    std::optional<tf_activated_engine> activated;
};

Plugin::Plugin(std::string file, std::shared_ptr<void> library, const tf_plugin_descriptor *d)
    : file_(std::move(file)),
      library_(std::move(library)),
      descriptor_(d),
      capabilities_(std::make_unique<Capabilities>()) {
    std::memcpy(&capabilities_->descriptor, d, std::min<std::size_t>(d->struct_size, sizeof(tf_plugin_descriptor)));
    name_ = str(d->name);
    version_ = str(d->version);
    description_ = str(d->description);
}

Plugin::~Plugin() {
    if (initialised_) release(descriptor_);
    // library_ is released after this body: the code deinit ran is still mapped.
}

std::string Plugin::start() {
    if (std::string failed = acquire(descriptor_, name_); !failed.empty()) return failed;
    initialised_ = true;
    Capabilities &c = *capabilities_;
    std::string bad;
    c.detector = copy_extension<tf_engine_detector>(c.descriptor, TF_EXT_ENGINE_DETECTOR);
    if (c.detector) {
        if (!TF_HAS_MEMBER(&*c.detector, tf_engine_detector, probe) || c.detector->probe == nullptr)
            return "engine detector without a probe function";
        bad = read_names(c.detector->n_process_names, c.detector->process_names, "detector process names",
                         process_names_);
        if (!bad.empty()) return bad;
        kinds_.emplace_back("engine-detector");
    }
    c.activator = copy_extension<tf_socket_activator>(c.descriptor, TF_EXT_SOCKET_ACTIVATOR);
    if (c.activator) {
        bad = read_names(c.activator->n_process_names, c.activator->process_names, "activator process names",
                         activator_names_);
        if (!bad.empty()) return bad;
        kinds_.emplace_back("socket-activator");
    }
    c.activated = copy_extension<tf_activated_engine>(c.descriptor, TF_EXT_ACTIVATED_ENGINE);
    if (c.activated) {
        if (!TF_HAS_MEMBER(&*c.activated, tf_activated_engine, probe) || c.activated->probe == nullptr)
            return "activated engine without a probe function";
        bad = read_names(c.activated->n_socket_suffixes, c.activated->socket_suffixes, "socket suffixes",
                         socket_suffixes_);
        if (bad.empty())
            bad = read_names(c.activated->n_service_names, c.activated->service_names, "service names", service_names_);
        if (!bad.empty()) return bad;
        kinds_.emplace_back("activated-engine");
    }
    if (kinds_.empty()) return "offers no capability (no known extension id)";
    for (const auto *list : {&process_names_, &activator_names_, &service_names_})
        for (const auto &n : *list)
            if (n.size() > max_comm)
                log().warn("plugin \"{}\" claims process name \"{}\", longer than {} bytes: it never matches", file_, n,
                           max_comm);
    return {};
}

unsigned Plugin::abi_major() const { return capabilities_->descriptor.abi.major; }
unsigned Plugin::abi_minor() const { return capabilities_->descriptor.abi.minor; }

bool Plugin::has_extension(const char *id) const { return capabilities_->descriptor.get_extension(id) != nullptr; }

bool Plugin::is_detector() const { return capabilities_->detector.has_value(); }
bool Plugin::is_activator() const { return capabilities_->activator.has_value(); }
bool Plugin::is_activated_engine() const { return capabilities_->activated.has_value(); }

bool Plugin::detects(std::string_view process_name) const { return is_detector() && has(process_names_, process_name); }

bool Plugin::activates(std::string_view process_name) const {
    return is_activator() && has(activator_names_, process_name);
}

bool Plugin::serves_socket(std::string_view socket_path) const {
    if (!is_activated_engine()) return false;
    return std::any_of(socket_suffixes_.begin(), socket_suffixes_.end(),
                       [&](const std::string &suffix) { return socket_path.ends_with(suffix); });
}

bool Plugin::is_service(std::string_view process_name) const {
    return is_activated_engine() && has(service_names_, process_name);
}

std::vector<std::string> Plugin::claims() const {
    std::vector<std::string> out;
    for (const auto *list : {&process_names_, &activator_names_, &service_names_, &socket_suffixes_})
        for (const auto &n : *list)
            if (!has(out, n)) out.push_back(n);
    return out;
}

std::vector<std::string> Plugin::claimed_process_names() const {
    std::vector<std::string> out = process_names_;
    out.insert(out.end(), activator_names_.begin(), activator_names_.end());
    out.insert(out.end(), service_names_.begin(), service_names_.end());
    return out;
}

std::string Plugin::differs_from(const PluginInfo &info) const {
    if (info.name != name_) return fmt::format("its metadata names it \"{}\", its entry \"{}\"", info.name, name_);
    auto same = [](std::vector<std::string> a, std::vector<std::string> b) {
        std::sort(a.begin(), a.end());
        a.erase(std::unique(a.begin(), a.end()), a.end());
        std::sort(b.begin(), b.end());
        b.erase(std::unique(b.begin(), b.end()), b.end());
        return a == b;
    };
    const struct {
        const char *role;
        const std::vector<std::string> &said, &offered;
    } roles[] = {{"detector process names", info.process_names, process_names_},
                 {"activator process names", info.activator_names, activator_names_},
                 {"activated-engine socket suffixes", info.socket_suffixes, socket_suffixes_},
                 {"activated-engine service names", info.service_names, service_names_}};
    for (const auto &r : roles)
        if (!same(r.said, r.offered))
            return fmt::format("its metadata claims {} [{}], its entry [{}]", r.role, fmt::join(r.said, " "),
                               fmt::join(r.offered, " "));
    return {};
}

ProbeOutcome Plugin::probe(const ProbeInput &input) const { return call_probe(false, input); }

ProbeOutcome Plugin::probe_activated(const ProbeInput &input) const { return call_probe(true, input); }

ProbeOutcome Plugin::call_probe(bool activated, const ProbeInput &input) const {
    ProbeOutcome out;
    const Capabilities &c = *capabilities_;
    tf_probe_fn fn =
        activated ? (c.activated ? c.activated->probe : nullptr) : (c.detector ? c.detector->probe : nullptr);
    if (fn == nullptr) {
        out.result = {-EINVAL, fmt::format("plugin \"{}\" has no {} probe", name_,
                                           activated ? "activated-engine" : "engine-detector")};
        return out;
    }
    std::vector<const char *> paths;
    paths.reserve(input.api_paths.size());
    for (const auto &p : input.api_paths) paths.push_back(p.c_str());
    std::vector<tf_label> settings;
    settings.reserve(input.settings.size());
    for (const auto &[k, v] : input.settings) settings.push_back({k.c_str(), v.c_str()});
    auto ms = input.timeout.count();
    tf_probe_request request{};
    request.struct_size = sizeof request;
    request.pid = input.pid;
    request.process_name = input.process_name.c_str();
    request.n_api_paths = static_cast<uint32_t>(paths.size());
    request.api_paths = paths.data();
    request.timeout_ms = static_cast<int32_t>(ms < 1 ? 1 : (ms > INT32_MAX ? INT32_MAX : ms));
    request.n_settings = static_cast<uint32_t>(settings.size());
    request.settings = settings.data();
    if (input.on_report) {
        request.report_ctx = const_cast<ProbeInput *>(&input);
        request.report = &probe_report;
    }

    ProbeContext ctx{shared_from_this(), &out.engines};
    tf_engine_sink sink{sizeof(tf_engine_sink), &ctx, &engine_add};
    tf_error err{};
    int rc = fn(&request, &sink, &err);
    out.result = result_of(rc, err);
    if (rc >= 0) out.result.code = static_cast<int>(out.engines.size());
    return out;
}

} // namespace turtlefinder::plugins
