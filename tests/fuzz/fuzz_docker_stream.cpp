// SPDX-License-Identifier: Apache-2.0
// The event-stream splitter: JSON objects back to back, cut into arbitrary
// read()s. The first byte seeds how the rest is cut; whatever the cut, the
// objects delivered and the verdict must be those of feeding it whole.
#include "fuzz_support.hpp"

#include <cerrno>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include <turtlefinder/clients/docker/decode.hpp>

namespace docker = turtlefinder::clients::docker;

namespace {

// Small enough for fuzz inputs to cross it.
constexpr std::size_t max_object = 512;

struct Outcome {
    std::vector<std::string> objects; // serialized
    bool failed = false;
    bool idle_at_end = false;
    bool operator==(const Outcome &) const = default;
};

Outcome run(std::string_view stream, std::uint32_t seed, bool whole) {
    docker::JsonStreamSplitter splitter(max_object);
    Outcome out;
    auto collect = [&](boost::json::value &&object) {
        TF_FUZZ_ASSERT(object.is_object());
        out.objects.push_back(boost::json::serialize(object));
        try {
            docker::decode_event(object);
        } catch (const docker::Error &e) {
            TF_FUZZ_ASSERT(e.code() == -EPROTO);
        }
        return true;
    };
    try {
        while (!stream.empty()) {
            std::size_t n = stream.size();
            if (!whole) {
                seed = seed * 1103515245u + 12345u; // any cheap deterministic sequence
                n = std::min<std::size_t>(n, 1 + (seed >> 16) % 17);
            }
            TF_FUZZ_ASSERT(splitter.feed(stream.substr(0, n), collect));
            stream.remove_prefix(n);
        }
    } catch (const docker::Error &e) {
        TF_FUZZ_ASSERT(e.code() == -EPROTO);
        out.failed = true;
        // A failed splitter stays failed.
        bool threw = false;
        try {
            splitter.feed("{}", collect);
        } catch (const docker::Error &) {
            threw = true;
        }
        TF_FUZZ_ASSERT(threw);
        TF_FUZZ_ASSERT(!splitter.idle());
    }
    if (!out.failed) out.idle_at_end = splitter.idle();
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view stream = turtlefinder::fuzz::as_text(data + 1, size - 1);
    Outcome whole = run(stream, 0, true);
    Outcome pieces = run(stream, data[0], false);
    TF_FUZZ_ASSERT(whole == pieces);
    return 0;
}
