// SPDX-License-Identifier: Apache-2.0
#include "plugins/metadata.hpp"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>
#include <turtlefinder/plugin.h>

namespace turtlefinder::plugins {

namespace {

// Beyond these a file is not a shared object we would load anyway.
constexpr std::size_t max_sections = 4096;
constexpr std::size_t max_section_names = 1 << 20;
constexpr std::size_t max_comm = 15; // `comm` is at most 15 bytes
constexpr std::size_t max_suffix = 255;
constexpr std::size_t max_version = 64;
constexpr std::size_t max_description = 256;

bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

// Printable ASCII without blanks, and no '/': what process names and socket
// suffixes are made of.
bool is_claim_char(char c) { return c > ' ' && c < 0x7f && c != '/'; }

std::string check_claim(std::string_view key, std::string_view value, std::size_t max, bool slash_ok) {
    if (value.empty() || value.size() > max)
        return fmt::format("metadata entry \"{}\" has a value of {} bytes (1 to {} allowed)", key, value.size(), max);
    for (char c : value)
        if (!is_claim_char(c) && !(slash_ok && c == '/'))
            return fmt::format("metadata entry \"{}\" has a character that is not allowed (byte 0x{:02x})", key,
                               static_cast<unsigned char>(c));
    return {};
}

std::string check_text(std::string_view key, std::string_view value, std::size_t max) {
    if (value.size() > max)
        return fmt::format("metadata entry \"{}\" has a value of {} bytes (at most {} allowed)", key, value.size(),
                           max);
    for (char c : value)
        if (static_cast<unsigned char>(c) < ' ' || c == 0x7f)
            return fmt::format("metadata entry \"{}\" holds a control character", key);
    return {};
}

bool parse_abi(std::string_view v, unsigned &major, unsigned &minor) {
    auto dot = v.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == v.size() || v.size() > 21) return false;
    auto number = [](std::string_view s, unsigned &out) {
        out = 0;
        for (char c : s) {
            if (c < '0' || c > '9' || out > 100000) return false;
            out = out * 10 + static_cast<unsigned>(c - '0');
        }
        return true;
    };
    return number(v.substr(0, dot), major) && number(v.substr(dot + 1), minor);
}

void add_once(std::vector<std::string> &out, std::string_view v) {
    if (std::find(out.begin(), out.end(), v) == out.end()) out.emplace_back(v);
}

ParsedInfo refused(std::string reason) {
    ParsedInfo r;
    r.refusal = std::move(reason);
    return r;
}

struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

bool read_at(int fd, void *buf, std::size_t n, std::uint64_t offset) {
    auto *p = static_cast<char *>(buf);
    while (n > 0) {
        ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<std::size_t>(r);
        offset += static_cast<std::uint64_t>(r);
    }
    return true;
}

} // namespace

std::vector<std::string> PluginInfo::kinds() const {
    std::vector<std::string> k;
    if (!process_names.empty()) k.emplace_back("engine-detector");
    if (!activator_names.empty()) k.emplace_back("socket-activator");
    if (!socket_suffixes.empty() || !service_names.empty()) k.emplace_back("activated-engine");
    return k;
}

std::vector<std::string> PluginInfo::claims() const {
    std::vector<std::string> all;
    for (const auto *names : {&process_names, &activator_names, &service_names, &socket_suffixes})
        for (const auto &n : *names) add_once(all, n);
    return all;
}

