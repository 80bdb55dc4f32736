// SPDX-License-Identifier: Apache-2.0
// fd link targets: "socket:[N]" among "pipe:[N]", "anon_inode:[...]", paths.
#include "fuzz_support.hpp"

#include "procfs/procfs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string_view text = turtlefinder::fuzz::as_text(data, size);
    auto inode = turtlefinder::procfs::parse_socket_link(text);
    if (!inode) return 0;
    TF_FUZZ_ASSERT(text.substr(0, 8) == "socket:[");
    TF_FUZZ_ASSERT(text.back() == ']');
    TF_FUZZ_ASSERT(text.size() > 9); // at least one digit
    return 0;
}
