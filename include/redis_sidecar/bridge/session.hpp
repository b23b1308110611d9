#pragma once

#include <boost/asio/generic/stream_protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "redis_sidecar/bridge/context.hpp"
#include "redis_sidecar/bridge/core.hpp"
#include "redis_sidecar/bridge/lane.hpp"
#include "redis_sidecar/mux/classify.hpp"
#include "redis_sidecar/resp/scanner.hpp"
#include "redis_sidecar/upstream/pool.hpp"

namespace redis_sidecar::bridge {

namespace asio = boost::asio;
using local_socket = asio::generic::stream_protocol::socket;

/// One local client bridged onto one leased upstream connection: the Asio shell around a
/// client_core, which decides everything about the protocol. The lease is taken when the core
/// first has bytes for the upstream and held until the client leaves; then the core's
/// release_decision says whether the connection goes back as it is, through RESET, or away.
/// Single-threaded (the io_context's).
///
/// With multiplexing (session_context::lanes), a session starts shared: its whole shareable
/// commands go to a lane (a shared upstream connection) of its protocol (RESP2, or RESP3 after
/// HELLO 3) and the lane's reply bytes for it come back in order; the first command that needs a
/// connection of its own (mux::classify), or the first large value it reads
/// (lane::large_reply_bytes), pins it: once its shared replies have all arrived it leases a
/// connection as above and keeps it.
class session final : public std::enable_shared_from_this<session>,
                      private upstream::reader,
                      private lane_client {
  public:
    /// Bytes read from a client per read (into a buffer all sessions of a thread share).
    static constexpr std::size_t client_buffer_size = 16 * 1024;

    session(local_socket socket, std::shared_ptr<session_context> context);
    ~session() override;

    void start();
    /// Closes the client now (shutdown after the drain bound).
    void close();

    /// The write deadline, called by the listener's sweep: a write to the client or to the
    /// upstream found pending at `limit` consecutive sweeps ends the session (a client that
    /// stopped reading, an upstream that stopped taking bytes); so does an upstream reply that
    /// stopped mid-way while the sidecar was reading it. The connection is not reused.
    /// Counted in bridge_stats. Returns whether it did.
    bool enforce_write_deadline(unsigned limit);

  private:
    // Client side.
    void do_read_client();
    void on_client_readable(const boost::system::error_code& ec);
    void maybe_read_client();
    void flush_to_upstream();
    void acquire_upstream();

    // Upstream side.
    bool on_upstream_data(upstream::connection& c, std::string_view bytes) override;
    void on_upstream_error(upstream::connection& c, std::error_code ec) override;
    void pump();

    void finish();
    void recycle();

    // Shared mode (multiplexing).
    enum class mux_mode : std::uint8_t { shared, pinning, dedicated };
    /// A command still arriving larger than this pins the client (it would hold the lane).
    static constexpr std::size_t max_shared_command = 512 * 1024;
    /// Replies owed to the client beyond this stop its reading (it pipelines without reading).
    static constexpr std::size_t max_shared_backlog = 1024 * 1024;
    enum class submitted : std::uint8_t { ok, wait, pin, no_lane };
    void submit_shared();
    submitted submit_one(std::string_view command, int protocol);
    bool skip_hidden_reply(std::string_view& bytes);
    mux::classification classify_command(std::string_view command) const;
    void pin(std::size_t reason);
    void maybe_finish_pin();
    bool lane_bytes(std::string_view bytes, bool large_value) override;
    void lane_lost(std::size_t commands, bool partial_reply, std::string_view error) override;
    void lane_room() override;

    // Held from start() to finish(). The upstream connection calls its reader by plain pointer,
    // so waiting for upstream replies is no pending operation of the session's own: after QUIT
    // or a protocol error (no client read pending) the session would otherwise be destroyed with
    // replies in flight, the connection left calling a dangling reader and the lease never
    // returned. Every way a session ends goes through finish().
    std::shared_ptr<session> self_;
    local_socket client_;
    std::shared_ptr<session_context> ctx_;
    client_core core_;
    std::shared_ptr<upstream::connection> up_;
    bool acquiring_ = false;
    /// Leases that arrived already broken and were swapped for another, at most
    /// max_broken_leases per session (then the client gets the error).
    int broken_leases_ = 0;
    static constexpr int max_broken_leases = 3;

    std::string out_writing_;  // bytes being written upstream
    bool upstream_writing_ = false;
    write_watch upstream_watch_;
    bool reading_client_ = false;
    bool client_eof_ = false;  // the client half-closed: deliver what it is owed, then close
    std::string_view pending_upstream_;  // upstream bytes not yet written to the client
    bool upstream_paused_ = false;
    bool client_writing_ = false;
    write_watch client_watch_;
    write_watch upstream_read_watch_;  // counts upstream reads; "pending" while mid-reply
    std::string local_writing_;
    bool finished_ = false;  // finish() ran: the client is closed, the lease returned

    mux_mode mode_ = mux_mode::dedicated;
    mux::client_id mux_id_ = 0;
    std::shared_ptr<lane> lane_;  // the lane its shared commands are in flight on
    resp::scanner mux_scan_{resp::direction::command, resp::scanner_options::for_commands()};
    std::size_t scan_pos_ = 0;       // bytes of core_.upstream_output() scanned by mux_scan_
    bool waiting_room_ = false;      // a lane was full: wait for lane_room()
    std::string shared_in_;          // lane bytes being delivered (pending_upstream_ views it)
    std::string incoming_;           // lane bytes arrived since
    int mux_protocol_ = 2;           // the protocol the client switched to on a lane (HELLO 2/3)
    bool switch_in_flight_ = false;  // that HELLO's reply has not arrived yet
    // Pinned after HELLO 3 on a lane: the dedicated connection gets a HELLO 3 of the sidecar's
    // first; its reply is skipped here, before the core sees the connection's bytes.
    bool hidden_reply_ = false;
    resp::scanner hidden_scan_{resp::direction::reply, resp::scanner_options::for_replies()};
};

}  // namespace redis_sidecar::bridge
