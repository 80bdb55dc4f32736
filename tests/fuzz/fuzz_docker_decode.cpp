// SPDX-License-Identifier: Apache-2.0
// The Docker API body decoders. The first byte picks the decoder, the rest is
// the body. Every decoder must either return or throw Error(-EPROTO).
#include "fuzz_support.hpp"

#include <cerrno>

#include <turtlefinder/clients/docker/decode.hpp>

namespace docker = turtlefinder::clients::docker;

namespace {

void check_labels(const docker::Labels &labels) {
    for (const auto &[key, value] : labels) {
        (void)value;
        (void)key.size();
    }
}

void decode(unsigned selector, std::string_view body) {
    switch (selector % 6) {
    case 0: {
        auto v = docker::decode_version(body);
        TF_FUZZ_ASSERT(v.api_version.major >= 0 && v.api_version.minor >= 0);
        break;
    }
    case 1: docker::decode_info(body); break;
    case 2:
        for (const auto &c : docker::decode_container_list(body)) {
            TF_FUZZ_ASSERT(!c.id.empty());
            check_labels(c.labels);
        }
        break;
    case 3: {
        auto d = docker::decode_container_inspect(body);
        TF_FUZZ_ASSERT(!d.id.empty());
        TF_FUZZ_ASSERT(d.pid >= 0);
        check_labels(d.labels);
        break;
    }
    case 4: check_labels(docker::decode_event(body).attributes); break;
    case 5:
        // Versions: whatever parses prints back to the same numbers.
        if (auto v = docker::parse_api_version(body)) {
            auto again = docker::parse_api_version(v->str());
            TF_FUZZ_ASSERT(again && *again == *v);
        }
        break;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view body = turtlefinder::fuzz::as_text(data + 1, size - 1);
    try {
        decode(data[0], body);
    } catch (const docker::Error &e) {
        TF_FUZZ_ASSERT(e.code() == -EPROTO);
    }
    return 0;
}
