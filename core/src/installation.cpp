// SPDX-License-Identifier: Apache-2.0
#include "installation.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <optional>
#include <system_error>
#include <vector>

namespace turtlefinder {

namespace fs = std::filesystem;

namespace {

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

// PREFIX of PREFIX/LIBDIR/libturtlefinder.so or PREFIX/BINDIR/program; none
// elsewhere (a build tree).
std::optional<fs::path> installation_prefix() {
    const fs::path dir = binary_of_this_code().parent_path();
    for (const fs::path &rel : {fs::path(TF_RELATIVE_LIBDIR), fs::path(TF_RELATIVE_BINDIR)}) {
        std::vector<fs::path> parts(rel.begin(), rel.end());
        if (parts.empty()) continue;
        fs::path p = dir;
        bool match = true;
        for (auto it = parts.rbegin(); it != parts.rend() && match; ++it) {
            match = p.filename() == *it;
            p = p.parent_path();
        }
        if (match) return p;
    }
    return std::nullopt;
}

} // namespace

std::string installation_path(const std::string &relative, const std::string &installed) {
    static const std::optional<fs::path> prefix = installation_prefix();
    std::error_code ec;
    if (prefix && !relative.empty() && fs::exists(*prefix / relative, ec)) return (*prefix / relative).string();
    return installed;
}

} // namespace turtlefinder
