// SPDX-License-Identifier: Apache-2.0
#include "plugins/search_path.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>

#include "log.hpp"

namespace turtlefinder::plugins {

namespace fs = std::filesystem;

namespace {

void add_subdirectories(const fs::path &parent, std::vector<std::string> &out) {
    std::error_code ec;
    std::vector<std::string> found;
    for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code dec;
        if (it->is_directory(dec)) found.push_back(it->path().string());
    }
    if (ec) log().debug("plugin directory \"{}\" skipped: {}", parent.string(), ec.message());
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
}

// Path of the shared object or executable that contains this function.
fs::path binary_of_this_code() {
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void *>(&binary_of_this_code), &info) != 0 && info.dli_fname != nullptr) {
        std::error_code ec;
        fs::path p = fs::canonical(info.dli_fname, ec);
        if (!ec) return p;
    }
    std::error_code ec;
    return fs::read_symlink("/proc/self/exe", ec);
}

} // namespace

std::vector<std::string> default_plugin_dirs() {
    std::error_code ec;
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
    // Where the code running this lives: libturtlefinder.so, or a program
    // that links the core statically. Plugins are found relative to it, so
    // a relocated or DESTDIR-staged install finds its own plugins.
    fs::path self = binary_of_this_code();
    bool from_build_tree = false;
#ifdef TF_BUILD_ROOT
    // Running from the build tree (tests, a developer's binary): use the plugins built there.
    const fs::path build_root = TF_BUILD_ROOT;
    if (!self.empty()) {
        auto [b, e] = std::mismatch(build_root.begin(), build_root.end(), self.begin(), self.end());
        from_build_tree = b == build_root.end();
    }
    if (from_build_tree) {
        add_subdirectories(build_root / "plugins", dirs);
        add_subdirectories(build_root / "activators", dirs);
    }
#endif
#if defined(TF_INSTALLED_PLUGIN_DIR) && defined(TF_RELATIVE_PLUGIN_DIR)
    if (!from_build_tree) {
        // prefix/libdir/libturtlefinder.so or prefix/bindir/program → prefix/libdir/turtlefinder/plugins
        fs::path dir = self.parent_path();
        std::optional<fs::path> prefix;
        for (const fs::path &rel : {fs::path(TF_RELATIVE_LIBDIR), fs::path(TF_RELATIVE_BINDIR)}) {
            fs::path p = dir;
            bool match = true;
            std::vector<fs::path> parts(rel.begin(), rel.end());
            for (auto it = parts.rbegin(); it != parts.rend() && match; ++it) {
                match = p.filename() == *it;
                p = p.parent_path();
            }
            if (match && !parts.empty()) {
                prefix = p;
                break;
            }
        }
        fs::path relocated = prefix ? *prefix / TF_RELATIVE_PLUGIN_DIR : fs::path();
        if (prefix && fs::is_directory(relocated, ec))
            dirs.push_back(relocated.string());
        else
            dirs.emplace_back(TF_INSTALLED_PLUGIN_DIR);
    }
#endif
    return dirs;
}

} // namespace turtlefinder::plugins
