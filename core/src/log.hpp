// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include <turtlefinder/options.hpp> // set_log_level

namespace turtlefinder {

// The core's logger ("turtlefinder"); created on first use, stderr sink.
spdlog::logger &log();
// The logger for one plugin, named after it; shares the core's sinks and level.
std::shared_ptr<spdlog::logger> plugin_logger(const std::string &plugin_name);

} // namespace turtlefinder
