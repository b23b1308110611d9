#pragma once

#include <openssl/ssl.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "redis_sidecar/config/settings.hpp"
#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/upstream/handshake.hpp"
#include "redis_sidecar/upstream/tls.hpp"

namespace redis_sidecar::upstream {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class connection;

/// Receives what the upstream sends on a connection. A connection always has one read pending;
/// its bytes go to the current reader (the leasing client, or the pool while idle).
class reader {
  public:
    virtual ~reader() = default;
    /// New bytes, valid only during the call unless the reader pauses the connection: return
    /// false to pause reading (the bytes stay valid until connection::resume_reading()).
    virtual bool on_upstream_data(connection& c, std::string_view bytes) = 0;
    /// The connection broke (EOF, reset, TLS error, a command timeout). Called once.
    virtual void on_upstream_error(connection& c, std::error_code ec) = 0;
};

/// One step of opening a connection, for `redis-sidecar check` and debug logs.
struct open_step {
    std::string name;  ///< "tcp", "tls", "auth", "ping"
    bool ok = false;
    std::chrono::microseconds took{0};
    std::string detail;  ///< addresses, cipher, certificate names, reply text
};

/// One authenticated upstream connection (TLS or plain). Used from one thread (its executor's).
///
/// TLS is OpenSSL on the socket itself (a BIO of our own over the non-blocking socket), not
/// Asio's ssl::stream: no BIO pair and engine buffers (≈ 70 KB per connection), no copies
/// through them, and OpenSSL's buffers released while idle (SSL_MODE_RELEASE_BUFFERS). Asio is
/// used only to wait for readiness.
class connection : public std::enable_shared_from_this<connection> {
  public:
    /// Size of the buffer each read fills; also the most a reader gets per call.
    static constexpr std::size_t read_buffer_size = 16 * 1024;
    using write_handler = std::function<void(const boost::system::error_code&, std::size_t)>;

    connection(asio::any_io_executor ex, tls_client* tls, std::uint64_t id);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    std::uint64_t id() const { return id_; }
    bool tls() const { return ssl_ != nullptr; }
    bool broken() const { return broken_; }
    const server_info& info() const { return info_; }
    /// Which credentials the connection authenticated with (the pool's rotation counter).
    std::uint64_t auth_generation() const { return auth_generation_; }
    void set_auth_generation(std::uint64_t g) { auth_generation_ = g; }
    /// The pool's failover epoch when this connection was opened (see pool::drop_idle).
    std::uint64_t epoch() const { return epoch_; }
    void set_epoch(std::uint64_t e) { epoch_ = e; }
    std::chrono::steady_clock::time_point created() const { return created_; }
    /// When the pool last took it back idle (its own bookkeeping).
    std::chrono::steady_clock::time_point idle_since() const { return idle_since_; }
    void set_idle_since(std::chrono::steady_clock::time_point t) { idle_since_ = t; }
    tcp::socket& socket() { return socket_; }
    SSL* ssl_handle() { return ssl_; }
    const tcp::endpoint& peer() const { return peer_; }
    asio::any_io_executor get_executor() { return socket_.get_executor(); }

    /// Hands the connection's bytes to `r` from now on (nullptr: any byte or EOF breaks it).
    void set_reader(reader* r) { reader_ = r; }
    reader* current_reader() const { return reader_; }
    /// Continues after a reader returned false.
    void resume_reading();

    /// Writes all of `buffer` (kept alive by the caller until the handler runs) and calls
    /// handler(ec, bytes). The handler never runs inside this call. One write at a time.
    void async_write(asio::const_buffer buffer, write_handler handler);

    /// Closes now: pending operations complete with errors, the reader hears of it once.
    void close();
    /// Marks as broken by a timeout and closes; the reader's error is error::timeout.
    void close_on_timeout();

    // Used while opening (see async_open).
    void set_peer(const tcp::endpoint& ep) { peer_ = ep; }
    void set_info(server_info info) { info_ = std::move(info); }
    /// The TLS client handshake (only when tls()); errors are Asio's SSL error codes.
    void async_handshake(std::function<void(const boost::system::error_code&)> handler);
    /// Starts the read loop (once, after the handshake).
    void start_reading();
    /// Registers the connected socket with the reactor afresh, for reading only. async_connect
    /// leaves EPOLLOUT in the socket's edge-triggered epoll registration for good (Asio never
    /// drops it), and that fires at every ACK the server sends: a wake-up per request for
    /// nothing. Costs two epoll_ctl once per connection.
    void register_for_reading();

