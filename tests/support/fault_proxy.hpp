#pragma once

#include "support/net.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>

namespace redis_sidecar::testing {

/// A fault-injecting TCP proxy on 127.0.0.1 for tests of a hostile network (`tc netem` is not
/// available): every accepted connection is forwarded to host:port, with faults settable at any
/// time from any thread:
///   - latency added to every byte, per direction (each chunk read is held that long);
///   - a bandwidth cap in bytes/s, per direction, shared by all connections (one link);
///   - forwarding stopped in one direction, silently: no RST, no FIN, the bytes are held (read
///     up to the buffer bound, then not read at all, so the sender's window closes);
///   - every open connection reset (RST to both sides).
/// One thread polls every socket; each direction of each connection buffers at most
/// `max_buffer` bytes. Bytes pass through untouched (TLS goes through as it is).
class fault_proxy {
  public:
    enum class direction {
        to_target,  ///< client -> target (requests)
        to_client,  ///< target -> client (replies)
    };

    /// Binds 127.0.0.1:0 and starts forwarding to host:port (a numeric IPv4 address).
    /// Throws std::system_error.
    fault_proxy(std::string target_host, std::uint16_t target_port);
    ~fault_proxy();
    fault_proxy(const fault_proxy&) = delete;
    fault_proxy& operator=(const fault_proxy&) = delete;

    std::uint16_t port() const { return port_; }
    /// "127.0.0.1:PORT".
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    void set_latency(direction d, std::chrono::milliseconds latency);
    /// 0 means no cap.
    void set_bandwidth(direction d, std::size_t bytes_per_second);
    /// Stops (true) or resumes (false) forwarding in direction `d` on every connection, those
    /// open and those accepted later.
    void set_stopped(direction d, bool stopped);
    /// Resets every open connection (both sides get an RST) and waits (up to 5 s) until the
    /// proxy's thread has done so. Returns the number reset.
    std::size_t reset_all();

    /// Connections accepted so far.
    std::size_t accepted() const { return accepted_.load(); }
    /// Connections open now.
    std::size_t open_connections() const { return open_.load(); }
    /// Bytes written to the receiving side in direction `d` so far.
    std::size_t bytes_forwarded(direction d) const { return dir_[index(d)].forwarded.load(); }

    /// Per direction per connection.
    static constexpr std::size_t max_buffer = 1 << 20;

  private:
    struct dir_settings {
        std::atomic<long long> latency_ms{0};
        std::atomic<std::size_t> bandwidth{0};
        std::atomic<bool> stopped{false};
        std::atomic<std::size_t> forwarded{0};
    };
    static std::size_t index(direction d) { return d == direction::to_target ? 0 : 1; }
    void wake();
    void run();

    std::string host_;
    std::uint16_t target_port_;
    unique_fd listener_;
    unique_fd wakeup_;  // eventfd
    std::uint16_t port_ = 0;
    dir_settings dir_[2];
    std::atomic<std::size_t> accepted_{0};
    std::atomic<std::size_t> open_{0};
    std::atomic<unsigned> reset_requested_{0};
    std::atomic<unsigned> reset_done_{0};
    std::atomic<std::size_t> last_reset_count_{0};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace redis_sidecar::testing
