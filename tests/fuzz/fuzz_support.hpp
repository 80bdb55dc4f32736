// SPDX-License-Identifier: Apache-2.0
// Shared by the fuzz targets. An invariant that does not hold aborts, so
// libFuzzer records the input as a crash (and the corpus replay test fails).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define TF_FUZZ_ASSERT(condition)                                                                       \
    do {                                                                                                \
        if (!(condition)) {                                                                             \
            std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #condition); \
            std::abort();                                                                               \
        }                                                                                               \
    } while (0)

namespace turtlefinder::fuzz {

inline std::string_view as_text(const std::uint8_t *data, std::size_t size) {
    return {reinterpret_cast<const char *>(data), size};
}

} // namespace turtlefinder::fuzz

// The libFuzzer entry point every target defines; the corpus replay test
// calls it too, so one source serves both builds.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size);
