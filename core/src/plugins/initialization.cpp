// SPDX-License-Identifier: Apache-2.0
#include "plugins/initialization.hpp"

#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "log.hpp"

namespace turtlefinder::plugins {

namespace {

std::string errno_text(int code) { return fmt::format("{} ({})", code, std::strerror(code < 0 ? -code : code)); }

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

} // namespace

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
            return fmt::format("init failed: {}{}{}", errno_text(rc), err.message[0] ? ": " : "", err.message);
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

} // namespace turtlefinder::plugins
