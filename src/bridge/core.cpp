#include "redis_sidecar/bridge/core.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <span>
#include <utility>

#include "redis_sidecar/bridge/args.hpp"
#include "redis_sidecar/log/logger.hpp"
#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/upstream/handshake.hpp"

namespace redis_sidecar::bridge {

namespace {

constexpr std::string_view reply_ok = "+OK\r\n";
constexpr std::string_view reply_wrongpass =
    "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
constexpr std::string_view reply_noauth = "-NOAUTH Authentication required.\r\n";
constexpr std::string_view reply_hello_noauth =
    "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the "
    "RESP protocol version at the same time\r\n";
constexpr std::string_view reply_too_long = "-ERR redis-sidecar: command too long\r\n";
constexpr std::string_view reply_reset = "+RESET\r\n";

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool starts_with(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}

// Commands after which the connection carries state a next client must not inherit (CLIENT:
// by its subcommand, in handle_client).
bool changes_connection_state(std::string_view name) {
    static constexpr std::string_view names[] = {
        "multi",     "watch",      "select",     "hello",   "readonly", "readwrite",
        "subscribe", "psubscribe", "ssubscribe", "monitor", "reset",    "swapdb"};
    return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

// Commands after which replies no longer answer commands one for one (RESP2 pub/sub, MONITOR).
bool leaves_request_reply(std::string_view name) {
    return name == "subscribe" || name == "psubscribe" || name == "ssubscribe" || name == "monitor";
}

// Commands that may leave the upstream connection blocked (possibly forever: BLPOP k 0). Redis
// reads nothing more from a blocked client, RESET included.
bool may_block(std::string_view name) {
    static constexpr std::string_view names[] = {"blpop",  "brpop",      "brpoplpush", "blmove",
                                                 "blmpop", "bzpopmin",   "bzpopmax",   "bzmpop",
                                                 "xread",  "xreadgroup", "wait",       "waitaof"};
    return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

}  // namespace

client_core::client_core(session_context& context)
    : ctx_(context), authenticated_(!context.client_password.has_value()) {}

// ---------------------------------------------------------------------------------------------
// Client → upstream

void client_core::feed_client(std::string_view data) {
    while (!data.empty() && !input_done_) {
        const auto r = commands_.scan(data);
        if (r.status == resp::scan_status::error) {
            protocol_error(commands_.error_reply());
            return;
        }
        const auto chunk = data.substr(0, r.consumed);
        data.remove_prefix(r.consumed);
        const auto& info = commands_.info();
        switch (mode_) {
            case frame_mode::undecided:
                held_.append(chunk);
                if (info.name_complete || info.name_too_long ||
                    r.status == resp::scan_status::frame_done) {
                    decide(info.command_name(), info.name_too_long);
                } else if (held_.size() > max_intercepted_command) {
                    protocol_error("-ERR Protocol error: too big inline request\r\n");
                    return;
                }
                break;
            case frame_mode::forward:
                out_.append(chunk);
                break;
            case frame_mode::intercept:
                if (held_.size() + chunk.size() > max_intercepted_command) {
                    mode_ = frame_mode::discard;
                    discard_reply_ = reply_too_long;
                    held_.clear();
                } else {
                    held_.append(chunk);
                }
                break;
            case frame_mode::discard:
                break;
        }
        if (r.status == resp::scan_status::frame_done) end_frame();
    }
}

void client_core::decide(std::string_view name, bool too_long) {
    // AUTH, QUIT, HELLO and RESET run before authentication in Redis too.
    if (!too_long && (name == "auth" || name == "quit" || name == "hello" || name == "reset")) {
        mode_ = frame_mode::intercept;
        return;
    }
    if (!authenticated_) {
        mode_ = frame_mode::discard;
        discard_reply_ = reply_noauth;
        held_.clear();
        return;
    }
    if (!too_long && (name == "client" || (name == "cluster" && ctx_.cluster != nullptr))) {
        mode_ = frame_mode::intercept;  // held whole: the subcommand decides
        return;
    }
    mode_ = frame_mode::forward;
    out_.append(held_);
    held_.clear();
    mid_frame_ = true;
}

void client_core::end_frame() {
    const auto& info = commands_.info();
    switch (mode_) {
        case frame_mode::forward:
            mid_frame_ = false;
            on_forwarded_command(info.name_too_long ? std::string_view{} : info.command_name());
            break;
        case frame_mode::intercept:
            ++ctx_.stats->commands_intercepted;
            handle_intercepted(held_, info.is_inline);
            held_.clear();
            break;
        case frame_mode::discard:
            answer_locally(std::move(discard_reply_));
            discard_reply_.clear();
            break;
        case frame_mode::undecided:
            break;
    }
    mode_ = frame_mode::undecided;
}

void client_core::on_forwarded_command(std::string_view name, cluster::reply_kind rewrite) {
    ++ctx_.stats->commands_forwarded;
    forwarded_any_ = true;
    std::vector<cluster::queued_command> queued;
    if (ctx_.cluster != nullptr) track_transaction(name, rewrite, queued);
    if (!untracked_) {
        if (slots_.empty() || slots_.back().what != slot::kind::upstream ||
            slots_.back().rewrite != cluster::reply_kind::none ||
            rewrite != cluster::reply_kind::none) {
            slots_.emplace_back();
            slots_.back().rewrite = rewrite;
            slots_.back().queued = std::move(queued);
        }
        ++slots_.back().replies;
        ++replies_owed_total_;
        if (may_block(name)) last_blocking_reply_ = replies_owed_total_;
    }
    if (changes_connection_state(name)) dirty_ = true;
    if (leaves_request_reply(name)) leave_request_reply();
}

// Cluster mode: a topology command queued in MULTI is answered inside EXEC's reply, which is
// then held and rewritten (rewrite_transaction); other EXEC replies stream as they are.
void client_core::track_transaction(std::string_view name, cluster::reply_kind& rewrite,
                                    std::vector<cluster::queued_command>& queued) {
    if (name == "multi") {
        in_multi_ = true;
        queued_count_ = 0;
        queued_topology_.clear();
    } else if (!in_multi_) {
        return;
    } else if (name == "exec" || name == "discard") {
        in_multi_ = false;
        if (name == "exec" && !queued_topology_.empty()) {
            rewrite = cluster::reply_kind::transaction;
            queued = std::move(queued_topology_);
        }
        queued_topology_.clear();
    } else {
        if (rewrite != cluster::reply_kind::none) {
            queued_topology_.push_back({queued_count_, rewrite});
            rewrite = cluster::reply_kind::none;  // its own reply is +QUEUED
        }
        ++queued_count_;
    }
}

// From here on replies are not one per command (pub/sub, MONITOR, CLIENT REPLY OFF): forward
// whatever comes. Only a RESET ends it.
// The command that did it is the last one counted: it and everything after it belong to one
// untracked slot, behind the replies still owed before it.
void client_core::leave_request_reply() {
    if (untracked_) return;
    untracked_ = true;
    if (!slots_.empty() && slots_.back().what == slot::kind::upstream) {
        --replies_owed_total_;
        if (--slots_.back().replies == 0) slots_.pop_back();
    }
    slots_.push_back({slot::kind::untracked, 0, {}, false, false});
}

// A local reply follows what is owed before it. In an untracked stream it goes out at the next
// frame boundary (the untracked slot stays last).
void client_core::answer_locally(std::string reply, bool close_after) {
    slot s{slot::kind::local, 0, std::move(reply), close_after, false};
    if (untracked_) {
        slots_.insert(std::prev(slots_.end()), std::move(s));
    } else {
        slots_.push_back(std::move(s));
    }
    ++local_slots_;
}

void client_core::forward_held(std::string_view frame, std::string_view name) {
    out_.append(frame);
    on_forwarded_command(name);
}

void client_core::handle_intercepted(std::string_view frame, bool is_inline) {
    const auto args = is_inline ? split_inline(frame) : split_multibulk(frame);
    if (args.empty()) {
        // Unreachable while args.cpp splits as the scanner frames; every frame still gets its
        // one reply, so the replies after it stay with their commands.
        answer_locally("-ERR redis-sidecar: could not read the command\r\n");
        return;
    }
    const std::string name = lower(args[0]);
    if (name == "quit") {
        input_done_ = true;
        answer_locally(std::string(reply_ok), true);
        return;
    }
    if (name == "reset") {
        if (args.size() != 1) {
            forward_held(frame, name);  // the upstream answers the arity error
        } else {
            handle_reset(frame);
        }
        return;
    }
    if (name == "client") {
        handle_client(args, frame);
        return;
    }
    if (name == "cluster") {  // cluster mode: topology replies name nodes
        out_.append(frame);
        on_forwarded_command(name, args.size() >= 2 ? cluster::kind_of(args[0], args[1])
                                                    : cluster::reply_kind::none);
        return;
    }
    if (name == "hello") {
        handle_hello(args, frame);
        return;
    }
    if (name != "auth") {  // unreachable: decide() intercepts no other command
        forward_held(frame, name);
        return;
    }
    // AUTH [user] password
    if (ctx_.passthrough_auth) {
        forward_held(frame, name);
        dirty_ = true;  // maybe another user now: RESET and re-AUTH before reuse
        return;
    }
    if (args.size() != 2 && args.size() != 3) {
        answer_locally("-ERR wrong number of arguments for 'auth' command\r\n");
    } else if (!ctx_.client_password || ctx_.client_password->reveal() == args.back()) {
        authenticated_ = true;
        if (args.size() == 3) note_other_user(args[1]);
        answer_locally(std::string(reply_ok));
    } else {
        ++ctx_.stats->auth_failures;
        answer_locally(std::string(reply_wrongpass));
    }
}

// local mode: commands keep running as the sidecar's user, whatever user the client named.
void client_core::note_other_user(std::string_view user) {
    if (user == (ctx_.upstream_user ? ctx_.upstream_user() : std::string("default"))) return;
    ++ctx_.stats->auth_other_user;
    if (ctx_.other_user_logged) return;
    ctx_.other_user_logged = true;
    log::warn(
        "a client authenticated as another user than the sidecar's; its commands run as the "
        "sidecar's user (REDIS_SIDECAR_CLIENT_AUTH=passthrough sends its AUTH upstream)",
        {{"client_user", user}});
}

// HELLO [protover [AUTH user pass] [SETNAME name]]: in local mode AUTH is checked here and
// dropped, the rest goes upstream; in passthrough mode the whole command goes upstream.
void client_core::handle_hello(const std::vector<std::string>& args, std::string_view frame) {
    std::vector<std::string_view> forward = {args[0]};
    bool auth_given = false;
    bool named = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string option = lower(args[i]);
        if (option == "setname" && i >= 2 && i + 1 < args.size()) named = true;
        if (option == "auth" && i >= 2 && !ctx_.passthrough_auth) {
            if (i + 2 >= args.size()) {
                answer_locally("-ERR Syntax error in HELLO option 'auth'\r\n");
                return;
            }
            if (ctx_.client_password && ctx_.client_password->reveal() != args[i + 2]) {
                ++ctx_.stats->auth_failures;
                answer_locally(std::string(reply_wrongpass));
                return;
            }
            note_other_user(args[i + 1]);
            auth_given = true;
            i += 2;
            continue;
        }
        forward.push_back(args[i]);
    }
    if (auth_given) authenticated_ = true;
    if (!authenticated_) {
        answer_locally(std::string(reply_hello_noauth));
        return;
    }
    if (args.size() >= 2) resp3_ = args[1] == "3";
    if (named) client_named_ = true;
    if (ctx_.passthrough_auth) {
        forward_held(frame, "hello");
    } else {
        out_.append(resp::format_command(std::span<const std::string_view>(forward)));
        on_forwarded_command("hello");
    }
}

// CLIENT subcommands that depend on which connection answers them.
void client_core::handle_client(const std::vector<std::string>& args, std::string_view frame) {
    const std::string sub = args.size() >= 2 ? lower(args[1]) : std::string();
    if (sub == "getname" && args.size() == 2 && !client_named_) {
        // The upstream would answer the sidecar's own name; this client set none.
        answer_locally(resp3_ ? "_\r\n" : "$-1\r\n");
        return;
    }
    if (sub == "maint_notifications") {
        // Maintenance notifications (node-redis 5 asks for them with RESP3) tell a client to
        // reconnect to another endpoint during maintenance: through the sidecar, which follows
        // the upstream itself, the client must stay. Clients in "auto" mode ignore the error.
        answer_locally(
            "-ERR redis-sidecar: CLIENT MAINT_NOTIFICATIONS is not passed on: the sidecar "
            "follows the upstream's maintenance and failovers itself\r\n");
        if (!ctx_.maint_notifications_logged) {
            ctx_.maint_notifications_logged = true;
            log::info(
                "a client asked for maintenance notifications (CLIENT MAINT_NOTIFICATIONS); "
                "refused: the sidecar follows the upstream itself (logged once)");
        }
        return;
    }
    if (sub == "setname") client_named_ = true;
    if (sub == "id" || sub == "info" || sub == "tracking") identity_exposed_ = true;
    if (sub == "tracking") {
        for (std::size_t i = 2; i + 1 < args.size(); ++i) {
            long long id = 0;
            const auto& v = args[i + 1];
            if (lower(args[i]) != "redirect" ||
                std::from_chars(v.data(), v.data() + v.size(), id).ec != std::errc{}) {
                continue;
            }
            auto& targets = ctx_.redirect_targets;
            if (targets.size() >= session_context::max_redirect_targets) targets.pop_front();
            targets.push_back(id);
        }
    }
    forward_held(frame, "client");
    // Subcommands that leave the connection as it was need no RESET before its next client
    // (RESET would not clear SETINFO's library name either; every library sends it). Not KILL:
    // `SKIPME no` may have killed this very connection, which the RESET then finds out.
    static constexpr std::string_view stateless[] = {"getname", "getredir",     "help",   "id",
                                                     "info",    "list",         "pause",  "unpause",
                                                     "unblock", "trackinginfo", "setinfo"};
    if (std::find(std::begin(stateless), std::end(stateless), sub) == std::end(stateless)) {
        dirty_ = true;
    }
    if (sub == "reply" && args.size() == 3 && lower(args[2]) != "on") leave_request_reply();
}

// RESET: Redis drops the connection back to the default user, unnamed, db 0. The sidecar sends
// RESET and, right behind it, its own re-authentication (whose replies the client never sees),
// so the connection is the sidecar's again; the client's own state (AUTH, name, protocol) is
// reset here. Without a leased connection there is nothing upstream to reset.
void client_core::handle_reset(std::string_view frame) {
    ++ctx_.stats->client_resets;
    authenticated_ = !ctx_.client_password.has_value();
    client_named_ = false;
    resp3_ = false;
    in_multi_ = false;
    queued_topology_.clear();
    if (!forwarded_any_) {  // no connection was leased: nothing upstream to reset
        answer_locally(std::string(reply_reset));
        return;
    }
    out_.append(frame);
    ++ctx_.stats->commands_forwarded;
    forwarded_any_ = true;
    if (untracked_) {
        slots_.back().ends_at_reset = true;
        untracked_ = false;  // later commands are counted again, behind the RESET
    } else {
        if (slots_.empty() || slots_.back().what != slot::kind::upstream) slots_.emplace_back();
        ++slots_.back().replies;
        ++replies_owed_total_;
    }
    const auto reauth = ctx_.reauth();
    out_.append(reauth.commands);
    slots_.push_back({slot::kind::swallow, reauth.steps.size(), {}, false, false});
    dirty_ = false;  // as clean as a pooled connection once the replies are in
}

// ---------------------------------------------------------------------------------------------
// Upstream → client

// The bytes at the front of pending that can go to the client now: whole frames (and
// the start of one), up to a local reply or the sidecar's own replies, which come next.
std::size_t client_core::take_upstream_bytes(std::string_view& pending) {
    std::size_t taken = 0;
    while (taken < pending.size()) {
        if (!slots_.empty() && slots_.front().what == slot::kind::swallow) {
            if (taken > 0 || !swallow_frame(pending)) break;
            continue;
        }
        if (!slots_.empty() && slots_.front().what == slot::kind::local && at_reply_boundary_) {
            break;  // it is next
        }
        if (at_reply_boundary_ && holds_next_reply(pending[taken])) {
            holding_ = taken == 0;  // held once what comes before it went out
            break;
        }
        const auto r = replies_.scan(pending.substr(taken));
        if (r.status == resp::scan_status::error) {
            unframable_reply();
            break;
        }
        taken += r.consumed;
        if (r.status == resp::scan_status::need_more) {
            at_reply_boundary_ = false;
            break;
        }
        at_reply_boundary_ = true;
        count_reply(replies_.info());
    }
    return taken;
}

// A whole reply frame was scanned: match it to the front slot.
void client_core::count_reply(const resp::frame_info& info) {
    note_error_reply(info);
    if (info.is_push || slots_.empty()) return;
    auto& front = slots_.front();
    if (front.what == slot::kind::upstream) {
        ++replies_received_total_;
        if (--front.replies == 0) slots_.pop_front();
    } else if (front.what == slot::kind::untracked && front.ends_at_reset && info.type == '+' &&
               info.head() == "RESET") {
        slots_.pop_front();
    }
}

// Cluster mode holds a reply whole when it may name nodes: the reply to a topology command, and
// any error (MOVED/ASK; errors are one line). Pushes never.
bool client_core::holds_next_reply(char first) const {
    if (ctx_.cluster == nullptr || first == '>') return false;
    if (first == '-') return true;
    return !slots_.empty() && slots_.front().what == slot::kind::upstream &&
           slots_.front().rewrite != cluster::reply_kind::none;
}

// Counted every time; logged the 1st, 2nd, 4th, 8th, … time, so that a client retrying cannot
// flood the log.
void client_core::note_rewrite_error(const std::string& error) {
    const auto n = ++ctx_.stats->cluster_rewrite_errors;
    if ((n & (n - 1)) == 0) {
        log::warn("a cluster reply could not be rewritten to local ports; the client gets an error",
                  {{"error", error}, {"times", std::to_string(n)}});
    }
}

// Takes the held reply's bytes from pending (all of them, or up to its end). Once it is whole:
// the bytes the client gets instead. A reply beyond cluster::max_rewritten_reply is dropped as
// it arrives (never buffered) and replaced by an error.
std::optional<std::string> client_core::hold_reply(std::string_view& pending) {
    if (at_reply_boundary_) {
        const bool front = !slots_.empty() && slots_.front().what == slot::kind::upstream;
        held_kind_ = front ? slots_.front().rewrite : cluster::reply_kind::none;
        held_queued_.clear();
        if (front) held_queued_ = slots_.front().queued;
        held_reply_.clear();
        held_too_large_ = false;
    }
    const auto r = replies_.scan(pending);
    if (r.status == resp::scan_status::error) {
        holding_ = false;
        held_reply_.clear();
        unframable_reply();
        return std::nullopt;
    }
    if (!held_too_large_ && held_reply_.size() + r.consumed > cluster::max_rewritten_reply) {
        held_too_large_ = true;
        std::string().swap(held_reply_);
    }
    if (!held_too_large_) held_reply_.append(pending.substr(0, r.consumed));
    pending.remove_prefix(r.consumed);
    if (r.status == resp::scan_status::need_more) {
        at_reply_boundary_ = false;
        return std::nullopt;
    }
    at_reply_boundary_ = true;
    holding_ = false;
    count_reply(replies_.info());
    if (held_too_large_) {
        note_rewrite_error("the reply is larger than " +
                           std::to_string(cluster::max_rewritten_reply) + " bytes");
        return "-ERR redis-sidecar: the upstream's cluster topology reply is larger than " +
               std::to_string(cluster::max_rewritten_reply) + " bytes\r\n";
    }
    auto result = held_kind_ == cluster::reply_kind::transaction
                      ? cluster::rewrite_transaction(held_reply_, held_queued_, *ctx_.cluster)
                      : cluster::rewrite_reply(held_kind_, held_reply_, *ctx_.cluster);
    std::string().swap(held_reply_);
    if (!result.error.empty()) {
        note_rewrite_error(result.error);
    } else if (result.rewritten) {
        ++(held_kind_ == cluster::reply_kind::none ? ctx_.stats->cluster_redirects
                                                   : ctx_.stats->cluster_rewrites);
    }
    return std::move(result.bytes);
}

// Drops (part of) one reply to the sidecar's re-authentication after a client's RESET from the
// front of pending. True when a whole frame was dropped.
bool client_core::swallow_frame(std::string_view& pending) {
    const auto r = replies_.scan(pending);
    if (r.status == resp::scan_status::error) {
        unframable_reply();
        return false;
    }
    pending.remove_prefix(r.consumed);
    if (r.status == resp::scan_status::need_more) {
        at_reply_boundary_ = false;
        return false;
    }
    at_reply_boundary_ = true;
    const auto& info = replies_.info();
    if (info.is_push) return true;
    if (info.type == '-' || info.type == '!') {
        // The client was told +RESET; its next commands would run unauthenticated: close it.
        log::warn("re-authentication after a client's RESET was refused; closing the client",
                  {{"reply", info.head()}});
        upstream_bad_ = true;
        reply_broken_ = true;
        pending = {};
        return false;
    }
    if (--slots_.front().replies == 0) slots_.pop_front();
    return true;
}

void client_core::note_error_reply(const resp::frame_info& info) {
    if (info.type != '-') return;
    if (starts_with(info.head(), "READONLY")) {
        ++ctx_.stats->readonly_replies;
        // A failover demoted the upstream: the pool's idle connections point at it too.
        if (!upstream_bad_) readonly_event_ = true;
        upstream_bad_ = true;
    } else if (starts_with(info.head(), "LOADING")) {
        ++ctx_.stats->loading_replies;
        upstream_bad_ = true;
    }
}

// Not RESP: no later byte can be matched to a command. What was framed before goes out; then
// the client is closed (it reconnects), never left reading another command's reply.
void client_core::unframable_reply() {
    ++ctx_.stats->reply_framing_errors;
    log::warn("an upstream reply could not be framed; closing the client",
              {{"error", replies_.last_error().message()}});
    upstream_bad_ = true;
    reply_broken_ = true;
}

// Not RESP from the client: it gets the error and is closed. Part of the frame may have gone
// upstream already (when it came in pieces): that connection is never reused.
void client_core::protocol_error(std::string reply) {
    ++ctx_.stats->protocol_errors;
    log::debug("client sent a malformed command; closing it");
    upstream_bad_ = true;
    input_done_ = true;
    mode_ = frame_mode::undecided;
    held_.clear();
    answer_locally(std::move(reply), true);
}

client_write client_core::next_write(std::string_view& pending) {
    if (reply_broken_ && pending.empty()) return {client_write::kind::close, {}, {}, false};
    if (!slots_.empty() && slots_.front().what == slot::kind::local && at_reply_boundary_) {
        slot s = std::move(slots_.front());
        slots_.pop_front();
        --local_slots_;
        return {client_write::kind::local, std::move(s.local), {}, s.close_after};
    }
    if (pending.empty()) return {};
    if (holding_) {
        if (auto held = hold_reply(pending)) {
            return {client_write::kind::local, std::move(*held), {}, false};
        }
        if (reply_broken_) pending = {};
        return reply_broken_ ? next_write(pending) : client_write{};
    }
    const auto n = take_upstream_bytes(pending);
    const auto bytes = pending.substr(0, n);
    pending.remove_prefix(n);
    if (reply_broken_) pending = {};
    if (!bytes.empty()) return {client_write::kind::upstream, {}, bytes, false};
    // Nothing deliverable: a swallowed reply was all there was, or more bytes are needed.
    if (reply_broken_ || holding_ ||
        (!slots_.empty() && slots_.front().what == slot::kind::local && at_reply_boundary_)) {
        return next_write(pending);
    }
    return {};
}

void client_core::upstream_unavailable(std::string error) {
    ++ctx_.stats->upstream_unavailable;
    // Nothing was sent upstream: the client gets one error and the connection closes. The error
    // answers the first command that waited for a connection; it and everything after it are
    // dropped (the error would otherwise queue forever behind replies that never come). Local
    // replies owed before it are still delivered.
    input_done_ = true;
    out_.clear();
    const auto first_waiting = std::find_if(
        slots_.begin(), slots_.end(), [](const slot& s) { return s.what != slot::kind::local; });
    local_slots_ -= static_cast<std::size_t>(std::count_if(
        first_waiting, slots_.end(), [](const slot& s) { return s.what == slot::kind::local; }));
    slots_.erase(first_waiting, slots_.end());
    untracked_ = false;
    answer_locally(std::move(error), true);
}

std::uint64_t client_core::owed_replies() const {
    std::uint64_t owed = 0;
    for (const auto& s : slots_) {
        if (s.what == slot::kind::upstream || s.what == slot::kind::swallow) owed += s.replies;
    }
    return owed;
}

release_decision client_core::release(bool writing, bool undelivered, bool broken,
                                      long long client_id) {
    bool resetting = false;  // a client RESET's replies are still in flight
    for (const auto& s : slots_) {
        if (s.what == slot::kind::swallow || s.ends_at_reset) resetting = true;
    }
    // Another client named this connection in CLIENT TRACKING … REDIRECT.
    auto& targets = ctx_.redirect_targets;
    const auto target = std::find(targets.begin(), targets.end(), client_id);
    if (client_id != 0 && target != targets.end()) {
        targets.erase(target);
        identity_exposed_ = true;
    }
    if (identity_exposed_) ++ctx_.stats->identity_discards;
    // A command that may block is still unanswered: the connection would read RESET only once
    // it is served, maybe never (BLPOP k 0), holding a pool slot until recycle_timeout.
    const bool maybe_blocked = last_blocking_reply_ > replies_received_total_;
    // Uncounted replies and a RESET of the client's in flight: the recycler could not tell the
    // client's "+RESET" from its own.
    const bool ambiguous = untracked_ && resetting;
    if (upstream_bad_ || broken || mid_frame_ || writing || !out_.empty() || maybe_blocked ||
        ambiguous || identity_exposed_) {
        return {release_decision::kind::discard, {}};
    }
    const auto owed = owed_replies();
    if (!dirty_ && !untracked_ && owed == 0 && !undelivered && at_reply_boundary_) {
        return {release_decision::kind::clean, {}};
    }
    return {release_decision::kind::reset,
            untracked_ ? std::nullopt : std::optional<std::uint64_t>(owed)};
}

}  // namespace redis_sidecar::bridge
