// SPDX-License-Identifier: Apache-2.0
// The verbose ContainerStatus "info" JSON of a CRI runtime, as the runtime
// (or a container able to influence it) wrote it.
#include "fuzz_support.hpp"

#include <string>

#include <turtlefinder/clients/grpc/cri.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    std::string json(turtlefinder::fuzz::as_text(data, size));
    int pid = turtlefinder::clients::grpc::pid_from_info_json(json);
    TF_FUZZ_ASSERT(pid >= 0);
    // No "pid" text, no PID.
    if (json.find("pid") == std::string::npos && json.find('\\') == std::string::npos) TF_FUZZ_ASSERT(pid == 0);
    return 0;
}