    /// What the socket BIO records between OpenSSL's calls into it.
    struct bio_state {
        tcp::socket* socket = nullptr;
        bool drained = false;  ///< the last recv() left nothing behind (or would block)
        bool eof = false;      ///< recv() returned 0
        int last_errno = 0;    ///< errno of the last failed send()/recv()
    };

  private:
    void do_read();
    void tls_read();
    void wait_readable();
    void on_read(const boost::system::error_code& ec, std::size_t n);
    void tls_write();
    void finish_write(const boost::system::error_code& ec);
    void tls_handshake();
    void finish_handshake(const boost::system::error_code& ec);
    /// Before every SSL_* call: an empty error queue and no errno left from an earlier call.
    void prepare_tls_call();
    /// The error of a failed SSL_* call, as Asio's ssl::stream would have reported it.
    boost::system::error_code tls_error(int ssl_error);
    char* read_buffer();
    void fail(std::error_code ec);

    tcp::socket socket_;
    SSL* ssl_ = nullptr;  // owned, over socket_ through bio_, when TLS
    bio_state bio_;
    std::uint64_t id_;
    std::chrono::steady_clock::time_point created_;
    std::chrono::steady_clock::time_point idle_since_{};
    tcp::endpoint peer_;
    server_info info_;
    std::uint64_t auth_generation_ = 0;
    std::uint64_t epoch_ = 0;
    reader* reader_ = nullptr;
    bool reading_ = false;
    bool paused_ = false;
    bool broken_ = false;
    bool timed_out_ = false;
    // Allocated for a read, released while a TLS connection waits for the socket.
    std::unique_ptr<char[]> buffer_;
    // The write in progress (TLS).
    const char* write_data_ = nullptr;
    std::size_t write_left_ = 0;
    std::size_t write_total_ = 0;
    write_handler write_handler_;
    std::function<void(const boost::system::error_code&)> handshake_handler_;
};

/// What async_open needs besides endpoints.
struct open_options {
    const config::upstream_settings* upstream = nullptr;
    std::chrono::milliseconds timeout{5000};  ///< TCP + TLS + AUTH + PING, all together
    bool keepalive = true;
    std::string client_name;                  ///< CLIENT SETNAME value
    std::vector<open_step>* trace = nullptr;  ///< filled step by step when set
};

/// How an open ended: the error (none on success), the connection (on success) and, on
/// failure, the reason in words (the TLS alert, the server's error text, never a password).
using open_handler =
    std::function<void(std::error_code, std::shared_ptr<connection>, const std::string& detail)>;

/// TCP connect to the first endpoint that answers → TLS handshake (SNI, host name verification)
/// → HELLO 2 [AUTH] SETNAME (or AUTH + CLIENT SETNAME on servers without HELLO) → SELECT → PING,
/// pipelined in one round trip. On failure the error is classified (upstream::error) and the
/// connection is closed. The handler runs on `ex`. Returns the connection being opened: closing
/// it ends the open at once (the handler gets the error), which is how an owner that stops
/// ends opens still in flight (their pending steps would otherwise keep each other alive).
std::shared_ptr<connection> async_open(asio::any_io_executor ex, tls_client* tls, std::uint64_t id,
                                       std::vector<tcp::endpoint> endpoints, open_options options,
                                       open_handler handler);

/// The commands the sidecar sends on its own connections (PING, AUTH, RESET): writes the
/// formatted bytes (one or several pipelined commands), reads `replies` replies within
/// `timeout`. The connection must have no reader but the pool; the previous reader is restored
/// afterwards. On a timeout or I/O error the connection is closed.
struct command_result {
    std::error_code ec;
    std::vector<resp::reply> replies;
};
void async_command(const std::shared_ptr<connection>& c, std::string formatted, std::size_t replies,
                   std::chrono::milliseconds timeout, std::function<void(command_result)> handler);

}  // namespace redis_sidecar::upstream
