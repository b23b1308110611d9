#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "redis_sidecar/bridge/stats.hpp"
#include "redis_sidecar/mux/shared_core.hpp"
#include "redis_sidecar/upstream/connection.hpp"

namespace redis_sidecar::upstream {
class pool;
}

namespace redis_sidecar::bridge {

namespace asio = boost::asio;

/// Tells a write that makes no progress from one that merely follows others: the shell calls
/// started() at every write it begins (a counter, no clock), a periodic sweep calls stalled().
/// Socket-free.
struct write_watch {
    std::uint32_t writes = 0;  ///< writes begun
    std::uint32_t seen = 0;    ///< `writes` at the last sweep
    unsigned sweeps = 0;       ///< consecutive sweeps that found that same write pending

    void started() { ++writes; }
    /// Once per sweep: whether the write pending now is the one pending at the last `limit`
    /// sweeps (so it has been pending for at least `limit` sweep periods).
    bool stalled(bool writing, unsigned limit) {
        if (!writing || writes != seen) {
            seen = writes;
            sweeps = 0;
            return false;
        }
        return ++sweeps >= limit;
    }
};

/// What a lane tells the sessions it serves (implemented by session).
class lane_client {
  public:
    virtual ~lane_client() = default;
    /// Reply bytes for this client, in order (copied: `bytes` dies after the call). Returns
    /// whether the client's undelivered bytes now exceed lane::max_client_backlog. The client
    /// may end (and be destroyed) in the call, after computing its answer. `large_value`: the
    /// bytes are part of a bulk string with lane::large_reply_bytes or more still to come.
    virtual bool lane_bytes(std::string_view bytes, bool large_value) = 0;
    /// The lane broke with `commands` of this client in flight: each gets `error` (a whole
    /// RESP error line); `partial_reply`: part of a reply was delivered, so the client must be
    /// closed instead.
    virtual void lane_lost(std::size_t commands, bool partial_reply, std::string_view error) = 0;
    /// The lane has room again (after a submit was refused as full), or broke: submit again.
    virtual void lane_room() = 0;
};

/// One shared upstream connection (issue 16): a connection leased from the pool for as long
/// as it works, a mux::shared_core, and the Asio work around them. Commands submitted during
/// one turn of the event loop go out in one write (a posted flush, one write in flight);
/// replies are routed to their clients' lane_bytes(). Single-threaded.
class lane final : public std::enable_shared_from_this<lane>, private upstream::reader {
  public:
    /// A client whose undelivered replies exceed this stops the lane's reading until it
    /// catches up (the head-of-line bound: a slow reader stalls the others for at most the
    /// write timeout, which then closes it).
    static constexpr std::size_t max_client_backlog = std::size_t{4} * 1024 * 1024;

    /// The command a RESP3 lane sends first, and a session on a dedicated connection for a
    /// client that switched to RESP3 on a lane (its reply is the sidecar's own).
    static constexpr std::string_view hello3 = "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n";

    lane(asio::any_io_executor ex, std::shared_ptr<upstream::pool> pool, bridge_stats* stats,
         mux::shared_options options);
    ~lane() override;

    /// Leases the connection (commands submitted meanwhile wait in the core).
    void open();

    /// Queues one whole shareable command of `client` (see mux::shared_core::submit).
    mux::submit_status submit(mux::client_id id, lane_client* client, std::string_view command);
    /// `client` is told lane_room() once replies have freed room (or the lane broke).
    void wait_for_room(mux::client_id id, lane_client* client);
    /// The client left: its remaining replies are dropped.
    void forget(mux::client_id id);
    /// A client's backlog fell: resume reading if it was the reason for a pause.
    void backlog_drained(mux::client_id id);

