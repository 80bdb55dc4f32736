// SPDX-License-Identifier: Apache-2.0
// Paths inside a process's root, with symlinks evaluated inside it.
#include "procfs/procfs.hpp"

#include <sys/stat.h>

#include <deque>

#include "procfs/files.hpp"

namespace turtlefinder::procfs {

namespace {

// Linux's own limit on symlinks followed during one lookup (MAXSYMLINKS).
constexpr int max_symlinks = 40;

} // namespace

std::optional<std::string> resolve_in_root(const std::string &root_dir, std::string_view path) {
    if (path.empty() || path.front() != '/') return std::nullopt;
    // A NUL would silently cut the C string handed to lstat.
    if (path.find('\0') != std::string_view::npos) return std::nullopt;

    std::string base = root_dir;
    while (!base.empty() && base.back() == '/') base.pop_back();

    // Components still to walk, front first; a symlink's target is pushed in
    // front of what remains, as the kernel does.
    std::deque<std::string> pending;
    auto push_front_components = [&](std::string_view text) {
        std::vector<std::string_view> parts;
        while (!text.empty()) {
            std::size_t slash = text.find('/');
            std::string_view part = text.substr(0, slash);
            if (!part.empty() && part != ".") parts.emplace_back(part);
            if (slash == std::string_view::npos) break;
            text.remove_prefix(slash + 1);
        }
        for (auto it = parts.rbegin(); it != parts.rend(); ++it) pending.emplace_front(*it);
    };
    push_front_components(path);

    // `resolved` holds only components verified (by lstat) to be real
    // directories below base, so base + resolved never passes through a link.
    std::vector<std::string> resolved;
    auto current = [&] {
        std::string result = base;
        for (const auto &part : resolved) {
            result += '/';
            result += part;
        }
        return result;
    };

    int links = 0;
    while (!pending.empty()) {
        std::string part = std::move(pending.front());
        pending.pop_front();
        if (part == "..") {
            if (!resolved.empty()) resolved.pop_back(); // never above the root
            continue;
        }
        std::string candidate = current() + '/' + part;
        struct stat info {};
        if (::lstat(candidate.c_str(), &info) != 0) {
            if (errno == ENOENT && pending.empty()) {
                resolved.push_back(std::move(part)); // a missing last name is fine
                break;
            }
            return std::nullopt;
        }
        if (S_ISLNK(info.st_mode)) {
            if (++links > max_symlinks) return std::nullopt;
            auto target = read_link(candidate);
            if (!target || target->empty()) return std::nullopt;
            if (target->front() == '/') resolved.clear(); // absolute: restart at the root
            push_front_components(*target);
            continue;
        }
        resolved.push_back(std::move(part));
        if (!S_ISDIR(info.st_mode) && !pending.empty()) return std::nullopt;
    }
    std::string result = current();
    if (resolved.empty()) result += '/';
    return result;
}

} // namespace turtlefinder::procfs
