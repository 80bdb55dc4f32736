// SPDX-License-Identifier: Apache-2.0
// /proc/PID/stat lines: a process can put anything into its comm, including
// spaces, parentheses and newlines.
#include "fuzz_support.hpp"

#include "procfs/procfs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string_view text = turtlefinder::fuzz::as_text(data, size);
    auto process = turtlefinder::procfs::parse_stat(text);
    if (!process) return 0;
    TF_FUZZ_ASSERT(process->pid > 0);
    TF_FUZZ_ASSERT(process->ppid >= 0);
    TF_FUZZ_ASSERT(process->children.empty());
    // The name is the text between the first '(' and the last ')'.
    TF_FUZZ_ASSERT(process->name.size() + 2 <= text.size());
    TF_FUZZ_ASSERT(text.find("(" + process->name + ")") != std::string_view::npos);
    return 0;
}
