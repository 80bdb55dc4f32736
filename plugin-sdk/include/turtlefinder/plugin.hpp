// SPDX-License-Identifier: Apache-2.0
// Header-only C++ layer over plugin.h: a plugin author writes ordinary
// classes and one TF_PLUGIN(Class) line emits tf_plugin_entry. Compiled into
// the plugin, so its C++ ABI never crosses the boundary; every trampoline is
// noexcept and turns exceptions into a negative errno plus a message.
//
//   struct MyPlugin {
//       static constexpr const char *name = "my-engine";
//       static constexpr const char *version = "1.0";
//       static constexpr const char *description = "finds my engine";
//       static constexpr std::array<const char *, 1> process_names{"myengined"};
//       static std::vector<std::unique_ptr<turtlefinder::sdk::EngineClient>>
//       probe(const turtlefinder::sdk::ProbeRequest &request);
//   };
//   TF_PLUGIN(MyPlugin)
//
// Optional members: `activator_names` (socket activator), `socket_suffixes`
// plus `service_names` (activated engine; `probe` is then used on the
// service), `init()` and `deinit()`.
#pragma once

#include <turtlefinder/plugin.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <concepts>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace turtlefinder::sdk {

// Thrown by plugin code to fail a call with a specific negative errno.
class Error : public std::runtime_error {
public:
    // A zero code would read as success across the ABI: it becomes -EIO.
    Error(int code, const std::string &message)
        : std::runtime_error(message), code_(code < 0 ? code : (code > 0 ? -code : -EIO)) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

struct Container {
    std::string id;
    std::string name;
    int pid = 0; // in the engine's PID namespace; 0 when unknown
    bool paused = false;
    std::vector<std::pair<std::string, std::string>> labels;
};

enum class EventKind : tf_event_kind {
    started = TF_EVENT_STARTED,
    exited = TF_EVENT_EXITED,
    paused = TF_EVENT_PAUSED,
    unpaused = TF_EVENT_UNPAUSED,
};

struct EngineInfo {
    std::string type;
    std::string flavor;
    std::string id;
    std::string version;
    std::string api;
    int pid = 0;
};

// A line to the host's log, under the plugin's name. It holds the tf_host
// that init received, which stays valid until deinit, so it may be kept
// (e.g. by an engine client) and handed to code outside the plugin's own
// shared object: a client library shared by several plugins logs through
// the Log its caller hands down, under that caller's name. A
// default-constructed Log drops every message.
class Log {
public:
    Log() = default;
    explicit Log(const tf_host *host) noexcept : host_(host) {}
    void operator()(tf_log_level level, const std::string &message) const noexcept {
        if (host_ != nullptr && TF_HAS_MEMBER(host_, tf_host, log) && host_->log != nullptr)
            host_->log(host_->ctx, level, message.c_str());
    }

private:
    const tf_host *host_ = nullptr;
};

// Tells the host what one candidate path of a probe turned out to be (ABI
// 1.1, tf_probe_request.report): 0 for an engine, else a negative errno
// (-ETIMEDOUT, -ECONNREFUSED, -EACCES, -EPROTO for "answered, but not as this
// engine", ...) and a message. A no-op with a 1.0 host, and when
// default-constructed. Valid until the probe returns.
class ProbeReport {
public:
    ProbeReport() = default;
    explicit ProbeReport(const tf_probe_request *request) noexcept
        : request_(TF_HAS_MEMBER(request, tf_probe_request, report) ? request : nullptr) {}
    void operator()(const std::string &api_path, int outcome, const std::string &message) const noexcept {
        if (request_ != nullptr && request_->report != nullptr)
            request_->report(request_->report_ctx, api_path.c_str(), outcome, message.c_str());
    }

private:
    const tf_probe_request *request_ = nullptr;
};

struct ProbeRequest {
    int pid = 0;
    std::string process_name;
    std::vector<std::string> api_paths;
    std::chrono::milliseconds timeout{1000};
    std::map<std::string, std::string> settings;
    Log log; // the plugin's log: hand it to the engine clients and libraries the probe uses
    // Why each path gave no engine (or that it gave one): report every path
    // tried, so the host can tell the user what each socket said.
    ProbeReport report;
};

// What watch() reports to. Both return false when the host wants the watch
// to stop; then return from watch (throwing Error(-ECANCELED) is fine too).
class WatchSink {
public:
    virtual ~WatchSink() = default;
    virtual bool subscribed() = 0;
    virtual bool event(EventKind kind, const std::string &id, const Container *details = nullptr) = 0;
};

// Base class of every engine client a plugin returns.
class EngineClient {
public:
    explicit EngineClient(EngineInfo info) : info_(std::move(info)) {}
    virtual ~EngineClient() = default;
    const EngineInfo &info() const noexcept { return info_; }

