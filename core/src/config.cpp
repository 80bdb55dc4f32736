// SPDX-License-Identifier: Apache-2.0
// The configuration file: strict, so a typo is an error rather than a
// silently ignored setting.
#include <turtlefinder/options.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <stdexcept>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
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

// The file's bytes, or an error with the OS's reason ("No such file or
// directory", "Is a directory", "Permission denied").
std::string read_config_file(const std::string &path) {
    auto fail = [&](int err) -> std::string {
        throw std::runtime_error(fmt::format("{}: cannot read the configuration file: {}", path, std::strerror(err)));
    };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
        ::close(fd);
        fail(err);
    }
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            ::close(fd);
            fail(err);
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return text;
}

// Checks the syntax before anything is read from the file, so errors carry
// a position, and refuses duplicate keys (the value parser would silently
// keep one of them).
class SyntaxCheck {
public:
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);

    std::string duplicate; // the first key seen twice in one object

    bool on_document_begin(boost::system::error_code &) { return true; }
    bool on_document_end(boost::system::error_code &) { return true; }
    bool on_object_begin(boost::system::error_code &) {
        keys_.emplace_back();
        return true;
    }
    bool on_object_end(std::size_t, boost::system::error_code &) {
        keys_.pop_back();
        return true;
    }
    bool on_array_begin(boost::system::error_code &) { return true; }
    bool on_array_end(std::size_t, boost::system::error_code &) { return true; }
    bool on_key_part(json::string_view s, std::size_t, boost::system::error_code &) {
        key_.append(s.data(), s.size());
        return true;
    }
    bool on_key(json::string_view s, std::size_t, boost::system::error_code &ec) {
        key_.append(s.data(), s.size());
        bool fresh = keys_.back().insert(key_).second;
        if (!fresh) {
            duplicate = key_;
            ec = boost::system::errc::make_error_code(boost::system::errc::invalid_argument);
        }
        key_.clear();
        return fresh;
    }
    bool on_string_part(json::string_view, std::size_t, boost::system::error_code &) { return true; }
    bool on_string(json::string_view, std::size_t, boost::system::error_code &) { return true; }
    bool on_number_part(json::string_view, boost::system::error_code &) { return true; }
    bool on_int64(std::int64_t, json::string_view, boost::system::error_code &) { return true; }
    bool on_uint64(std::uint64_t, json::string_view, boost::system::error_code &) { return true; }
    bool on_double(double, json::string_view, boost::system::error_code &) { return true; }
    bool on_bool(bool, boost::system::error_code &) { return true; }
    bool on_null(boost::system::error_code &) { return true; }
    bool on_comment_part(json::string_view, boost::system::error_code &) { return true; }
    bool on_comment(json::string_view, boost::system::error_code &) { return true; }

private:
    std::vector<std::set<std::string>> keys_; // one set per open object
    std::string key_;
};

void check_syntax(const std::string &path, const std::string &text) {
    json::basic_parser<SyntaxCheck> parser(json::parse_options{});
    boost::system::error_code ec;
    std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
    if (!ec) return;
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < used && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    const std::string &dup = parser.handler().duplicate;
    throw std::runtime_error(dup.empty() ? fmt::format("{}:{}:{}: not valid JSON: {}", path, line, column, ec.message())
                                         : fmt::format("{}:{}:{}: duplicate key \"{}\"", path, line, column, dup));
}

const std::vector<std::string> log_levels = {"trace", "debug", "info", "warn", "error", "critical", "off"};

} // namespace

std::string default_config_path() {
    // Found relative to the installation like the plugins, so a relocated
    // install reads its own file (unless sysconfdir is outside the prefix, /etc).
    return installation_path(TF_RELATIVE_CONFIG_FILE, TF_INSTALLED_CONFIG_FILE);
}

FileSettings load_config(const std::string &path, Options &options) {
    std::string text = read_config_file(path);
    check_syntax(path, text);
    boost::system::error_code ec;
    json::value root = json::parse(text, ec);
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
                    o.plugin_settings[std::string(plugin)][std::string(sk)] =
                        r.string(pkey + "." + std::string(sk), sv);
            }
        } else if (key == "serve") {
            if (!v.is_object()) r.fail(key, "expected an object of node service settings");
            settings.serve = json::serialize(v);
        } else {
            r.fail(key, "unknown key (known: plugin_dirs, disabled_plugins, workers, online_wait_ms, "
                        "probe_timeout_ms, relist_interval_ms, log_level, procfs_root, plugin_settings, serve)");
        }
    }
    options = std::move(o);
    return settings;
}

} // namespace turtlefinder
