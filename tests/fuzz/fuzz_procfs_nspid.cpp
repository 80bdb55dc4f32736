// SPDX-License-Identifier: Apache-2.0
// /proc/PID/status documents and their NSpid line.
#include "fuzz_support.hpp"

#include "procfs/procfs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string_view text = turtlefinder::fuzz::as_text(data, size);
    auto chain = turtlefinder::procfs::parse_nspid(text);
    if (!chain) return 0;
    TF_FUZZ_ASSERT(!chain->empty());
    TF_FUZZ_ASSERT(text.find("NSpid:") != std::string_view::npos);
    for (int pid : *chain) TF_FUZZ_ASSERT(pid > 0);
    return 0;
}
