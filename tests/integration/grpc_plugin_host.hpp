// SPDX-License-Identifier: Apache-2.0
// A minimal host for the containerd and crio plugins' C ABI, used by the
// gRPC engine tests: loads the built .so with dlopen, probes, and drives the
// returned tf_engine objects (list, inspect, watch on a thread, cancel).
#pragma once

#include <dlfcn.h>

#include <turtlefinder/plugin.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace tftest::grpc_host {

struct Container {
    std::string id, name;
    int pid = 0;
    bool paused = false;
    std::map<std::string, std::string> labels;
};

struct Event {
    tf_event_kind kind;
    std::string id;
};

// Loads plugins/<name>/<name>.so from the build tree and calls init. The .so
// is opened RTLD_NODELETE: gRPC keeps process-wide threads that must not see
// their code unmapped.
class Plugin {
public:
    explicit Plugin(const std::string &name) {
        const char *build = std::getenv("TF_BUILD_ROOT");
        if (build == nullptr) throw std::runtime_error("TF_BUILD_ROOT is not set");
        path_ = std::string(build) + "/plugins/" + name + "/" + name + ".so";
        handle_ = ::dlopen(path_.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (handle_ == nullptr) throw std::runtime_error(std::string("dlopen: ") + ::dlerror());
        entry_ = static_cast<const tf_plugin_descriptor *>(::dlsym(handle_, TF_PLUGIN_ENTRY_SYMBOL));
        if (entry_ == nullptr) throw std::runtime_error("no " TF_PLUGIN_ENTRY_SYMBOL " in " + path_);
        host_.struct_size = sizeof host_;
        host_.abi = {TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR, TF_ABI_VERSION_PATCH};
        host_.ctx = this;
        host_.log = [](void *ctx, tf_log_level level, const char *message) {
            auto *self = static_cast<Plugin *>(ctx);
            std::lock_guard lock(self->log_mutex_);
            self->log_.emplace_back(level, message);
        };
        tf_error err{};
        if (entry_->init(&host_, &err) != 0) throw std::runtime_error(std::string("init: ") + err.message);
        detector_ = static_cast<const tf_engine_detector *>(entry_->get_extension(TF_EXT_ENGINE_DETECTOR));
        if (detector_ == nullptr) throw std::runtime_error("no engine detector in " + path_);
    }
    ~Plugin() {
        if (entry_ != nullptr) entry_->deinit();
        if (handle_ != nullptr) ::dlclose(handle_);
    }
    Plugin(const Plugin &) = delete;
    Plugin &operator=(const Plugin &) = delete;

    const tf_engine_detector &detector() const { return *detector_; }
    std::vector<std::pair<tf_log_level, std::string>> log() const {
        std::lock_guard lock(log_mutex_);
        return log_;
    }

private:
    std::string path_;
    void *handle_ = nullptr;
    const tf_plugin_descriptor *entry_ = nullptr;
    const tf_engine_detector *detector_ = nullptr;
    tf_host host_{};
    mutable std::mutex log_mutex_;
    std::vector<std::pair<tf_log_level, std::string>> log_;
};

inline Container copy(const tf_container &c) {
    Container out;
    out.id = c.id != nullptr ? c.id : "";
    out.name = c.name != nullptr ? c.name : "";
    out.pid = c.pid;
    out.paused = (c.flags & TF_CONTAINER_PAUSED) != 0;
    for (uint32_t i = 0; i < c.n_labels; ++i) out.labels[c.labels[i].key] = c.labels[i].value;
    return out;
}

// One engine client owned by the test; destroyed (after cancel) with it.
class Engine {
public:
    explicit Engine(tf_engine *e) : e_(e) {}
    ~Engine() {
        e_->cancel(e_);
        if (watcher_.joinable()) watcher_.join();
        e_->destroy(e_);
    }
    Engine(const Engine &) = delete;
    Engine &operator=(const Engine &) = delete;

    const tf_engine_info &info() const { return *e_->info(e_); }
    tf_engine *raw() const { return e_; }

