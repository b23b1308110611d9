#include "support/net.hpp"

#include "support/process.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <system_error>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace redis_sidecar::testing {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// Pause between connection attempts in wait_for_tcp_port().
constexpr auto connect_retry_step = 10ms;

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
}

/// A socket bound to 127.0.0.1:0 (not listening) and the port it got.
std::pair<unique_fd, std::uint16_t> bind_loopback_any() {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw_errno("socket");
    sockaddr_in addr = loopback(0);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw_errno("bind 127.0.0.1:0");
    }
    socklen_t len = sizeof addr;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw_errno("getsockname");
    }
    return {std::move(fd), ntohs(addr.sin_port)};
}

int remaining_ms(clock::time_point deadline) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
}

/// One non-blocking connect attempt to `ai`, waited for until `deadline`; blocking on success.
unique_fd try_connect(const addrinfo& ai, clock::time_point deadline) {
    unique_fd fd(::socket(ai.ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return {};
    if (::connect(fd.get(), ai.ai_addr, ai.ai_addrlen) != 0) {
        if (errno != EINPROGRESS) return {};
        pollfd p{fd.get(), POLLOUT, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) != 1) return {};
        int so_error = 0;
        socklen_t len = sizeof so_error;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 || so_error != 0) {
            return {};
        }
    }
    int flags = ::fcntl(fd.get(), F_GETFL);
    ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

}  // namespace

void unique_fd::reset(int fd) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

std::uint16_t free_tcp_port() {
    return bind_loopback_any().second;
}

std::uint16_t closed_port() {
    // Deliberately leaked for the life of the process: the reservation is the point.
    static const std::uint16_t port = [] {
        auto [fd, p] = bind_loopback_any();
        fd.release();
        return p;
    }();
    return port;
}

unique_fd connect_tcp(const std::string& host, std::uint16_t port,
                      std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return {};
    unique_fd fd;
    for (addrinfo* ai = res; ai != nullptr && !fd && clock::now() < deadline; ai = ai->ai_next) {
        fd = try_connect(*ai, deadline);
    }
    ::freeaddrinfo(res);
    return fd;
}

bool wait_for_tcp_port(const std::string& host, std::uint16_t port,
                       std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    return eventually(
        [&] {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
            return static_cast<bool>(connect_tcp(host, port, std::max(left, 1ms)));
        },
        timeout, connect_retry_step);
}

// ---------------------------------------------------------------------------------------------

silent_tcp_server::silent_tcp_server() {
    ignore_sigpipe();
    auto [fd, port] = bind_loopback_any();
    if (::listen(fd.get(), SOMAXCONN) != 0) throw_errno("listen");
    listener_ = std::move(fd);
    port_ = port;
    wakeup_.reset(::eventfd(0, EFD_CLOEXEC));
    if (!wakeup_) throw_errno("eventfd");
    thread_ = std::thread([this] { run(); });
}

silent_tcp_server::~silent_tcp_server() {
    std::uint64_t one = 1;
    (void)!::write(wakeup_.get(), &one, sizeof one);
    thread_.join();
}

void silent_tcp_server::run() {
    std::vector<unique_fd> conns;
    std::array<char, 4096> buf{};
    for (;;) {
        std::vector<pollfd> fds{{wakeup_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
        for (const auto& c : conns) fds.push_back({c.get(), POLLIN, 0});
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[0].revents != 0) return;  // conns close as this scope ends
        if (fds[1].revents & POLLIN) {
            unique_fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (c) {
                conns.push_back(std::move(c));
                ++accepted_;
            }
        }
        for (std::size_t i = 2; i < fds.size(); ++i) {
            if (fds[i].revents == 0) continue;
            ssize_t n = ::recv(fds[i].fd, buf.data(), buf.size(), MSG_DONTWAIT);
            if (n > 0) {
                bytes_received_ += static_cast<std::size_t>(n);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                // The peer closed: close our side too (still never having sent anything).
                auto it = std::find_if(conns.begin(), conns.end(),
                                       [&](const unique_fd& c) { return c.get() == fds[i].fd; });
                if (it != conns.end()) conns.erase(it);
            }
        }
    }
}

}  // namespace redis_sidecar::testing