    /// The lane speaks RESP3 (it sent HELLO 3 before any client's command).
    bool resp3() const { return core_.resp3(); }
    /// True once the lane broke (no new commands).
    bool broken() const { return core_.is_broken(); }
    /// True when the pool replaced its connections (failover, lifetime): no new clients; the
    /// lane closes once its commands are answered.
    bool retiring() const { return retiring_; }
    std::size_t commands_in_flight() const { return core_.commands_in_flight(); }
    std::size_t in_flight(mux::client_id id) const { return core_.in_flight(id); }
    /// A value of at least this many bytes still to stream makes a lane a poor choice: every
    /// command submitted now waits for its whole transfer (256 KiB: about 2 ms on a 1 Gbit/s
    /// link, far longer than a small command's round trip).
    static constexpr std::uint64_t large_reply_bytes = std::uint64_t{256} * 1024;
    /// True while the lane streams a bulk string with large_reply_bytes or more still to come.
    bool streaming_large_reply() const {
        return core_.reply_payload_remaining() >= large_reply_bytes;
    }
    /// The deadlines (the listener's sweep): a write pending at `limit` sweeps breaks the lane,
    /// and so does a reply begun and not finished for as long (while the lane is reading, not
    /// paused behind a slow client). Waiting for a reply to begin is not timed, as on a
    /// dedicated connection.
    void enforce_deadlines(unsigned limit);
    /// Closes the lane now: its clients' commands in flight get the error.
    void close();

  private:
    bool on_upstream_data(upstream::connection& c, std::string_view bytes) override;
    void on_upstream_error(upstream::connection& c, std::error_code ec) override;
    /// The client id of the lane's own commands (HELLO 3); sessions' ids start at 1.
    static constexpr mux::client_id own_id = 0;
    void own_reply(std::string_view bytes);
    void schedule_flush();
    void flush();
    void fail(std::string_view error);
    void notify_waiters();
    void maybe_retire();

    asio::any_io_executor ex_;
    std::shared_ptr<upstream::pool> pool_;
    bridge_stats* stats_;
    mux::shared_core core_;
    std::shared_ptr<upstream::connection> conn_;
    bool acquiring_ = false;
    int broken_leases_ = 0;
    bool flush_posted_ = false;
    bool writing_ = false;
    write_watch write_watch_;
    write_watch read_watch_;  // counts reads; "pending" while a reply is begun and unfinished
    bool paused_ = false;
    mux::client_id paused_by_ = 0;
    bool retiring_ = false;
    bool own_reply_seen_ = false;
    std::string writing_bytes_;
    std::size_t writing_commands_ = 0;
    std::size_t submitted_since_flush_ = 0;
    std::unordered_map<mux::client_id, lane_client*> clients_;
    std::vector<std::pair<mux::client_id, lane_client*>> waiters_;
    std::vector<std::pair<mux::client_id, lane_client*>>* notifying_ = nullptr;
    std::vector<mux::routed_piece> pieces_;
};

/// The shared connections of one listener: up to `count` lanes per protocol (RESP2, RESP3),
/// opened lazily, and at most `max_total` in all; a client without commands in flight goes to
/// the lane of its protocol with the fewest commands in flight, avoiding one that streams a
/// large value (a new lane while fewer than `count` are open and all are busy).
class lane_set {
  public:
    lane_set(asio::any_io_executor ex, std::shared_ptr<upstream::pool> pool, bridge_stats* stats,
             std::size_t count, std::size_t max_total);
    ~lane_set();

    /// A lane of `protocol` (2 or 3) to submit to; null only when none of that protocol is
    /// open and `max_total` lanes are (the client then takes a connection of its own).
    std::shared_ptr<lane> pick(int protocol);
    /// A fresh client id.
    mux::client_id next_id() { return ++last_id_; }
    /// Lanes open (not broken, not retired).
    std::size_t open() const;
    /// The listener's sweep: each lane's deadlines.
    void enforce_deadlines(unsigned limit);
    void close_all();

  private:
    void prune();

    asio::any_io_executor ex_;
    std::shared_ptr<upstream::pool> pool_;
    bridge_stats* stats_;
    std::size_t count_;
    std::size_t max_total_;
    mux::client_id last_id_ = 0;
    std::vector<std::shared_ptr<lane>> lanes_;
};

}  // namespace redis_sidecar::bridge
