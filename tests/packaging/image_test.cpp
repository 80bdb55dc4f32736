// SPDX-License-Identifier: Apache-2.0
// The container image (deploy/Containerfile, target `prebuilt`), built with
// no registry and no network: the Debian packages (built by the packaging
// test, or here if missing) extracted into the build context, on a base image
// made of the host's own installed run-time libraries (runtime_files.py), built
// by the lab's own dockerd. Run with the host's PID namespace and /proc, the
// containerised turtlefinder reports the same containers with the same host
// PIDs as the CLI on the host.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "lab.hpp"
#include "testing.hpp"

namespace {

using namespace std::chrono_literals;
namespace lab = turtlefinder::lab;
namespace json = boost::json;
namespace fs = std::filesystem;

std::string env(const char *name) {
    const char *v = std::getenv(name);
    return v != nullptr ? v : "";
}

// The Debian package NAME in DIR, or "" when absent.
std::string deb_in(const std::string &dir, const std::string &name) {
    std::error_code ec;
    for (const auto &entry : fs::directory_iterator(dir, ec)) {
        auto file = entry.path().filename().string();
        if (file.starts_with(name + "_") && file.ends_with(".deb")) return entry.path().string();
    }
    return "";
}

lab::RunResult sh(const std::string &script, lab::Millis timeout = 120s) {
    return lab::run({"bash", "-ec", "set -o pipefail; " + script}, {}, timeout);
}

using Seen = std::map<std::string, std::tuple<std::string, std::int64_t, bool>>; // id → name, pid, paused

// The containers of the engine whose API path ends with `socket`, and that engine's PID.
std::pair<Seen, std::int64_t> containers_of(const std::string &out, const std::string &socket,
                                            const std::string &skip_name) {
    auto doc = json::parse(out);
    Seen seen;
    std::int64_t engine_pid = 0;
    auto &engines = doc.at("engines").as_array();
    for (auto &e : engines)
        if (std::string_view(e.at("api").as_string()).ends_with(socket)) engine_pid = e.at("pid").as_int64();
    for (auto &c : doc.at("containers").as_array()) {
        if (c.at("engine").is_null()) continue;
        auto &e = engines.at(c.at("engine").as_int64());
        if (!std::string_view(e.at("api").as_string()).ends_with(socket)) continue;
        std::string name(c.at("name").as_string());
        if (name == skip_name) continue;
        seen[std::string(c.at("id").as_string())] = {name, c.at("pid").as_int64(), c.at("paused").as_bool()};
    }
    return {seen, engine_pid};
}

TEST(Image, TheContainerisedCliSeesTheHostsEnginesWithHostPids) {
    TF_REQUIRE_ROOT();
    if (!lab::which("dockerd") || !lab::which("docker")) TF_SKIP_OR_FAIL("dockerd or docker is not installed");
    tftest::LeakGuard leaks;
    const std::string src = env("TF_SOURCE_ROOT"), build = env("TF_BUILD_ROOT");
    const std::string debs = build + "/packaging";
    const std::vector<std::string> packages = {"turtlefinder", "libturtlefinder0", "libtf-grpc-client0"};

    bool have = true;
    for (const auto &p : packages) have = have && !deb_in(debs, p).empty();
    if (!have) {
        auto r = lab::run({"bash", src + "/tests/packaging/build_debs.sh", src, debs}, {}, 3600s);
        ASSERT_TRUE(r.ok()) << r.out << r.err;
    }

    lab::Lab lab("image");
    // Build context: the packages extracted into root/. Base: the host's
    // files of their run-time dependencies, on a merged-/usr skeleton.
    std::string ctx = lab.mkdir("ctx"), skel = lab.mkdir("skel");
    std::string deb_args;
    for (const auto &p : packages) {
        auto r = lab::run({"dpkg-deb", "-x", deb_in(debs, p), ctx + "/root"});
        ASSERT_TRUE(r.ok()) << r.err;
        deb_args += " '" + deb_in(debs, p) + "'";
    }
    for (const char *d :
         {"usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "tmp", "proc", "sys", "dev", "run", "host/proc"})
        fs::create_directories(skel + "/" + d);
    for (const char *d : {"bin", "sbin", "lib", "lib64"}) fs::create_symlink(std::string("usr/") + d, skel + "/" + d);
    lab.write_file("skel/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    lab.write_file("skel/etc/group", "root:x:0:\n");
    std::string base_tar = lab.path("base.tar");
    auto base = sh("tar -C '" + skel + "' -cf '" + base_tar + "' . && python3 '" + src +
                   "/tests/packaging/runtime_files.py'" + deb_args + " | tar -C / --null -T - -rf '" + base_tar + "'");
    ASSERT_TRUE(base.ok()) << base.err;

    lab::Dockerd dockerd(lab);
    dockerd.docker_ok({"import", base_tar, "tf-base"}, 300s);
    auto built = dockerd.docker({"build", "-q", "-f", src + "/deploy/Containerfile", "--target", "prebuilt",
                                 "--build-arg", "BASE=tf-base", "-t", "tf-image", ctx},
                                600s);
    ASSERT_TRUE(built.ok()) << built.out << built.err;

    dockerd.import_busybox();
    dockerd.run_container({"--name", "one"});
    dockerd.run_container({"--name", "two", "--label", "com.docker.compose.project=shop"});
    auto paused = dockerd.run_container({"--name", "three"});
    dockerd.docker_ok({"pause", paused});

    const std::string cli = build + "/tools/turtlefinder";
    auto on_host = lab::run({cli, "--json", "--online-wait", "5000"}, {}, 60s);
    ASSERT_EQ(on_host.exit_code, 0) << on_host.err;
    auto in_container = dockerd.docker({"run", "--rm", "--name", "tf-in-container", "--pid", "host", "--network",
                                        "none", "--cap-add", "SYS_PTRACE", "-v", "/proc:/host/proc:ro", "-v",
                                        "/run:/run:ro", "tf-image", "--json", "--online-wait", "5000"},
                                       120s);
    ASSERT_EQ(in_container.exit_code, 0) << in_container.out << in_container.err;

    auto [host_seen, host_engine] = containers_of(on_host.out, dockerd.socket(), "tf-in-container");
    auto [image_seen, image_engine] = containers_of(in_container.out, dockerd.socket(), "tf-in-container");
    EXPECT_EQ(host_engine, dockerd.pid());
    EXPECT_EQ(image_engine, dockerd.pid()) << in_container.out;
    EXPECT_EQ(host_seen.size(), 3u) << on_host.out;
    EXPECT_EQ(image_seen, host_seen) << "host:\n" << on_host.out << "\nin the container:\n" << in_container.out;
    for (const auto &[id, seen] : image_seen) {
        EXPECT_GT(std::get<1>(seen), 0) << id;
        EXPECT_EQ(std::get<2>(seen), id == paused) << id;
        auto inspect = dockerd.docker_ok({"inspect", "-f", "{{.State.Pid}}", id});
        EXPECT_EQ(std::to_string(std::get<1>(seen)), inspect) << "host PID of " << std::get<0>(seen);
    }
    dockerd.stop();
}

} // namespace
