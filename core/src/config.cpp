// SPDX-License-Identifier: Apache-2.0
// The configuration file: strict, so a typo is an error rather than a
// silently ignored setting.
#include <turtlefinder/options.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "installation.hpp"

namespace turtlefinder {

namespace json = boost::json;

namespace {

class Reader {
public:
    explicit Reader(std::string file) : file_(std::move(file)) {}

    [[noreturn]] void fail(const std::string &key, const std::string &what) const {
        throw std::runtime_error(fmt::format("{}: \"{}\": {}", file_, key, what));
    }

    std::string string(const std::string &key, const json::value &v) const {
        if (!v.is_string()) fail(key, "expected a string");
        return std::string(v.get_string());
    }
    std::vector<std::string> strings(const std::string &key, const json::value &v) const {
        if (!v.is_array()) fail(key, "expected an array of strings");
        std::vector<std::string> out;
        for (const auto &item : v.get_array()) {
            if (!item.is_string()) fail(key, "expected an array of strings");
            out.emplace_back(item.get_string());
        }
        return out;
    }
    std::int64_t integer(const std::string &key, const json::value &v, std::int64_t min, std::int64_t max) const {
        std::int64_t n = 0;
        if (v.is_int64())
            n = v.get_int64();
        else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(max))
            n = static_cast<std::int64_t>(v.get_uint64());
        else
            fail(key, fmt::format("expected an integer from {} to {}", min, max));
        if (n < min || n > max) fail(key, fmt::format("expected an integer from {} to {}, got {}", min, max, n));
        return n;
    }

private:
    std::string file_;
};

const std::vector<std::string> log_levels = {"trace", "debug", "info", "warn", "error", "critical", "off"};

} // namespace

std::string default_config_path() {
    // Found relative to the installation like the plugins, so a relocated
    // install reads its own file (unless sysconfdir is outside the prefix, /etc).
    return installation_path(TF_RELATIVE_CONFIG_FILE, TF_INSTALLED_CONFIG_FILE);
}

FileSettings load_config(const std::string &path, Options &options) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(fmt::format("{}: cannot read the configuration file", path));
    std::stringstream buf;
    buf << in.rdbuf();
    boost::system::error_code ec;
    json::value root = json::parse(buf.str(), ec);
    if (ec) throw std::runtime_error(fmt::format("{}: not valid JSON: {}", path, ec.message()));
    if (!root.is_object()) throw std::runtime_error(fmt::format("{}: expected a JSON object at the top", path));

    Reader r(path);
    FileSettings settings;
    Options o = options; // applied only when the whole file is good
    for (const auto &[k, v] : root.get_object()) {
        std::string key(k);
        if (key == "plugin_dirs") {
            o.plugin_dirs = r.strings(key, v);
        } else if (key == "disabled_plugins") {
            auto list = r.strings(key, v);
            o.disabled_plugins = {list.begin(), list.end()};
        } else if (key == "workers") {
            o.workers = static_cast<unsigned>(r.integer(key, v, 1, 256));
        } else if (key == "online_wait_ms") {
            o.online_wait = std::chrono::milliseconds(r.integer(key, v, 0, 600000));
        } else if (key == "probe_timeout_ms") {
            o.probe_timeout = std::chrono::milliseconds(r.integer(key, v, 1, 600000));
        } else if (key == "relist_interval_ms") {
            o.relist_interval = std::chrono::milliseconds(r.integer(key, v, 10, 3600000));
        } else if (key == "log_level") {
            auto level = r.string(key, v);
            if (std::find(log_levels.begin(), log_levels.end(), level) == log_levels.end())
                r.fail(key, "expected one of trace, debug, info, warn, error, critical, off");
            settings.log_level = level;
        } else if (key == "procfs_root") {
            o.procfs_root = r.string(key, v);
            if (o.procfs_root.empty() || o.procfs_root[0] != '/') r.fail(key, "expected an absolute path");
        } else if (key == "plugin_settings") {
            if (!v.is_object()) r.fail(key, "expected an object of plugin name → object of string settings");
            for (const auto &[plugin, kv] : v.get_object()) {
                std::string pkey = key + "." + std::string(plugin);
                if (!kv.is_object()) r.fail(pkey, "expected an object of string settings");
                for (const auto &[sk, sv] : kv.get_object())
                    o.plugin_settings[std::string(plugin)][std::string(sk)] = r.string(pkey + "." + std::string(sk), sv);
            }
        } else {
            r.fail(key, "unknown key (known: plugin_dirs, disabled_plugins, workers, online_wait_ms, "
                        "probe_timeout_ms, relist_interval_ms, log_level, procfs_root, plugin_settings)");
        }
    }
    options = std::move(o);
    return settings;
}

} // namespace turtlefinder
