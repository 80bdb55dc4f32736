// SPDX-License-Identifier: Apache-2.0
// /proc/PID/net/unix tables: socket paths are chosen by whoever bind()s, so
// a container can put spaces, '@' or odd bytes in them.
#include "fuzz_support.hpp"

#include <algorithm>
#include <set>

#include "procfs/procfs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string_view text = turtlefinder::fuzz::as_text(data, size);
    auto sockets = turtlefinder::procfs::parse_net_unix(text);
    // At most one socket per line after the header.
    TF_FUZZ_ASSERT(sockets.size() <= static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')));
    std::set<std::uint64_t> inodes;
    for (const auto &socket : sockets) {
        TF_FUZZ_ASSERT(!socket.path.empty());
        TF_FUZZ_ASSERT(socket.path.front() != '@'); // abstract sockets are never listed
        TF_FUZZ_ASSERT(socket.path.find('\n') == std::string::npos);
        TF_FUZZ_ASSERT(text.find(socket.path) != std::string_view::npos);
        TF_FUZZ_ASSERT(inodes.insert(socket.inode).second); // de-duplicated by inode
    }
    return 0;
}
