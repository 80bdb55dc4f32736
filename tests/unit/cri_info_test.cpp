// SPDX-License-Identifier: Apache-2.0
// Pure helpers of the gRPC engine clients: PID from CRI verbose info, the
// skip-namespaces list, status → errno mapping, and the node engine id.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <turtlefinder/clients/grpc/containerd.hpp>
#include <turtlefinder/clients/grpc/cri.hpp>

#include "testing.hpp"

namespace gc = turtlefinder::clients::grpc;

TEST(CriInfo, PidFromVerboseInfo) {
    EXPECT_EQ(gc::pid_from_info_json(R"({"pid": 4242, "sandboxID": "abc"})"), 4242);
    EXPECT_EQ(gc::pid_from_info_json(R"({"runtimeSpec": {"process": {"pid": 1}}, "pid": 7})"), 7);
    EXPECT_EQ(gc::pid_from_info_json(R"({"sandboxID": "abc"})"), 0);
    EXPECT_EQ(gc::pid_from_info_json(R"({"pid": "12"})"), 0);
    EXPECT_EQ(gc::pid_from_info_json(R"({"pid": -5})"), 0);
    EXPECT_EQ(gc::pid_from_info_json("not json {"), 0);
    EXPECT_EQ(gc::pid_from_info_json(""), 0);
    EXPECT_EQ(gc::pid_from_info_json("[1,2]"), 0);
    EXPECT_EQ(gc::pid_from_info_json(R"({"pid": 99999999999})"), INT32_MAX);
}

TEST(CriInfo, SkipNamespaceList) {
    EXPECT_EQ(gc::split_list("moby,k8s.io"), (std::set<std::string>{"moby", "k8s.io"}));
    EXPECT_EQ(gc::split_list(" a , ,b,, "), (std::set<std::string>{"a", "b"}));
    EXPECT_TRUE(gc::split_list("").empty());
    EXPECT_EQ(gc::split_list(gc::default_skip_namespaces), (std::set<std::string>{"moby", "k8s.io"}));
}

TEST(CriInfo, StatusToErrno) {
    EXPECT_EQ(gc::errno_of(grpc::Status::OK), 0);
    EXPECT_EQ(gc::errno_of(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "")), -ETIMEDOUT);
    EXPECT_EQ(gc::errno_of(grpc::Status(grpc::StatusCode::UNAVAILABLE, "")), -ECONNREFUSED);
    EXPECT_EQ(gc::errno_of(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "")), -ENOTSUP);
    EXPECT_EQ(gc::errno_of(grpc::Status(grpc::StatusCode::CANCELLED, "")), -ECANCELED);
    EXPECT_EQ(gc::errno_of(grpc::Status(grpc::StatusCode::NOT_FOUND, "")), -ENOENT);
    EXPECT_EQ(gc::errno_of(grpc::Status(grpc::StatusCode::INTERNAL, "")), -EPROTO);
    try {
        gc::check(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "nope"), "events");
        FAIL() << "check() must throw on a failed status";
    } catch (const turtlefinder::sdk::Error &e) {
        EXPECT_EQ(e.code(), -ENOTSUP);
        EXPECT_STREQ(e.what(), "events: nope");
    }
}

TEST(CriInfo, NodeEngineIdIsHostnameAndInnerSocketPath) {
    char hostname[256] = {};
    ASSERT_EQ(::gethostname(hostname, sizeof hostname - 1), 0);
    int pid = static_cast<int>(::getpid());
    std::string root = "/proc/" + std::to_string(pid) + "/root";
    // The /proc/PID/root prefix the host adds is not part of the identity.
    EXPECT_EQ(gc::node_engine_id(pid, root + "/run/crio/crio.sock"), std::string(hostname) + ":/run/crio/crio.sock");
    EXPECT_EQ(gc::node_engine_id(pid, "/run/x.sock"), std::string(hostname) + ":/run/x.sock");
    // Another PID's prefix is kept: it is not this engine's root.
    EXPECT_EQ(gc::node_engine_id(pid, "/proc/1/rootfs/a.sock"), std::string(hostname) + ":/proc/1/rootfs/a.sock");
}

TEST(CriInfo, NodeEngineIdThroughAHostHandle) {
    // The host hands plugins "/proc/self/fd/N" of an O_PATH handle: the id
    // still names the socket's path, not the descriptor.
    tftest::TempDir dir("tf-cri-handle-");
    const std::string sock = dir.path() + "/crio.sock";
    int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(sock.size(), sizeof addr.sun_path);
    std::memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
    int handle = ::open(sock.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    ASSERT_GE(handle, 0);
    const std::string given = "/proc/self/fd/" + std::to_string(handle);
    EXPECT_EQ(gc::socket_name(given), sock);
    EXPECT_EQ(gc::socket_name(sock + ".ttrpc"), sock + ".ttrpc");
    char hostname[256] = {};
    ASSERT_EQ(::gethostname(hostname, sizeof hostname - 1), 0);
    EXPECT_EQ(gc::node_engine_id(static_cast<int>(::getpid()), given), std::string(hostname) + ":" + sock);
    ::close(handle);
    ::close(listener);
}

TEST(CriInfo, ProbesFailFastOnMissingSockets) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(gc::probe_cri("/nonexistent/dir/cri.sock", std::chrono::milliseconds(300)).has_value());
    EXPECT_FALSE(gc::probe_containerd("/nonexistent/dir/c.sock", std::chrono::milliseconds(300)).has_value());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, tftest::hang_guard);
}

TEST(CriInfo, LongSocketPaths) {
    // Longer than sun_path: reached through an O_PATH descriptor of the
    // directory; a directory that does not exist is a clear error.
    std::string dir = "/tmp/tf-" + std::to_string(::getpid()) + "-" + std::string(110, 'x');
    EXPECT_THROW({ gc::UnixChannel channel(dir + "/s.sock"); }, turtlefinder::sdk::Error);
    ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
    EXPECT_NO_THROW({ gc::UnixChannel channel(dir + "/s.sock"); });
    EXPECT_FALSE(gc::probe_cri(dir + "/s.sock", std::chrono::milliseconds(300)).has_value());
    ::rmdir(dir.c_str());
}
