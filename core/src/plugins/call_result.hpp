// SPDX-License-Identifier: Apache-2.0
// A plugin call's return code and error buffer, as a CallResult.
#pragma once

#include <cstring>

#include <turtlefinder/plugin.h>

#include "plugins/engine_handle.hpp"

namespace turtlefinder::plugins {

inline CallResult result_of(int rc, const tf_error &err) {
    CallResult r;
    r.code = rc;
    if (rc < 0) {
        r.message.assign(err.message, strnlen(err.message, TF_ERROR_MAX));
        if (r.message.empty()) r.message = std::strerror(-rc);
    }
    return r;
}

} // namespace turtlefinder::plugins