    // Every alive container; return false from `emit` stops early. [any-thread]
    virtual void list(const std::function<bool(const Container &)> &emit) = 0;
    // The container if alive, nullopt if gone. [any-thread]
    virtual std::optional<Container> inspect(const std::string &id) = 0;
    // Subscribe, call sink.subscribed(), then deliver events until the stream
    // fails (throw Error) or the host stops it. Engines without events keep
    // this default. [serialized]
    virtual void watch(WatchSink &) { throw Error(-ENOTSUP, "engine has no event stream"); }
    // Make running and future blocking calls fail promptly with -ECANCELED. [any-thread]
    virtual void cancel() = 0;

private:
    EngineInfo info_;
};

using Engines = std::vector<std::unique_ptr<EngineClient>>;

// The functions that reach the host init received. A plugin built in to a
// host (TF_PLUGIN_ENTRY_NAME set) shares its image with other plugins: they
// are then private to its translation unit, the one that holds TF_PLUGIN and
// must make every sdk::log call.
#ifdef TF_PLUGIN_ENTRY_NAME
#define TF_SDK_PER_PLUGIN static inline
#else
#define TF_SDK_PER_PLUGIN inline
#endif

namespace detail {
// The host init received, per shared object (each plugin has its own copy).
TF_SDK_PER_PLUGIN const tf_host *&host_slot() noexcept {
    static const tf_host *host = nullptr; // trivially initialised: no dlopen-time constructor
    return host;
}
} // namespace detail

// A library that plugins share is not a plugin: its copy of host_slot() is
// never set, so it defines TF_SDK_SHARED_LIBRARY to lose sdk::log and logs
// through the Log it is handed (ProbeRequest::log) instead.
#ifndef TF_SDK_SHARED_LIBRARY
// Logs through the host under this plugin's name (a no-op before init).
TF_SDK_PER_PLUGIN void log(tf_log_level level, const std::string &message) noexcept {
    Log{detail::host_slot()}(level, message);
}
#endif

namespace detail {

inline void set_error(tf_error *err, const char *message) noexcept {
    if (err == nullptr) return;
    std::strncpy(err->message, message, TF_ERROR_MAX - 1);
    err->message[TF_ERROR_MAX - 1] = '\0';
}

// Runs `body`, mapping exceptions to a negative errno and a message.
template <typename F>
int guarded(tf_error *err, F &&body) noexcept {
    try {
        return body();
    } catch (const Error &e) {
        set_error(err, e.what());
        return e.code();
    } catch (const std::exception &e) {
        set_error(err, e.what());
        return -EIO;
    } catch (...) {
        set_error(err, "unknown C++ exception in plugin");
        return -EIO;
    }
}

// A container converted to the C view; owns the label array for the call.
struct CContainer {
    std::vector<tf_label> labels;
    tf_container c{};
    explicit CContainer(const Container &in) {
        labels.reserve(in.labels.size());
        for (const auto &[k, v] : in.labels) labels.push_back({k.c_str(), v.c_str()});
        c.struct_size = sizeof(tf_container);
        c.id = in.id.c_str();
        c.name = in.name.c_str();
        c.pid = in.pid;
        c.flags = in.paused ? TF_CONTAINER_PAUSED : 0;
        c.n_labels = static_cast<uint32_t>(labels.size());
        c.labels = labels.data();
    }
};

struct EngineBox {
    tf_engine base{};
    std::unique_ptr<EngineClient> client;
    tf_engine_info info{};
};

inline EngineClient &client_of(const tf_engine *self) { return *static_cast<EngineBox *>(self->impl)->client; }

inline const tf_engine_info *engine_info(const tf_engine *self) noexcept {
    return &static_cast<EngineBox *>(self->impl)->info;
}

inline int engine_list(tf_engine *self, const tf_container_sink *sink, tf_error *err) noexcept {
    return guarded(err, [&] {
        bool stopped = false;
        client_of(self).list([&](const Container &c) {
            CContainer cc(c);
            stopped = sink->add(sink->ctx, &cc.c) != 0;
            return !stopped;
        });
        if (stopped) throw Error(-ECANCELED, "stopped by host");
        return 0;
    });
}

inline int engine_inspect(tf_engine *self, const char *id, const tf_container_sink *sink, tf_error *err) noexcept {
    return guarded(err, [&] {
        if (id == nullptr) throw Error(-EINVAL, "inspect: NULL id");
        if (auto c = client_of(self).inspect(id)) {
            CContainer cc(*c);
            if (sink->add(sink->ctx, &cc.c) != 0) throw Error(-ECANCELED, "stopped by host");
        }
        return 0;
    });
}

class CWatchSink final : public WatchSink {
public:
    explicit CWatchSink(const tf_event_sink *sink) : sink_(sink) {}
    bool subscribed() override { return sink_->subscribed(sink_->ctx) == 0; }
    bool event(EventKind kind, const std::string &id, const Container *details) override {
        std::optional<CContainer> cc;
        if (details != nullptr) cc.emplace(*details);
        tf_container_event ev{};
        ev.struct_size = sizeof ev;
        ev.kind = static_cast<tf_event_kind>(kind);
        ev.id = id.c_str();
        ev.container = cc ? &cc->c : nullptr;
        return sink_->on_event(sink_->ctx, &ev) == 0;
    }

private:
    const tf_event_sink *sink_;
};

// Never returns 0, as the ABI asks: guarded() turns every exception into a
// negative code (Error never holds 0 or a positive one).
inline int engine_watch(tf_engine *self, const tf_event_sink *sink, tf_error *err) noexcept {
    return guarded(err, [&] {
        CWatchSink s(sink);
        client_of(self).watch(s);
        set_error(err, "stopped by host");
        return -ECANCELED; // returning normally means the host asked to stop
    });
}

inline void engine_cancel(tf_engine *self) noexcept {
    try {
        client_of(self).cancel();
    } catch (...) {
    }
}

inline void engine_destroy(tf_engine *self) noexcept {
    if (self == nullptr) return;
    delete static_cast<EngineBox *>(self->impl);
}

// Wraps a C++ client into a tf_engine owned by the host.
inline tf_engine *make_engine(std::unique_ptr<EngineClient> client) {
    auto box = std::make_unique<EngineBox>();
    box->client = std::move(client);
    const EngineInfo &i = box->client->info();
    box->info = {sizeof(tf_engine_info), i.type.c_str(), i.flavor.c_str(),           i.id.c_str(),
                 i.version.c_str(),      i.api.c_str(),  static_cast<int32_t>(i.pid)};
    box->base.struct_size = sizeof(tf_engine);
    box->base.impl = box.get();
    box->base.info = &engine_info;
    box->base.list = &engine_list;
    box->base.inspect = &engine_inspect;
    box->base.watch = &engine_watch;
    box->base.cancel = &engine_cancel;
    box->base.destroy = &engine_destroy;
    return &box.release()->base;
}

TF_SDK_PER_PLUGIN ProbeRequest to_request(const tf_probe_request *r) {
    ProbeRequest req;
    if (r == nullptr) throw Error(-EINVAL, "probe: NULL request");
    req.pid = r->pid;
    if (r->process_name != nullptr) req.process_name = r->process_name;
    for (uint32_t i = 0; i < r->n_api_paths && r->api_paths != nullptr; ++i)
        if (r->api_paths[i] != nullptr) req.api_paths.emplace_back(r->api_paths[i]);
    if (r->timeout_ms > 0) req.timeout = std::chrono::milliseconds(r->timeout_ms);
    req.log = Log(host_slot());
    req.report = ProbeReport(r);
    for (uint32_t i = 0; i < r->n_settings && r->settings != nullptr; ++i)
        if (r->settings[i].key != nullptr && r->settings[i].value != nullptr)
            req.settings[r->settings[i].key] = r->settings[i].value;
    return req;
}

template <typename P>
int probe(const tf_probe_request *request, const tf_engine_sink *sink, tf_error *err) noexcept {
    return guarded(err, [&] {
        Engines engines = P::probe(to_request(request));
        int handed = 0;
        for (auto &client : engines) {
            if (!client) continue;
            tf_engine *e = make_engine(std::move(client));
            if (sink->add(sink->ctx, e) != 0)
                engine_destroy(e);
            else
                ++handed;
        }
        return handed;
    });
}

template <typename P>
concept Detector = requires {
    P::process_names;
}
&&requires(const ProbeRequest &r) {
    { P::probe(r) } -> std::convertible_to<Engines>;
};
template <typename P>
concept Activator = requires {
    P::activator_names;
};
template <typename P>
concept ActivatedEngine = requires {
    P::socket_suffixes;
    P::service_names;
}
&&requires(const ProbeRequest &r) {
    { P::probe(r) } -> std::convertible_to<Engines>;
};

template <typename P>
struct Extensions {
    static constexpr tf_engine_detector detector() {
        if constexpr (Detector<P>)
            return {sizeof(tf_engine_detector), static_cast<uint32_t>(P::process_names.size()), P::process_names.data(),
                    &probe<P>};
        else
            return {};
    }
    static constexpr tf_socket_activator activator() {
        if constexpr (Activator<P>)
            return {sizeof(tf_socket_activator), static_cast<uint32_t>(P::activator_names.size()),
                    P::activator_names.data()};
        else
            return {};
    }
    static constexpr tf_activated_engine activated() {
        if constexpr (ActivatedEngine<P>)
            return {sizeof(tf_activated_engine), static_cast<uint32_t>(P::socket_suffixes.size()),
                    P::socket_suffixes.data(),   static_cast<uint32_t>(P::service_names.size()),
                    P::service_names.data(),     &probe<P>};
        else
            return {};
    }
    static constexpr tf_engine_detector detector_v = detector();
    static constexpr tf_socket_activator activator_v = activator();
    static constexpr tf_activated_engine activated_v = activated();

