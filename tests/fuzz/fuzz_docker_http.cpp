// SPDX-License-Identifier: Apache-2.0
// The Docker client's HTTP side, end to end over a real unix socket: a
// scripted server (a test double standing in for a broken or hostile engine)
// answers with the fuzz input. The first byte picks the call:
//   0: GET /_ping (headers: API-Version, Libpod-Api-Version)
//   1: GET /containers/json (Content-Length or chunked body, then decoding)
//   2: GET /events after a well-formed ping and version, so the input is the
//      event stream's HTTP head and (chunked) body, cut into read()s by the
//      second byte.
// Every call must return or throw Error; none may run into its timeout,
// since the server always closes after its answer.
#include "fuzz_support.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include <turtlefinder/clients/docker/client.hpp>

namespace docker = turtlefinder::clients::docker;

namespace {

// Real dockerd 20.10 answers (headers trimmed to what the client reads).
constexpr std::string_view ping_answer = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain; "
                                         "charset=utf-8\r\nServer: Docker/20.10.24+dfsg1 (linux)\r\n"
                                         "Connection: close\r\nContent-Length: 2\r\n\r\nOK";
constexpr std::string_view version_body =
    R"({"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64"})";

std::string version_answer() {
    return "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nConnection: close\r\n"
           "Content-Length: " +
           std::to_string(version_body.size()) + "\r\n\r\n" + std::string(version_body);
}

// One private directory per process, removed at exit (a plain array, so the
// exit handler never sees a destroyed string).
char socket_dir_path[256];

const char *socket_dir() {
    static const bool made = [] {
        const char *tmp = std::getenv("TMPDIR");
        std::snprintf(socket_dir_path, sizeof socket_dir_path, "%s/tf-fuzz-http-XXXXXX",
                      tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
        if (::mkdtemp(socket_dir_path) == nullptr) {
            std::perror("mkdtemp");
            std::abort();
        }
        std::atexit([] { ::rmdir(socket_dir_path); });
        return true;
    }();
    (void)made;
    return socket_dir_path;
}

bool write_all(int fd, std::string_view bytes, std::size_t piece) {
    while (!bytes.empty()) {
        std::size_t n = std::min(bytes.size(), piece);
        ssize_t w = ::send(fd, bytes.data(), n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false; // the client gave up (cap reached): fine
        bytes.remove_prefix(static_cast<std::size_t>(w));
    }
    return true;
}

// Reads one request head; returns its request line ("" if none came).
std::string read_request_line(int fd) {
    std::string head;
    char buffer[1024];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) return {};
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return {};
        head.append(buffer, static_cast<std::size_t>(n));
    }
    return head.substr(0, head.find("\r\n"));
}

// Serves connections one after the other until the listening socket is shut
// down: canned answers to /_ping and /version in mode 2, the input otherwise.
void serve(int listener, unsigned mode, std::string_view answer, std::size_t piece) {
    while (true) {
        int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            return; // shut down
        }
        std::string line = read_request_line(fd);
        if (!line.empty()) {
            if (mode == 2 && line.starts_with("GET /_ping "))
                write_all(fd, ping_answer, ping_answer.size());
            else if (mode == 2 && line.starts_with("GET /version "))
                write_all(fd, version_answer(), 1 << 16);
            else
                write_all(fd, answer, piece);
        }
        ::close(fd);
    }
}

void call(docker::Client &client, unsigned mode) {
    switch (mode) {
    case 0: {
        auto ping = client.ping();
        TF_FUZZ_ASSERT(ping.api_version.has_value());
        break;
    }
    case 1:
        for (const auto &c : client.containers()) TF_FUZZ_ASSERT(!c.id.empty());
        break;
    case 2: {
        int events = 0;
        // Returns normally only when a callback said stop; we never do.
        client.events(
            "", [] { return true; }, [&](const docker::Event &) { return ++events < 1000; });
        break;
    }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size < 2) return 0;
    unsigned mode = data[0] % 3;
    std::size_t piece = 1 + data[1] % 64;
    std::string_view answer = turtlefinder::fuzz::as_text(data + 2, size - 2);

    std::string path = std::string(socket_dir()) + "/engine.sock";
    ::unlink(path.c_str());
    int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    TF_FUZZ_ASSERT(listener >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    TF_FUZZ_ASSERT(path.size() < sizeof address.sun_path);
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    TF_FUZZ_ASSERT(::bind(listener, reinterpret_cast<sockaddr *>(&address), sizeof address) == 0);
    TF_FUZZ_ASSERT(::listen(listener, 8) == 0);
    std::thread server(serve, listener, mode, answer, piece);

    {
        docker::Options options;
        options.socket_path = path;
        options.timeout = std::chrono::milliseconds(5000);
        options.max_body = 1u << 16;
        options.max_event = 1u << 12;
        docker::Client client(options);
        try {
            call(client, mode);
        } catch (const docker::Error &e) {
            // The server always hangs up after answering: waiting out the
            // deadline would mean the client missed the end of the answer.
            TF_FUZZ_ASSERT(e.code() != -ETIMEDOUT);
            TF_FUZZ_ASSERT(e.code() < 0);
        }
    }
    ::shutdown(listener, SHUT_RDWR); // wakes accept()
    server.join();
    ::close(listener);
    ::unlink(path.c_str());
    return 0;
}
