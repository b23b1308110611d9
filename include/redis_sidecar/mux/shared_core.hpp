#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "redis_sidecar/resp/scanner.hpp"

namespace redis_sidecar::mux {

/// Names a local client on a shared connection; the caller's, never reused while the client
/// has commands in flight (a 64-bit counter is).
using client_id = std::uint64_t;

/// Bounds of one shared connection: what may be in flight (submitted, not yet answered).
struct shared_limits {
    /// Most commands in flight, written or waiting to be. Default 1024.
    std::size_t max_commands = 1024;
    /// Most command bytes in flight. A single command larger than this is accepted only when
    /// nothing else is in flight (it would never fit otherwise). Default 1 MiB.
    std::size_t max_bytes = std::size_t{1024} * 1024;
};

/// How a shared connection is set up.
struct shared_options {
    /// The connection speaks RESP3 (HELLO 3): replies may use RESP3 types. A RESP2 connection
    /// treats a RESP3 type byte as a framing error. RESP2 and RESP3 clients never share one.
    bool resp3 = false;
    shared_limits limits;
    /// The reply scanner's limits (its resp3 flag is taken from `resp3`).
    resp::scanner_options replies = resp::scanner_options::for_replies();
};

/// The outcome of shared_core::submit().
enum class submit_status : std::uint8_t {
    /// Queued: it goes out with the next take_output(); its reply comes back to the client.
    accepted,
    /// The in-flight bounds are reached: keep the command in the client's own queue and submit
    /// it again once replies came back (or take it to another shared connection).
    full,
    /// The connection is broken (see shared_core::broken()): nothing is accepted any more.
    broken,
    /// The bytes are not exactly one whole command (empty, partial, several, or not RESP):
    /// the caller's bug; refused so that commands and replies stay one for one.
    not_one_command,
};

/// A run of reply bytes for one client (shared_core::feed_upstream).
struct routed_piece {
    client_id client = 0;
    /// A view into the bytes given to feed_upstream(): consecutive bytes of the client's
    /// replies, valid as long as those bytes are.
    std::string_view bytes;
    /// Replies that end within `bytes` (0: the middle of a large reply; more than 1: several
    /// pipelined replies of the same client, back to back).
    std::size_t replies_completed = 0;
};

/// The outcome of shared_core::feed_upstream().
enum class feed_status : std::uint8_t {
    /// Every byte was routed.
    ok,
    /// The upstream broke the protocol: a reply that cannot be framed, a RESP3 push (`>`: a
    /// shared connection never subscribes, tracks or monitors, so a push means its state is
    /// not what the sidecar thinks), or a reply no command waits for. The pieces before the
    /// offending bytes were routed; the connection must be closed and broken() called.
    violation,
};

/// What a client lost when its shared connection broke (shared_core::broken()).
struct lost_commands {
    client_id client = 0;
    /// Commands of the client in flight: each is answered with `-ERR redis-sidecar: upstream
    /// connection lost` (after `partial_reply`'s consequence, see below).
    std::size_t commands = 0;
    /// The client received the first bytes of a reply but not its end: an error reply cannot
    /// follow those bytes, so the caller must close this client instead.
    bool partial_reply = false;
};

/// One shared upstream connection serving many local clients, without sockets (issue 16):
/// whole commands in (submit), one contiguous batch to write out (take_output), upstream bytes
/// in and each reply's bytes routed to the client that sent its command (feed_upstream).
/// Replies on one connection come strictly in command order, so the owner of the reply being
/// read is always the front of the in-flight queue; a large reply is routed in pieces as it
/// arrives, never held whole, and the clients behind it wait only for its bytes on the wire.
///
/// Memory is bounded by shared_limits: the in-flight queue (max_commands), the unsent batch
/// (max_bytes, or one larger command) and the per-client counts (at most max_commands clients).
/// It keeps no reply bytes: pieces are views into the caller's buffer.
///
/// Only commands that classify() calls shareable may be submitted (one reply each, no
/// connection state); the core checks that each is one whole command, not what it does.
class shared_core {
  public:
    explicit shared_core(const shared_options& options = {});

    // ---- commands
    /// Queues one whole command (`bytes` as the client sent it: multibulk or inline) of
    /// `client`. Refuses it when the in-flight bounds are reached, the connection is broken
    /// or the bytes are not exactly one command.
    submit_status submit(client_id client, std::string_view bytes);
    /// Everything submitted since the last call, as one contiguous buffer in submission order
    /// (the order the replies will come back in); empty when nothing was. Moves it out.
    std::string take_output();
    /// Bytes submitted and not yet taken by take_output().
    std::size_t pending_output() const { return out_.size(); }

    // ---- replies
    /// Routes upstream bytes: appends to `pieces` one piece per run of bytes of one client, in
    /// stream order; a piece that ends a reply counts it (routed_piece::replies_completed), and
    /// a completed reply frees its command's room in the bounds. Pieces view into `bytes`.
    /// After a violation nothing more is routed (call broken()).
    feed_status feed_upstream(std::string_view bytes, std::vector<routed_piece>& pieces);

    // ---- the end
    /// The connection is broken (a read or write failed, the peer closed, or feed_upstream
    /// reported a violation). Returns every client with commands in flight, in the order of
    /// their first one, and forgets them all; later submits are refused (broken).
    std::vector<lost_commands> broken();
    /// True once broken() was called.
    bool is_broken() const { return broken_; }

    // ---- state
    /// Commands of `client` in flight (submitted, not yet wholly answered).
    std::size_t in_flight(client_id client) const;
    /// True when `client` has nothing in flight: it may move to a dedicated connection without
    /// its replies overtaking each other.
    bool drained(client_id client) const { return in_flight(client) == 0; }
    /// Commands in flight, all clients.
    std::size_t commands_in_flight() const { return queue_.size(); }
    /// Command bytes in flight, all clients.
    std::size_t bytes_in_flight() const { return bytes_in_flight_; }
    /// Clients with commands in flight.
    std::size_t clients_in_flight() const { return per_client_.size(); }
    /// True between the first and the last byte of a reply.
    bool mid_reply() const { return mid_reply_; }
    /// Bytes of the bulk string being routed still to come (0 between bulk strings): a lane
    /// about to stream a large value for a while says so before its clients' next commands
    /// queue behind it.
    std::uint64_t reply_payload_remaining() const { return replies_.payload_remaining(); }
    /// The limits in force.
    const shared_limits& limits() const { return options_.limits; }
    /// The connection speaks RESP3 (shared_options::resp3).
    bool resp3() const { return options_.resp3; }

  private:
    struct in_flight_command {
        client_id client = 0;
        std::size_t bytes = 0;
    };

    bool one_whole_command(std::string_view bytes);
    void complete_front();

    shared_options options_;
    resp::scanner commands_;  // checks that a submitted command is one whole frame
    resp::scanner replies_;
    std::deque<in_flight_command> queue_;  // in command order = reply order
    std::unordered_map<client_id, std::size_t> per_client_;
    std::string out_;
    std::size_t bytes_in_flight_ = 0;
    bool mid_reply_ = false;
    bool violated_ = false;
    bool broken_ = false;
};

}  // namespace redis_sidecar::mux
