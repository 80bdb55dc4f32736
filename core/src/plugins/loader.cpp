// SPDX-License-Identifier: Apache-2.0
#include "plugins/loader.hpp"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/dll/library_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <fmt/format.h>
#include <turtlefinder/plugin.h>

namespace turtlefinder::plugins {

namespace fs = std::filesystem;

namespace {

std::string check_owner_and_mode(const std::string &path, const char *what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return fmt::format("cannot stat {} {}: {}", what, path, std::strerror(errno));
    if (st.st_uid != 0) return fmt::format("{} {} is owned by uid {}, not root", what, path, st.st_uid);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return fmt::format("{} {} is writable by group or others (mode {:04o})", what, path, st.st_mode & 07777);
    return {};
}

bool has_elf_magic(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    return in.read(magic, sizeof magic) && std::memcmp(magic,
                                                       "\x7f"
                                                       "ELF",
                                                       4) == 0;
}

OpenedLibrary refused(std::string reason) {
    OpenedLibrary r;
    r.refusal = std::move(reason);
    return r;
}

} // namespace

std::string insecure_reason(const std::string &path) {
    if (::geteuid() != 0) return {};
    std::error_code ec;
    fs::path real = fs::canonical(path, ec);
    if (ec) return fmt::format("cannot resolve {}: {}", path, ec.message());
    std::vector<std::pair<std::string, const char *>> checks{{real.string(), "file"},
                                                             {real.parent_path().string(), "directory"}};
    // A symlink in the scanned directory can be swapped by whoever may write there.
    fs::path given_dir = fs::absolute(path, ec).parent_path();
    if (!ec && given_dir != real.parent_path()) checks.emplace_back(given_dir.string(), "directory");
    for (const auto &[p, what] : checks)
        if (std::string bad = check_owner_and_mode(p, what); !bad.empty()) return bad;
    return {};
}

OpenedLibrary open_library(const std::string &canonical) {
    if (!has_elf_magic(canonical)) return refused("not a shared object (no ELF header)");
    try {
        boost::dll::library_info info(canonical);
        auto symbols = info.symbols();
        if (std::find(symbols.begin(), symbols.end(), TF_PLUGIN_ENTRY_SYMBOL) == symbols.end())
            return refused("no " TF_PLUGIN_ENTRY_SYMBOL " symbol");
    } catch (const std::exception &e) {
        return refused(fmt::format("not a shared object (unreadable ELF file: {})", e.what()));
    }

    auto library = std::make_shared<boost::dll::shared_library>();
    try {
        library->load(canonical, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    } catch (const std::exception &e) {
        // Boost keeps only an error code; dlopen again to learn what the dynamic linker said.
        std::string why = e.what();
        if (void *h = ::dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL)) {
            ::dlclose(h);
        } else if (const char *dl = ::dlerror()) {
            why = dl;
        }
        return refused(fmt::format("cannot load: {}", why));
    }
    if (!library->has(TF_PLUGIN_ENTRY_SYMBOL)) return refused(TF_PLUGIN_ENTRY_SYMBOL " is not exported");
    OpenedLibrary opened;
    opened.descriptor = &library->get<const tf_plugin_descriptor>(TF_PLUGIN_ENTRY_SYMBOL);
    opened.library = std::move(library);
    return opened;
}

} // namespace turtlefinder::plugins
