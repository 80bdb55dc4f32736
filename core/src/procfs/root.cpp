// SPDX-License-Identifier: Apache-2.0
// Opening paths inside a process's root with the kernel's help, so that what
// was checked is what is used: the handle, not a path resolved again later.
#include "procfs/procfs.hpp"

#include <fcntl.h>
#include <linux/openat2.h> // glibc 2.36 has no openat2 wrapper
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "log.hpp"
#include "procfs/files.hpp"

namespace turtlefinder::procfs {

namespace {

// openat2 answers EAGAIN when a rename or mount anywhere raced with a ".."
// step; a path that keeps racing is given up on rather than looped over.
constexpr int max_eagain_retries = 16;

std::atomic<bool> kernel_lacks_openat2{false};

// No RESOLVE_NO_XDEV: API sockets live on other mounts than the root (a
// tmpfs /run, a socket bind-mounted into a container) and mounts inside the
// root are the process's own anyway.
constexpr std::uint64_t in_root = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

bool valid_path(std::string_view path) {
    // A NUL would silently cut the C string handed to the kernel.
    return !path.empty() && path.front() == '/' && path.find('\0') == std::string_view::npos;
}

// The kernel's name for an open file ("/proc/self/fd/N" link text): its path
// in the mount namespace it was opened in, or in ours where ours reaches it.
std::optional<std::string> name_of(const Fd &fd) {
    auto text = read_link("/proc/self/fd/" + std::to_string(fd.get()));
    if (!text || text->empty() || text->front() != '/' || text->ends_with(" (deleted)")) return std::nullopt;
    return text;
}

} // namespace

Root::Root(std::string dir) : dir_(std::move(dir)) {
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
    fd_ = Fd{::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
}

std::optional<Fd> Root::open(std::string_view path, Resolver how) const {
    if (!ok() || !valid_path(path)) return std::nullopt;
    const std::string name(path);
    if (how == Resolver::kernel && !kernel_lacks_openat2.load(std::memory_order_relaxed)) {
        open_how request{};
        request.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
        request.resolve = in_root;
        for (int attempt = 0; attempt <= max_eagain_retries; ++attempt) {
            long fd = ::syscall(SYS_openat2, fd_.get(), name.c_str(), &request, sizeof request);
            if (fd >= 0) return Fd{static_cast<int>(fd)};
            if (errno == EAGAIN || errno == EINTR) continue;
            if (errno != ENOSYS) return std::nullopt;
            if (!kernel_lacks_openat2.exchange(true))
                log().debug("the kernel has no openat2: socket paths are resolved by walking them (a process "
                            "can then swap a directory between the walk and the open)");
            break;
        }
        if (!kernel_lacks_openat2.load(std::memory_order_relaxed)) return std::nullopt; // EAGAIN every time
    }
    auto walked = resolve_in_root(dir_, path);
    if (!walked) return std::nullopt;
    // The walker's answer is dir_ + the path inside the root: open that part
    // from the root handle, so the root at least is the one opened once.
    std::string inside = walked->substr(dir_ == "/" ? 1 : dir_.size());
    while (!inside.empty() && inside.front() == '/') inside.erase(0, 1);
    if (inside.empty()) inside = ".";
    int fd = ::openat(fd_.get(), inside.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    return Fd{fd};
}

std::optional<Fd> Root::open_socket(std::string_view path, Resolver how) const {
    auto handle = open(path, how);
    struct stat info {};
    if (!handle || ::fstat(handle->get(), &info) != 0 || !S_ISSOCK(info.st_mode)) return std::nullopt;
    return handle;
}

std::optional<std::string> Root::shown_path(const Fd &handle) const {
    auto root_name = name_of(fd_);
    auto name = name_of(handle);
    if (!root_name || !name) return std::nullopt;
    std::string inside = *name;
    if (*root_name != "/") {
        // A root our mount namespace reaches (a chroot, a fixture tree): the
        // kernel names files from our root, the root's own path first.
        if (!name->starts_with(*root_name) || (name->size() > root_name->size() && (*name)[root_name->size()] != '/'))
            return std::nullopt;
        inside = name->substr(root_name->size());
        if (inside.empty()) inside = "/";
    }
    return (dir_ == "/" ? std::string() : dir_) + inside;
}

} // namespace turtlefinder::procfs
