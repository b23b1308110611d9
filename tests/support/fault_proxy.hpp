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
///   - latency added to every byte, per direction (each chunk read is held that long), plus a
///     random jitter: each chunk is held latency + a uniform draw in [0, jitter] more, but never
///     released before an earlier chunk of the same direction (TCP does not reorder bytes);
///   - a bandwidth cap in bytes/s, per direction, shared by all connections (one link);
///   - forwarding stopped in one direction, silently: no RST, no FIN, the bytes are held (read
///     up to the buffer bound, then not read at all, so the sender's window closes);
///   - every open connection reset (RST to both sides);
///   - every open connection half-closed in one direction: once the bytes buffered in that
///     direction are delivered, the receiving side gets a FIN (shutdown(SHUT_WR), no RST); what
///     the sending side sends after that is read and dropped. The other direction goes on.
/// A FIN from either side is passed on the same way (after the bytes before it), so a peer that
/// half-closes its end sees the other direction keep working, as it would without the proxy.
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
    /// Each chunk read from now on is held a further uniform random [0, jitter] (from a fixed
    /// seed: the same draws every run), in order behind the chunks before it. 0: none.
    void set_jitter(direction d, std::chrono::milliseconds jitter);
    /// 0 means no cap.
    void set_bandwidth(direction d, std::size_t bytes_per_second);
    /// Stops (true) or resumes (false) forwarding in direction `d` on every connection, those
    /// open and those accepted later.
    void set_stopped(direction d, bool stopped);
    /// Resets every open connection (both sides get an RST) and waits (up to 5 s) until the
    /// proxy's thread has done so. Returns the number reset.
    std::size_t reset_all();
    /// Half-closes direction `d` of every open connection (not of those accepted later): the
    /// bytes already read in that direction are delivered, then the receiving side gets a FIN
    /// and nothing more; later bytes from the sending side are dropped. Waits (up to 5 s) until
    /// the proxy's thread has marked them. Returns the number marked.
    std::size_t half_close(direction d);

    /// Connections accepted so far.
    std::size_t accepted() const { return accepted_.load(); }
    /// Connections open now.
    std::size_t open_connections() const { return open_.load(); }
    /// Bytes written to the receiving side in direction `d` so far.
    std::size_t bytes_forwarded(direction d) const { return dir_[index(d)].forwarded.load(); }
    /// Bytes read in direction `d` after a half_close() and dropped, so far.
    std::size_t bytes_dropped(direction d) const { return dir_[index(d)].dropped.load(); }

    /// Per direction per connection.
    static constexpr std::size_t max_buffer = 1 << 20;

  private:
    struct dir_settings {
        std::atomic<long long> latency_ms{0};
        std::atomic<long long> jitter_ms{0};
        std::atomic<std::size_t> bandwidth{0};
        std::atomic<bool> stopped{false};
        std::atomic<std::size_t> forwarded{0};
        std::atomic<std::size_t> dropped{0};
        std::atomic<unsigned> half_close_requested{0};
        std::atomic<unsigned> half_close_done{0};
        std::atomic<std::size_t> last_half_close_count{0};
    };
    static std::size_t index(direction d) { return d == direction::to_target ? 0 : 1; }
    void wake();
    /// Waits (up to 5 s) until `done` reaches `want`.
    static void wait_done(const std::atomic<unsigned>& done, unsigned want);
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
