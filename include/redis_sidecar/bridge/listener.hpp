#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "redis_sidecar/bridge/lane.hpp"
#include "redis_sidecar/bridge/session.hpp"

namespace redis_sidecar::bridge {

/// Accepts local clients on 127.0.0.1:6379 (REDIS_SIDECAR_LISTEN) and/or a unix socket
/// (REDIS_SIDECAR_SOCKET) and runs a session for each. Single-threaded.
///
/// Write deadlines: one timer sweeps the sessions a few times per write_timeout and ends those
/// whose write was found pending at enough consecutive sweeps (session::enforce_write_deadline).
/// A timer per write would cost a timer-queue update (often a timerfd_settime system call) for
/// every request, a timestamp a clock read; a write_watch costs an increment. A timeout fires
/// between 1× and 1.25× write_timeout late.
class listener {
  public:
    /// Clients beyond this get "-ERR max number of clients reached" (Redis' maxclients default).
    static constexpr std::size_t default_max_clients = 10000;

    listener(asio::any_io_executor ex, std::shared_ptr<session_context> context,
             std::size_t max_clients = default_max_clients);
    ~listener();

    /// Binds "host:port" (port 0 picks one). Throws std::runtime_error naming the setting.
    void listen_tcp(const std::string& host_port);
    /// Creates the socket file with mode 0660, replacing a stale one (nobody accepting on it);
    /// refuses to replace a live one or something that is not a socket.
    void listen_unix(const std::string& path);

    /// REDIS_SIDECAR_MULTIPLEX=on: clients share up to `shared_connections` upstream
    /// connections of the context's pool per protocol (RESP2, RESP3), `max_total` in all,
    /// until a command pins them (see session).
    void enable_multiplex(std::size_t shared_connections, std::size_t max_total);

    /// The bound TCP port (for tests binding port 0).
    std::uint16_t tcp_port() const;
    /// Stops accepting; connected clients go on.
    void stop_accepting();
    /// Closes every client now.
    void close_all();
    std::size_t clients() const { return sessions_.size(); }

  private:
    void accept_tcp();
    void accept_unix();
    void on_accept(const boost::system::error_code& ec, local_socket socket);
    void schedule_sweep();

    asio::any_io_executor ex_;
    std::shared_ptr<session_context> ctx_;
    std::size_t max_clients_;
    std::optional<asio::ip::tcp::acceptor> tcp_;
    std::optional<asio::local::stream_protocol::acceptor> unix_;
    std::string unix_path_;
    std::unordered_map<session*, std::weak_ptr<session>> sessions_;
    std::unique_ptr<lane_set> lanes_;
    asio::steady_timer sweep_timer_;
    bool sweeping_ = false;
    std::shared_ptr<int> alive_ = std::make_shared<int>();  // expires with the listener
};

}  // namespace redis_sidecar::bridge