    static const void *get(const char *id) noexcept {
        if (id == nullptr) return nullptr;
        if constexpr (Detector<P>)
            if (std::strcmp(id, TF_EXT_ENGINE_DETECTOR) == 0) return &detector_v;
        if constexpr (Activator<P>)
            if (std::strcmp(id, TF_EXT_SOCKET_ACTIVATOR) == 0) return &activator_v;
        if constexpr (ActivatedEngine<P>)
            if (std::strcmp(id, TF_EXT_ACTIVATED_ENGINE) == 0) return &activated_v;
        return nullptr;
    }

    static int init(const tf_host *host, tf_error *err) noexcept {
        if (host == nullptr || host->abi.major != TF_ABI_VERSION_MAJOR) {
            set_error(err, "host ABI major differs from the plugin's");
            return -ENOTSUP;
        }
        host_slot() = host;
        return guarded(err, [] {
            if constexpr (requires { P::init(); }) P::init();
            return 0;
        });
    }
    static void deinit() noexcept {
        try {
            if constexpr (requires { P::deinit(); }) P::deinit();
        } catch (...) {
        }
        host_slot() = nullptr;
    }
};

// The metadata section (plugin.h, since 1.1), built at compile time from
// the same members the descriptor's extensions are: out == nullptr counts.
class InfoWriter {
public:
    constexpr explicit InfoWriter(char *out) : out_(out) {}
    constexpr void entry(const char *key, const char *value) {
        if (value == nullptr) return;
        put(key);
        put("=");
        put(value);
        put_char('\0');
    }
    template <typename Names>
    constexpr void entries(const char *key, const Names &names) {
        for (const char *n : names) entry(key, n);
    }
    constexpr std::size_t size() const { return n_; }

private:
    constexpr void put(const char *s) {
        for (; *s != '\0'; ++s) put_char(*s);
    }
    constexpr void put_char(char c) {
        if (out_ != nullptr) out_[n_] = c;
        ++n_;
    }
    char *out_;
    std::size_t n_ = 0;
};

template <typename P>
constexpr std::size_t write_info(char *out) {
    InfoWriter w(out);
    w.entry("abi", TF_ABI_VERSION_STRING);
    w.entry("name", P::name);
    w.entry("version", P::version);
    w.entry("description", P::description);
    if constexpr (Detector<P>) w.entries("detector", P::process_names);
    if constexpr (Activator<P>) w.entries("activator", P::activator_names);
    if constexpr (ActivatedEngine<P>) {
        w.entries("activated-socket", P::socket_suffixes);
        w.entries("activated-service", P::service_names);
    }
    return w.size();
}

template <typename P>
constexpr std::array<char, write_info<P>(nullptr)> plugin_info() {
    std::array<char, write_info<P>(nullptr)> info{};
    write_info<P>(info.data());
    return info;
}

} // namespace detail
} // namespace turtlefinder::sdk