ParsedInfo parse_plugin_info(std::string_view section) {
    if (section.empty()) return refused("metadata section " TF_PLUGIN_INFO_SECTION " is empty");
    if (section.size() > TF_PLUGIN_INFO_MAX)
        return refused(fmt::format("metadata section " TF_PLUGIN_INFO_SECTION " is {} bytes, more than {}",
                                   section.size(), TF_PLUGIN_INFO_MAX));
    if (section.back() != '\0') return refused("metadata section " TF_PLUGIN_INFO_SECTION " is not NUL-terminated");
    PluginInfo info;
    bool have_abi = false, have_name = false, have_version = false, have_description = false;
    auto once = [](bool &seen, std::string_view key) -> std::string {
        if (seen) return fmt::format("metadata entry \"{}\" appears twice", key);
        seen = true;
        return {};
    };
    for (std::size_t pos = 0; pos < section.size();) {
        std::size_t end = section.find('\0', pos);
        std::string_view entry = section.substr(pos, end - pos);
        pos = end + 1;
        if (entry.empty()) continue; // padding between entries
        std::size_t eq = entry.find('=');
        std::string_view key = entry.substr(0, std::min(eq, entry.size()));
        if (eq == std::string_view::npos || key.empty() || key.size() > 32 ||
            !std::all_of(key.begin(), key.end(), is_name_char))
            return refused(fmt::format("metadata entry \"{}\" is not key=value with a key of [a-z0-9-]",
                                       entry.substr(0, std::min<std::size_t>(entry.size(), 40))));
        std::string_view value = entry.substr(eq + 1);
        std::string bad;
        if (key == "abi") {
            bad = once(have_abi, key);
            if (bad.empty() && !parse_abi(value, info.abi_major, info.abi_minor))
                bad = "metadata entry \"abi\" is not MAJOR.MINOR";
        } else if (key == "name") {
            bad = once(have_name, key);
            if (bad.empty() &&
                (value.empty() || value.size() > 64 || !std::all_of(value.begin(), value.end(), is_name_char)))
                bad = fmt::format("invalid name \"{}\" in metadata (want [a-z0-9-]+, at most 64)",
                                  value.substr(0, std::min<std::size_t>(value.size(), 80)));
            info.name = value;
        } else if (key == "version") {
            bad = once(have_version, key);
            if (bad.empty()) bad = check_text(key, value, max_version);
            info.version = value;
        } else if (key == "description") {
            bad = once(have_description, key);
            if (bad.empty()) bad = check_text(key, value, max_description);
            info.description = value;
        } else if (key == "detector" || key == "activator" || key == "activated-service") {
            bad = check_claim(key, value, max_comm, false);
            add_once(key == "detector"    ? info.process_names
                     : key == "activator" ? info.activator_names
                                          : info.service_names,
                     value);
        } else if (key == "activated-socket") {
            bad = check_claim(key, value, max_suffix, true);
            add_once(info.socket_suffixes, value);
        } // other keys: from a newer minor, ignored
        if (!bad.empty()) return refused(bad);
    }
    if (!have_abi) return refused("metadata section " TF_PLUGIN_INFO_SECTION " has no abi= entry");
    if (!have_name) return refused("metadata section " TF_PLUGIN_INFO_SECTION " has no name= entry");
    if (info.abi_major != TF_ABI_VERSION_MAJOR)
        return refused(fmt::format("ABI major version differs: plugin {}.{}, host {}.{}", info.abi_major,
                                   info.abi_minor, TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR));
    if (info.abi_minor > TF_ABI_VERSION_MINOR)
        return refused(fmt::format("ABI minor version too new: plugin {}.{}, host {}.{}", info.abi_major,
                                   info.abi_minor, TF_ABI_VERSION_MAJOR, TF_ABI_VERSION_MINOR));
    if (info.kinds().empty()) return refused("metadata section " TF_PLUGIN_INFO_SECTION " claims nothing");
    ParsedInfo out;
    out.info = std::move(info);
    return out;
}

ParsedInfo read_plugin_info(const std::string &path) {
    Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (file.fd < 0) return refused(fmt::format("cannot open: {}", std::strerror(errno)));
    Elf64_Ehdr eh{};
    if (!read_at(file.fd, &eh, sizeof eh, 0)) return {};
    const bool native = std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
                        eh.e_ident[EI_DATA] == (std::endian::native == std::endian::little ? ELFDATA2LSB : ELFDATA2MSB);
    if (!native) return {};
    if (eh.e_shoff == 0 || eh.e_shnum == 0) return {};
    if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum > max_sections || eh.e_shstrndx >= eh.e_shnum)
        return refused("unreadable ELF file: bad section header table");
    std::vector<Elf64_Shdr> sections(eh.e_shnum);
    if (!read_at(file.fd, sections.data(), sections.size() * sizeof(Elf64_Shdr), eh.e_shoff))
        return refused("unreadable ELF file: section header table beyond its end");
    const Elf64_Shdr &names = sections[eh.e_shstrndx];
    if (names.sh_size == 0 || names.sh_size > max_section_names)
        return refused("unreadable ELF file: bad section name table");
    std::string name_table(names.sh_size, '\0');
    if (!read_at(file.fd, name_table.data(), name_table.size(), names.sh_offset))
        return refused("unreadable ELF file: section name table beyond its end");
    const std::string_view wanted = TF_PLUGIN_INFO_SECTION;
    for (const auto &s : sections) {
        if (s.sh_name >= name_table.size()) continue;
        std::string_view name(name_table.c_str() + s.sh_name);
        if (name != wanted) continue;
        if (s.sh_type == SHT_NOBITS) return refused("metadata section " TF_PLUGIN_INFO_SECTION " holds no data");
        if (s.sh_size > TF_PLUGIN_INFO_MAX)
            return refused(fmt::format("metadata section " TF_PLUGIN_INFO_SECTION " is {} bytes, more than {}",
                                       s.sh_size, TF_PLUGIN_INFO_MAX));
        std::string data(s.sh_size, '\0');
        if (!read_at(file.fd, data.data(), data.size(), s.sh_offset))
            return refused("metadata section " TF_PLUGIN_INFO_SECTION " lies beyond the end of the file");
        return parse_plugin_info(data);
    }
    return {};
}

} // namespace turtlefinder::plugins
