#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "redis_sidecar/bridge/context.hpp"
#include "redis_sidecar/cluster/rewrite.hpp"
#include "redis_sidecar/resp/scanner.hpp"

namespace redis_sidecar::bridge {

/// What to do with the upstream connection when the client leaves.
struct release_decision {
    enum class kind : std::uint8_t {
        clean,    ///< back to the pool as it is
        reset,    ///< RESET + re-authentication first (recycle_with_reset)
        discard,  ///< close it
    };
    kind what = kind::clean;
    /// reset: replies still in flight before RESET's (pushes aside); nullopt: uncounted
    /// (pub/sub, MONITOR), skip up to the first "+RESET".
    std::optional<std::uint64_t> owed;
};

/// The next thing to write to the client (client_core::next_write).
struct client_write {
    enum class kind : std::uint8_t {
        none,      ///< nothing now: wait for more upstream bytes (resume reading upstream)
        local,     ///< `local`, a reply the sidecar answered
        upstream,  ///< `bytes`, a run of upstream replies (a view into the pending bytes)
        close,     ///< close the client now
    };
    kind what = kind::none;
    std::string local;
    std::string_view bytes;
    bool close_after = false;  ///< local: close once written (QUIT, a fatal error)
};

/// The bridge's protocol core for one local client, without sockets: client bytes and upstream
/// bytes in; bytes to send upstream, writes for the client and the release decision out. It
/// frames commands and replies (resp::scanner), answers AUTH / HELLO AUTH / QUIT / RESET /
/// CLIENT GETNAME as README's command table says, keeps every reply in its command's order, and
/// knows what state the connection is left in. The Asio session performs what it asks.
class client_core {
  public:
    /// A locally answered command (AUTH, HELLO, CLIENT) larger than this is refused.
    static constexpr std::size_t max_intercepted_command = 64 * 1024;
    /// Local replies queued behind upstream replies before the client's input is paused.
    static constexpr std::size_t max_queued_local_replies = 1024;

    explicit client_core(session_context& context);

    // ---- client side
    /// Consumes bytes read from the client: forwarded bytes go to upstream_output(), local
    /// replies are queued in order.
    void feed_client(std::string_view data);
    /// Bytes to write upstream (the shell takes them: swap and clear).
    std::string& upstream_output() { return out_; }
    /// False once QUIT or a protocol error ended the client's input (later bytes are dropped).
    bool accepts_input() const { return !input_done_; }
    /// False while too many local replies wait: stop reading the client until they are sent.
    bool wants_input() const { return !input_done_ && local_slots_ < max_queued_local_replies; }

    // ---- upstream side
    /// The next write for the client. `pending` holds upstream bytes not yet delivered; the
    /// bytes the returned write covers (or that were dropped: the sidecar's own replies) are
    /// removed from its front. Call until it returns none (or close), writing each in order.
    client_write next_write(std::string_view& pending);
    /// No upstream connection could be had: owed local replies stay, the first command that
    /// waited gets `error`, and the client is closed after it.
    void upstream_unavailable(std::string error);
    /// The upstream connection broke, or a write to it failed: never reuse it.
    void upstream_failed() { upstream_bad_ = true; }
    /// A READONLY reply was seen (once per client): the shell tells the pool.
    bool take_readonly_event() { return std::exchange(readonly_event_, false); }

    // ---- the end
    /// What to do with the connection when the client leaves. From the shell: `writing` (a write
    /// to it was in progress), `undelivered` (bytes read from it not yet given to next_write),
    /// `broken` (its own state) and `client_id` (its CLIENT ID, 0 if unknown).
    release_decision release(bool writing, bool undelivered, bool broken, long long client_id);

    /// The client half-closed (read EOF: `nc -N`, a shell pipe, a writer that shut down its
    /// side): true when every reply it is owed will still come, so the shell delivers them and
    /// closes once settled(), as Redis answers the commands it read before an EOF. False when
    /// the client stopped mid-command (that one never completes), behind a blocking command
    /// that may never be answered, or with uncounted replies (pub/sub, MONITOR): close now.
    bool can_drain_after_eof() const {
        return mode_ == frame_mode::undecided && held_.empty() && !untracked_ &&
               last_blocking_reply_ <= replies_received_total_;
    }
    /// Nothing is owed to the client: no reply, upstream or local, and none half-delivered.
    bool settled() const { return slots_.empty() && at_reply_boundary_; }

    /// Upstream replies the client is still owed (pushes aside); for tests and the shell.
    std::uint64_t owed_replies() const;
    /// Bytes of the current reply that have been scanned: false mid-reply.
    bool at_reply_boundary() const { return at_reply_boundary_; }
    /// The reply scanner, where it stands (the recycler continues from it).
    const resp::scanner& reply_scanner() const { return replies_; }