// The symbol TF_PLUGIN defines. A plugin linked into a host program with
// others (Options::builtin_plugins) is compiled with its own, e.g.
// -DTF_PLUGIN_ENTRY_NAME=tf_plugin_entry_moby, which the host declares as
// extern "C" const tf_plugin_descriptor tf_plugin_entry_moby;
// A built-in plugin has no file of its own to carry metadata: only a plugin
// built as its own shared object writes the section.
#ifndef TF_PLUGIN_ENTRY_NAME
#define TF_PLUGIN_ENTRY_NAME tf_plugin_entry
#define TF_PLUGIN_INFO_FOR(P)                                                                           \
    [[gnu::used, gnu::section(TF_PLUGIN_INFO_SECTION)]] static constexpr auto tf_plugin_info_section_ = \
        ::turtlefinder::sdk::detail::plugin_info<P>();
#else
#define TF_PLUGIN_INFO_FOR(P)
#endif

// Emits TF_PLUGIN_ENTRY_NAME for class P, and its metadata section (since 1.1). Use once per shared object, at namespace scope.
#define TF_PLUGIN(P)                                                                                       \
    static_assert(::turtlefinder::sdk::detail::Detector<P> || ::turtlefinder::sdk::detail::Activator<P> || \
                      ::turtlefinder::sdk::detail::ActivatedEngine<P>,                                     \
                  "a plugin needs process_names + probe(const ProbeRequest&) -> Engines, "                 \
                  "activator_names, or socket_suffixes + service_names + probe");                          \
    extern "C" TF_EXPORT const tf_plugin_descriptor TF_PLUGIN_ENTRY_NAME = {                               \
        {TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR, TF_ABI_VERSION_PATCH},                                \
        sizeof(tf_plugin_descriptor),                                                                      \
        P::name,                                                                                           \
        P::version,                                                                                        \
        P::description,                                                                                    \
        &::turtlefinder::sdk::detail::Extensions<P>::init,                                                 \
        &::turtlefinder::sdk::detail::Extensions<P>::deinit,                                               \
        &::turtlefinder::sdk::detail::Extensions<P>::get,                                                  \
    };                                                                                                     \
    TF_PLUGIN_INFO_FOR(P)
