// SPDX-License-Identifier: Apache-2.0
// The configuration file. load_config() reads a path, so the input goes into
// a memfd named through /proc/self/fd.
#include "fuzz_support.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include <turtlefinder/options.hpp>

namespace {

// Created once and reused: the fuzz loop must not open an fd per input.
int input_fd() {
    static const int fd = [] {
        int created = ::memfd_create("tf-fuzz-config", MFD_CLOEXEC);
        TF_FUZZ_ASSERT(created >= 0);
        return created;
    }();
    return fd;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    int fd = input_fd();
    TF_FUZZ_ASSERT(::ftruncate(fd, 0) == 0);
    TF_FUZZ_ASSERT(::pwrite(fd, data, size, 0) == static_cast<ssize_t>(size));
    std::string path = "/proc/self/fd/" + std::to_string(fd);

    turtlefinder::Options defaults;
    turtlefinder::Options options;
    try {
        auto settings = turtlefinder::load_config(path, options);
        (void)settings;
        TF_FUZZ_ASSERT(options.health_interval.count() >= 10);
        TF_FUZZ_ASSERT(options.online_wait.count() >= 0);
        TF_FUZZ_ASSERT(options.probe_timeout.count() >= 1);
        TF_FUZZ_ASSERT(options.relist_interval.count() >= 10);
    } catch (const std::runtime_error &e) {
        // A bad file changes nothing, and the message names the file.
        TF_FUZZ_ASSERT(std::string(e.what()).starts_with(path));
        TF_FUZZ_ASSERT(options.health_interval == defaults.health_interval);
        TF_FUZZ_ASSERT(options.plugin_dirs == defaults.plugin_dirs);
        TF_FUZZ_ASSERT(options.plugin_settings == defaults.plugin_settings);
    }
    return 0;
}