  private:
    enum class frame_mode : std::uint8_t { undecided, forward, intercept, discard };
    /// Replies the client is owed, in order. RESP3 pushes are no replies: they pass through.
    struct slot {
        enum class kind : std::uint8_t {
            upstream,   // `replies` upstream replies, delivered
            local,      // one reply answered by the sidecar
            swallow,    // `replies` upstream replies to the sidecar's own commands, checked
            untracked,  // pub/sub, MONITOR, CLIENT REPLY OFF: every frame delivered, uncounted
        };
        kind what = kind::upstream;
        std::uint64_t replies = 0;
        std::string local;
        bool close_after = false;    // local: QUIT
        bool ends_at_reset = false;  // untracked: a RESET was sent; its "+RESET" ends the slot
        // upstream, one reply: a cluster topology reply, held whole and rewritten
        cluster::reply_kind rewrite = cluster::reply_kind::none;
        std::vector<cluster::queued_command> queued = {};  // transaction: EXEC's
    };

    void decide(std::string_view name, bool too_long);
    void end_frame();
    void on_forwarded_command(std::string_view name,
                              cluster::reply_kind rewrite = cluster::reply_kind::none);
    void leave_request_reply();
    void track_transaction(std::string_view name, cluster::reply_kind& rewrite,
                           std::vector<cluster::queued_command>& queued);
    void answer_locally(std::string reply, bool close_after = false);
    void forward_held(std::string_view frame, std::string_view name);
    void handle_intercepted(std::string_view frame, bool is_inline);
    void handle_hello(const std::vector<std::string>& args, std::string_view frame);
    void handle_client(const std::vector<std::string>& args, std::string_view frame);
    void handle_reset(std::string_view frame);
    void note_other_user(std::string_view user);
    void protocol_error(std::string reply);
    std::size_t take_upstream_bytes(std::string_view& pending);
    void count_reply(const resp::frame_info& info);
    bool holds_next_reply(char first) const;
    std::optional<std::string> hold_reply(std::string_view& pending);
    void note_rewrite_error(const std::string& error);
    bool swallow_frame(std::string_view& pending);
    void note_error_reply(const resp::frame_info& info);
    void unframable_reply();

    session_context& ctx_;
    resp::scanner commands_{resp::direction::command, resp::scanner_options::for_commands()};
    resp::scanner replies_{resp::direction::reply, resp::scanner_options::for_replies()};
    frame_mode mode_ = frame_mode::undecided;
    std::string held_;           // the current frame's bytes while undecided or intercepted
    std::string out_;            // bytes to forward upstream
    std::string discard_reply_;  // the reply owed for a discarded frame
    // Cluster mode: the reply being held whole to rewrite its node addresses (a topology
    // reply, an error that may be MOVED/ASK); at most cluster::max_rewritten_reply bytes.
    bool holding_ = false;
    bool held_too_large_ = false;
    cluster::reply_kind held_kind_ = cluster::reply_kind::none;
    std::vector<cluster::queued_command> held_queued_;
    std::string held_reply_;
    // Cluster mode, inside MULTI: commands queued, and which of them were topology commands
    // (their replies come inside EXEC's).
    bool in_multi_ = false;
    std::size_t queued_count_ = 0;
    std::vector<cluster::queued_command> queued_topology_;

    std::deque<slot> slots_;
    std::size_t local_slots_ = 0;
    bool at_reply_boundary_ = true;  // the reply scanner is between frames

    // Replies to forwarded commands, counted from the start: a blocking command is still
    // unanswered while last_blocking_reply_ > replies_received_total_.
    std::uint64_t replies_owed_total_ = 0;
    std::uint64_t replies_received_total_ = 0;
    std::uint64_t last_blocking_reply_ = 0;

    bool authenticated_ = false;
    bool client_named_ = false;  // the client set its own name (CLIENT SETNAME, HELLO SETNAME)
    bool resp3_ = false;         // the client switched to RESP3 (HELLO 3): local nils are "_"
    // The client learned the connection's identity (CLIENT ID / INFO) or turned on tracking:
    // other clients may refer to it (REDIRECT), so it is closed, never reused, when it leaves.
    bool identity_exposed_ = false;
    bool reply_broken_ = false;  // an upstream reply could not be framed: close the client
    bool dirty_ = false;         // connection state changed (MULTI, SELECT, SUBSCRIBE, ...)
    bool untracked_ = false;     // replies no longer match commands (the last slot is untracked)
    bool mid_frame_ = false;     // part of a command was forwarded, not all of it
    bool upstream_bad_ = false;  // READONLY / LOADING / garbage / broken: never reuse
    bool input_done_ = false;    // QUIT or garbage: later client bytes are dropped
    bool readonly_event_ = false;
    bool forwarded_any_ =
        false;  // something was sent upstream (a connection is, or will be, leased)
};

}  // namespace redis_sidecar::bridge
