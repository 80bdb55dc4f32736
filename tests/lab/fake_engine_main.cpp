// SPDX-License-Identifier: Apache-2.0
// TEST DOUBLE: a misbehaving "engine" for tests of timeouts and protocol
// checks. Usage: tf-lab-fake-engine NAME BEHAVIOUR SOCKET [BEHAVIOUR SOCKET...]
// It renames itself to NAME (what a process scan reads from comm), listens
// on each SOCKET and serves each connection on its own thread as that
// socket's BEHAVIOUR says.
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;

bool send_all(int fd, const char *data, std::size_t size) {
    while (size > 0) {
        ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// Reads what the client sent until the blank line ending its headers (or it stops).
void read_request(int fd) {
    std::string got;
    char buf[4096];
    while (got.find("\r\n\r\n") == std::string::npos && got.size() < 65536) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        got.append(buf, static_cast<std::size_t>(n));
    }
}

void serve(int fd, const std::string &behaviour) {
    if (behaviour == "close") {
        ::close(fd);
        return;
    }
    read_request(fd);
    if (behaviour == "garbage") {
        std::mt19937 rng(static_cast<unsigned>(fd) * 7919u);
        std::string junk(8192, '\0');
        for (auto &c : junk) c = static_cast<char>(rng() & 0xff);
        junk[0] = '\x01'; // never accidentally "HTTP/"
        send_all(fd, junk.data(), junk.size());
    } else if (behaviour == "hang") {
        char buf[4096];
        while (::recv(fd, buf, sizeof buf, 0) > 0) {
        }
    } else if (behaviour == "slow") {
        const std::string answer =
            "HTTP/1.1 200 OK\r\nAPI-Version: 1.41\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK";
        for (char c : answer) {
            if (!send_all(fd, &c, 1)) break;
            std::this_thread::sleep_for(200ms);
        }
    } else if (behaviour == "endless") {
        const std::string head = "HTTP/1.1 200 OK\r\nAPI-Version: 1.41\r\nContent-Type: "
                                 "application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        if (send_all(fd, head.data(), head.size())) {
            std::string chunk = "1000\r\n" + std::string(0x1000, ' ') + "\r\n";
            while (send_all(fd, chunk.data(), chunk.size())) {
            }
        }
    }
    ::close(fd);
}

int listen_on(const char *path) {
    int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (std::strlen(path) >= sizeof addr.sun_path) {
        std::fprintf(stderr, "socket path too long: %s\n", path);
        std::exit(2);
    }
    std::strcpy(addr.sun_path, path);
    ::unlink(path);
    if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::listen(lfd, 64) != 0) {
        std::perror("listen");
        std::exit(1);
    }
    return lfd;
}

[[noreturn]] void accept_loop(int lfd, std::string behaviour) {
    while (true) {
        int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        // One line per connection: tests count who connected (FakeEngine::connections).
        std::printf("accepted\n");
        std::fflush(stdout);
        std::thread(serve, fd, behaviour).detach();
    }
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 4 || argc % 2 != 0) {
        std::fprintf(stderr, "usage: %s NAME garbage|hang|slow|close|endless SOCKET [BEHAVIOUR SOCKET...]\n", argv[0]);
        return 2;
    }
    ::prctl(PR_SET_NAME, argv[1], 0, 0, 0);
    for (int i = 2; i + 1 < argc; i += 2) std::thread(accept_loop, listen_on(argv[i + 1]), argv[i]).detach();
    while (true) ::pause();
}
