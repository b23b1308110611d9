#pragma once

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "redis_sidecar/bridge/stats.hpp"
#include "redis_sidecar/config/secret.hpp"
#include "redis_sidecar/resp/scanner.hpp"
#include "redis_sidecar/upstream/pool.hpp"

namespace redis_sidecar::bridge {

namespace asio = boost::asio;
using local_socket = asio::generic::stream_protocol::socket;

class session;

/// What every session shares: the pool, the counters and the settings the bridge needs.
struct session_context {
    std::shared_ptr<upstream::pool> pool;
    bridge_stats* stats = nullptr;
    /// REDIS_SIDECAR_CLIENT_PASSWORD: local clients must AUTH with it; absent: any AUTH is OK.
    std::optional<config::secret> client_password;
    /// REDIS_SIDECAR_CLIENT_AUTH=passthrough: clients' AUTH and HELLO … AUTH go to the upstream.
    bool passthrough_auth = false;
    /// A local AUTH naming another user than the sidecar's has been logged (once per process).
    bool other_user_logged = false;
    /// CLIENT IDs that a client named in CLIENT TRACKING … REDIRECT: the connection with that
    /// id is closed, not reused, when its client leaves. Bounded: the oldest are forgotten.
    std::deque<long long> redirect_targets;
    static constexpr std::size_t max_redirect_targets = 1024;
    /// For the RESET path: the upstream's credentials, db and client name, re-applied.
    const config::upstream_settings* upstream = nullptr;
    std::string client_name;
    /// Bound on RESET + re-AUTH when recycling a connection a client left dirty.
    std::chrono::milliseconds recycle_timeout{5000};
    /// Called when a session ends (the listener's bookkeeping).
    std::function<void(session*)> on_session_end;
};

/// One local client bridged onto one leased upstream connection. The lease is taken at the
/// client's first command and held until it leaves. AUTH, HELLO … AUTH, QUIT and CLIENT GETNAME
/// (of a client that set no name) are answered locally; RESET is forwarded with the sidecar's
/// re-authentication behind it, whose replies the client never sees; everything else is
/// forwarded byte for byte (README: "Commands the sidecar answers, rewrites or pins").
/// Single-threaded (the io_context's).
class session final : public std::enable_shared_from_this<session>, private upstream::reader {
public:
    /// Bytes read from a client per read (into a buffer all sessions of a thread share).
    static constexpr std::size_t client_buffer_size = 16 * 1024;
    /// A locally answered command (AUTH, HELLO) larger than this is refused.
    static constexpr std::size_t max_intercepted_command = 64 * 1024;
    /// Local replies queued behind upstream replies before the client's input is paused.
    static constexpr std::size_t max_queued_local_replies = 1024;

    session(local_socket socket, std::shared_ptr<session_context> context);
    ~session() override;

    void start();
    /// Closes the client now (shutdown after the drain bound).
    void close();

private:
    enum class frame_mode { undecided, forward, intercept, discard };
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
    };

    // Client side.
    void do_read_client();
    void on_client_readable(const boost::system::error_code& ec);
    void process_client_bytes(std::string_view data);
    void maybe_read_client();
    void decide(std::string_view name, bool too_long);
    void end_frame();
    void on_forwarded_command(std::string_view name);
    void leave_request_reply();
    void answer_locally(std::string reply, bool close_after = false);
    void handle_intercepted(std::string_view frame, bool is_inline);
    void handle_hello(const std::vector<std::string>& args, std::string_view frame);
    void handle_client(const std::vector<std::string>& args, std::string_view frame);
    void handle_reset(std::string_view frame);
    void forward_held(std::string_view frame, std::string_view name);
    void note_other_user(std::string_view user);
    bool swallow_frame();
    void note_error_reply(const resp::frame_info& info);
    void unframable_reply();
    void flush_to_upstream();
    void acquire_upstream();
    void continue_client();

    // Upstream side.
    bool on_upstream_data(upstream::connection& c, std::string_view bytes) override;
    void on_upstream_error(upstream::connection& c, std::error_code ec) override;
    void pump();
    std::size_t take_upstream_bytes();

    void protocol_error(std::string reply);
    void finish();
    void recycle();

    // Held from start() to finish(). The upstream connection calls its reader by plain pointer,
    // so waiting for upstream replies is no pending operation of the session's own: after QUIT
    // or a protocol error (no client read pending) the session would otherwise be destroyed with
    // replies in flight, the connection left calling a dangling reader and the lease never
    // returned. Every way a session ends goes through finish().
    std::shared_ptr<session> self_;
    local_socket client_;
    std::shared_ptr<session_context> ctx_;
    std::shared_ptr<upstream::connection> up_;
    bool acquiring_ = false;

    resp::scanner commands_{resp::direction::command, resp::scanner_options::for_commands()};
    resp::scanner replies_{resp::direction::reply, resp::scanner_options::for_replies()};
    frame_mode mode_ = frame_mode::undecided;
    std::string held_;          // the current frame's bytes while undecided or intercepted
    std::string out_;           // bytes to forward upstream
    std::string out_writing_;   // bytes being written upstream
    bool upstream_writing_ = false;
    bool reading_client_ = false;
    bool client_eof_ = false;

    std::deque<slot> slots_;
    std::size_t local_slots_ = 0;
    std::string_view pending_upstream_;  // upstream bytes not yet written to the client
    bool upstream_paused_ = false;
    bool at_reply_boundary_ = true;  // the reply scanner is between frames
    bool client_writing_ = false;
    std::string local_writing_;

    // Replies to forwarded commands (tracked mode), counted from the start: a blocking command
    // is still unanswered while last_blocking_reply_ > replies_received_total_.
    std::uint64_t replies_owed_total_ = 0;
    std::uint64_t replies_received_total_ = 0;
    std::uint64_t last_blocking_reply_ = 0;

    bool authenticated_ = false;
    bool client_named_ = false; // the client set its own name (CLIENT SETNAME, HELLO SETNAME)
    bool resp3_ = false;        // the client switched to RESP3 (HELLO 3): local nils are "_"
    // The client learned the connection's identity (CLIENT ID / INFO) or turned on tracking:
    // other clients may refer to it (REDIRECT), so it is closed, never reused, when it leaves.
    bool identity_exposed_ = false;
    bool reply_broken_ = false; // an upstream reply could not be framed: close the client
    bool dirty_ = false;        // connection state changed (MULTI, SELECT, SUBSCRIBE, ...)
    bool untracked_ = false;    // subscribed / MONITOR: replies no longer match commands
    bool mid_frame_ = false;    // part of a command was forwarded, not all of it
    bool upstream_bad_ = false; // READONLY / LOADING / garbage: never reuse
    bool closing_ = false;
    bool input_done_ = false;   // QUIT or garbage: later client bytes are dropped
    std::string discard_reply_; // the reply owed for a discarded frame
    bool finished_ = false;
};

}  // namespace redis_sidecar::bridge