    std::vector<Container> list() {
        std::vector<Container> out;
        tf_container_sink sink{sizeof sink, &out, [](void *ctx, const tf_container *c) {
                                   static_cast<std::vector<Container> *>(ctx)->push_back(copy(*c));
                                   return 0;
                               }};
        tf_error err{};
        int rc = e_->list(e_, &sink, &err);
        if (rc != 0) throw std::runtime_error("list: " + std::to_string(rc) + " " + err.message);
        return out;
    }
    std::optional<Container> find(const std::string &id) {
        for (auto &c : list())
            if (c.id == id) return c;
        return std::nullopt;
    }
    std::optional<Container> inspect(const std::string &id) {
        std::optional<Container> out;
        tf_container_sink sink{sizeof sink, &out, [](void *ctx, const tf_container *c) {
                                   *static_cast<std::optional<Container> *>(ctx) = copy(*c);
                                   return 0;
                               }};
        tf_error err{};
        int rc = e_->inspect(e_, id.c_str(), &sink, &err);
        if (rc != 0) throw std::runtime_error("inspect: " + std::to_string(rc) + " " + err.message);
        return out;
    }

    // Starts watch() on a thread; events are collected.
    void start_watch() {
        watcher_ = std::thread([this] {
            tf_event_sink sink{sizeof sink, this,
                               [](void *ctx) {
                                   auto *self = static_cast<Engine *>(ctx);
                                   std::lock_guard lock(self->mutex_);
                                   self->subscribed_ = true;
                                   return 0;
                               },
                               [](void *ctx, const tf_container_event *ev) {
                                   auto *self = static_cast<Engine *>(ctx);
                                   std::lock_guard lock(self->mutex_);
                                   self->events_.push_back({ev->kind, ev->id});
                                   return 0;
                               }};
            tf_error err{};
            int rc = e_->watch(e_, &sink, &err);
            std::lock_guard lock(mutex_);
            watch_rc_ = rc;
            watch_error_ = err.message;
        });
    }
    bool subscribed() {
        std::lock_guard lock(mutex_);
        return subscribed_;
    }
    std::optional<int> watch_result() {
        std::lock_guard lock(mutex_);
        return watch_rc_;
    }
    std::string watch_error() {
        std::lock_guard lock(mutex_);
        return watch_error_;
    }
    bool saw(tf_event_kind kind, const std::string &id) {
        std::lock_guard lock(mutex_);
        for (const auto &e : events_)
            if (e.kind == kind && e.id == id) return true;
        return false;
    }
    std::vector<Event> events() {
        std::lock_guard lock(mutex_);
        return events_;
    }
    void cancel() { e_->cancel(e_); }
    void join_watch() {
        if (watcher_.joinable()) watcher_.join();
    }

private:
    tf_engine *e_;
    std::thread watcher_;
    std::mutex mutex_;
    bool subscribed_ = false;
    std::optional<int> watch_rc_;
    std::string watch_error_;
    std::vector<Event> events_;
};

struct ProbeResult {
    int rc = 0;
    std::string error;
    std::vector<std::unique_ptr<Engine>> engines;
};

inline ProbeResult probe(const Plugin &plugin, int pid, const std::string &process_name,
                         const std::vector<std::string> &paths, std::chrono::milliseconds timeout,
                         const std::map<std::string, std::string> &settings = {}) {
    std::vector<const char *> cpaths;
    for (const auto &p : paths) cpaths.push_back(p.c_str());
    std::vector<tf_label> csettings;
    for (const auto &[k, v] : settings) csettings.push_back({k.c_str(), v.c_str()});
    tf_probe_request request{};
    request.struct_size = sizeof request;
    request.pid = pid;
    request.process_name = process_name.c_str();
    request.n_api_paths = static_cast<uint32_t>(cpaths.size());
    request.api_paths = cpaths.data();
    request.timeout_ms = static_cast<int32_t>(timeout.count());
    request.n_settings = static_cast<uint32_t>(csettings.size());
    request.settings = csettings.data();
    ProbeResult result;
    tf_engine_sink sink{sizeof sink, &result, [](void *ctx, tf_engine *e) {
                            static_cast<ProbeResult *>(ctx)->engines.push_back(std::make_unique<Engine>(e));
                            return 0;
                        }};
    tf_error err{};
    result.rc = plugin.detector().probe(&request, &sink, &err);
    result.error = err.message;
    return result;
}

} // namespace tftest::grpc_host
