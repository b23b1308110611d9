#pragma once

#include "support/eventually.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>

namespace redis_sidecar::testing {

/// Owns a file descriptor; closes it on destruction. Move-only.
class unique_fd {
  public:
    unique_fd() = default;
    explicit unique_fd(int fd) : fd_(fd) {}
    ~unique_fd() { reset(); }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset(int fd = -1) noexcept;

  private:
    int fd_ = -1;
};

/// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the port the kernel
/// chose, closes. Another process may take it before you bind it (rare; redis_server retries).
std::uint16_t free_tcp_port();

/// A port on 127.0.0.1 where nothing listens, for the whole life of the test process: a socket
/// is bound to it and never listens, so connecting is refused and nobody else can take it.
std::uint16_t closed_port();

/// Polls until a TCP connection to host:port succeeds (each attempt bounded by the remaining
/// time); false at the deadline. `host` is a name or numeric address.
bool wait_for_tcp_port(const std::string& host, std::uint16_t port,
                       std::chrono::milliseconds timeout);

/// A blocking TCP connection to host:port, or an empty unique_fd if it cannot be made within
/// `timeout`.
unique_fd connect_tcp(const std::string& host, std::uint16_t port,
                      std::chrono::milliseconds timeout);

/// A listener on 127.0.0.1 that accepts every connection and never sends a byte (what it
/// receives is read and dropped), for testing connect-but-no-answer timeouts: a TLS handshake
/// or a PING against it hangs until the client's timeout. Runs on its own thread, joined in the
/// destructor; accepted connections stay open until then.
class silent_tcp_server {
  public:
    /// Binds 127.0.0.1:0 and starts accepting. Throws std::system_error.
    silent_tcp_server();
    ~silent_tcp_server();
    silent_tcp_server(const silent_tcp_server&) = delete;
    silent_tcp_server& operator=(const silent_tcp_server&) = delete;

    std::uint16_t port() const { return port_; }
    /// Connections accepted so far.
    std::size_t accepted() const { return accepted_.load(); }
    /// Bytes received (and dropped) so far over all connections.
    std::size_t bytes_received() const { return bytes_received_.load(); }

  private:
    void run();

    unique_fd listener_;
    unique_fd wakeup_;  // an eventfd: written by the destructor to stop run()
    std::uint16_t port_ = 0;
    std::atomic<std::size_t> accepted_{0};
    std::atomic<std::size_t> bytes_received_{0};
    std::thread thread_;
};

}  // namespace redis_sidecar::testing
