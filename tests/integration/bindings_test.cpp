// SPDX-License-Identifier: Apache-2.0
// The C, Python and Go examples agree with `turtlefinder --json` on a real
// dockerd the lab starts, with a container and a docker-in-docker container
// running one of its own (bindings.sh builds them against a staged install
// and compares, prefixes and PIDs included).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "lab.hpp"
#include "nested.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace lab = turtlefinder::lab;

TEST(Bindings, ExamplesListTheLabsContainersLikeTheCli) {
    TF_REQUIRE_ROOT();
    if (!lab::which("dockerd")) TF_SKIP_OR_FAIL("dockerd is not installed");
    for (const char *tool : {"go", "make", "cc", "python3"})
        if (!lab::which(tool)) TF_SKIP_OR_FAIL(std::string(tool) + " is not installed");
    lab::Lab l("bind");
    lab::Dockerd dockerd(l);
    dockerd.import_busybox();
    dockerd.docker_ok({"run", "-d", "--name", "bindings-box", "busybox-img", "sleep", "600"});
    const char *source = std::getenv("TF_SOURCE_ROOT");
    ASSERT_NE(source, nullptr);
    lab::NestedDockerd dind(l, lab::docker_api(l, dockerd), "tf-bind-dind");
    dind.run_busybox("bindings-inner");
    auto result = lab::run(
        {std::string(source) + "/tests/integration/bindings.sh", dockerd.socket(), dind.host_path("/run/docker.sock")},
        {}, 600s);
    EXPECT_TRUE(result.ok()) << "bindings.sh: " << result.out << result.err;
    std::cout << result.out;
}

} // namespace
