#include "redis_sidecar/bridge/session.hpp"

#include <boost/asio/write.hpp>

#include <algorithm>
#include <cctype>

#include "redis_sidecar/bridge/recycler.hpp"
#include "redis_sidecar/bridge/args.hpp"
#include "redis_sidecar/log/logger.hpp"
#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/upstream/error.hpp"

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

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Commands after which the connection carries state a next client must not inherit.
bool changes_connection_state(std::string_view name) {
    static constexpr std::string_view names[] = {
        "multi", "watch", "select", "client", "hello", "readonly", "readwrite",
        "subscribe", "psubscribe", "ssubscribe", "monitor", "reset", "swapdb"};
    return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

// Commands after which replies no longer answer commands one for one (RESP2 pub/sub, MONITOR).
bool leaves_request_reply(std::string_view name) {
    return name == "subscribe" || name == "psubscribe" || name == "ssubscribe" || name == "monitor";
}

// Commands that may leave the upstream connection blocked (possibly forever: BLPOP k 0). Redis
// reads nothing more from a blocked client, RESET included.
bool may_block(std::string_view name) {
    static constexpr std::string_view names[] = {
        "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop",
        "xread", "xreadgroup", "wait", "waitaof"};
    return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

}  // namespace

session::session(local_socket socket, std::shared_ptr<session_context> context)
    : client_(std::move(socket)), ctx_(std::move(context)) {
    authenticated_ = !ctx_->client_password.has_value();
}

session::~session() = default;

void session::start() {
    self_ = shared_from_this();
    boost::system::error_code ignored;
    client_.non_blocking(true, ignored);
    ++ctx_->stats->clients;
    ++ctx_->stats->clients_accepted;
    do_read_client();
}

void session::close() { finish(); }

// ---------------------------------------------------------------------------------------------
// Client → upstream

void session::do_read_client() {
    if (reading_client_ || closing_ || client_eof_ || input_done_) return;
    reading_client_ = true;
    client_.async_wait(local_socket::wait_read,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                           self->on_client_readable(ec);
                       });
}

void session::maybe_read_client() {
    if (!upstream_writing_ && out_.empty() && !acquiring_ &&
        local_slots_ < max_queued_local_replies) {
        do_read_client();
    }
}

// Bytes read from a client are copied out (into the bytes to forward, or a held frame) before
// the next read anywhere on this thread, so all sessions share one read buffer: an idle client
// costs no buffer at all.
void session::on_client_readable(const boost::system::error_code& ec) {
    reading_client_ = false;
    if (closing_) return;
    static thread_local std::array<char, client_buffer_size> buffer;
    boost::system::error_code read_ec = ec;
    std::size_t n = 0;
    if (!read_ec) n = client_.read_some(asio::buffer(buffer), read_ec);
    if (read_ec == asio::error::would_block || read_ec == asio::error::try_again) {
        do_read_client();
        return;
    }
    if (read_ec) {
        client_eof_ = true;
        finish();
        return;
    }
    ctx_->stats->bytes_from_clients += n;
    process_client_bytes(std::string_view(buffer.data(), n));
    flush_to_upstream();
    maybe_read_client();
}

void session::process_client_bytes(std::string_view data) {
    while (!data.empty() && !closing_ && !input_done_) {
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

void session::decide(std::string_view name, bool too_long) {
    if (!too_long && (name == "auth" || name == "quit" || name == "hello")) {
        mode_ = frame_mode::intercept;
        return;
    }
    if (!authenticated_) {
        mode_ = frame_mode::discard;
        discard_reply_ = reply_noauth;
        held_.clear();
        return;
    }
    mode_ = frame_mode::forward;
    out_.append(held_);
    held_.clear();
    mid_frame_ = true;
}

void session::end_frame() {
    const auto& info = commands_.info();
    switch (mode_) {
        case frame_mode::forward:
            mid_frame_ = false;
            on_forwarded_command(info.name_too_long ? std::string_view{} : info.command_name());
            break;
        case frame_mode::intercept:
            ++ctx_->stats->commands_intercepted;
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

void session::on_forwarded_command(std::string_view name) {
    ++ctx_->stats->commands_forwarded;
    if (!untracked_) {
        if (slots_.empty() || !slots_.back().local.empty()) slots_.emplace_back();
        ++slots_.back().upstream_replies;
        ++replies_owed_total_;
        if (may_block(name)) last_blocking_reply_ = replies_owed_total_;
    }
    if (changes_connection_state(name)) dirty_ = true;
    if (leaves_request_reply(name) && !untracked_) {
        // From here on replies are not one per command; forward whatever comes.
        untracked_ = true;
        for (auto& s : slots_) s.upstream_replies = 0;
        std::erase_if(slots_, [](const slot& s) { return s.local.empty(); });
    }
}

void session::answer_locally(std::string reply, bool close_after) {
    slots_.push_back({0, std::move(reply), close_after});
    ++local_slots_;
    pump();
}

void session::handle_intercepted(std::string_view frame, bool is_inline) {
    const auto args = is_inline ? split_inline(frame) : split_multibulk(frame);
    if (args.empty()) return;
    std::string name = args[0];
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const auto password_ok = [this](const std::string& given) {
        return !ctx_->client_password || ctx_->client_password->reveal() == given;
    };
    if (name == "quit") {
        input_done_ = true;
        answer_locally(std::string(reply_ok), true);
        return;
    }
    if (name == "auth") {
        if (args.size() != 2 && args.size() != 3) {
            answer_locally("-ERR wrong number of arguments for 'auth' command\r\n");
        } else if (password_ok(args.back())) {
            authenticated_ = true;
            answer_locally(std::string(reply_ok));
        } else {
            ++ctx_->stats->auth_failures;
            answer_locally(std::string(reply_wrongpass));
        }
        return;
    }
    // HELLO [protover [AUTH user pass] [SETNAME name]]: AUTH is ours, the rest goes upstream.
    std::vector<std::string_view> forward = {args[0]};
    bool auth_given = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        std::string option = args[i];
        std::transform(option.begin(), option.end(), option.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (option == "auth" && i >= 2) {
            if (i + 2 >= args.size()) {
                answer_locally("-ERR Syntax error in HELLO option 'auth'\r\n");
                return;
            }
            if (!password_ok(args[i + 2])) {
                ++ctx_->stats->auth_failures;
                answer_locally(std::string(reply_wrongpass));
                return;
            }
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
    out_.append(resp::format_command(std::span<const std::string_view>(forward)));
    on_forwarded_command("hello");
}

void session::flush_to_upstream() {
    if (out_.empty() || upstream_writing_ || closing_) return;
    if (!up_) {
        acquire_upstream();
        return;
    }
    upstream_writing_ = true;
    out_writing_.swap(out_);
    out_.clear();
    up_->async_write(asio::buffer(out_writing_), [self = shared_from_this()](
                                                     const boost::system::error_code& ec, std::size_t) {
        self->upstream_writing_ = false;
        if (ec) {
            self->upstream_bad_ = true;
            self->finish();
            return;
        }
        self->out_writing_.clear();
        self->flush_to_upstream();
        self->maybe_read_client();
    });
}

void session::acquire_upstream() {
    if (acquiring_) return;
    acquiring_ = true;
    ctx_->pool->async_acquire([self = shared_from_this()](std::error_code ec,
                                                          std::shared_ptr<upstream::connection> c) {
        self->acquiring_ = false;
        if (!ec && c->broken()) ec = make_error_code(upstream::error::io_error);
        if (self->closing_) {
            if (c) self->ctx_->pool->release(std::move(c), !ec);
            return;
        }
        if (ec) {
            ++self->ctx_->stats->upstream_unavailable;
            if (c) self->ctx_->pool->release(std::move(c), false);
            // Nothing was sent upstream: the client gets one error and the connection closes.
            // The error answers the first command that waited for a connection; it and
            // everything after it are dropped (the error would otherwise queue forever behind
            // replies that never come). Local replies owed before it are still delivered.
            self->input_done_ = true;
            self->out_.clear();
            auto first_waiting = std::find_if(self->slots_.begin(), self->slots_.end(),
                                              [](const slot& s) { return s.local.empty(); });
            self->local_slots_ -= static_cast<std::size_t>(
                std::count_if(first_waiting, self->slots_.end(),
                              [](const slot& s) { return !s.local.empty(); }));
            self->slots_.erase(first_waiting, self->slots_.end());
            self->answer_locally("-ERR redis-sidecar: upstream unavailable (" +
                                     std::string(upstream::label(upstream::classify(ec))) + ")\r\n",
                                 true);
            return;
        }
        self->up_ = std::move(c);
        self->up_->set_reader(self.get());
        self->up_->resume_reading();
        self->flush_to_upstream();
    });
}

// ---------------------------------------------------------------------------------------------
// Upstream → client

bool session::on_upstream_data(upstream::connection&, std::string_view bytes) {
    pending_upstream_ = bytes;
    upstream_paused_ = true;
    pump();
    return false;
}

void session::on_upstream_error(upstream::connection&, std::error_code ec) {
    // The client cannot know which of its commands ran: close it; it reconnects afresh.
    log::debug("upstream connection lost under a client", {{"reason", ec.message()}});
    upstream_bad_ = true;
    finish();
}

std::size_t session::take_upstream_bytes() {
    std::size_t taken = 0;
    std::string_view rest = pending_upstream_;
    while (!rest.empty()) {
        const auto r = replies_.scan(rest);
        if (r.status == resp::scan_status::error) {
            // Not RESP: nothing can be matched any more. Pass it on and never reuse the line.
            upstream_bad_ = true;
            untracked_ = true;
            return pending_upstream_.size();
        }
        taken += r.consumed;
        rest.remove_prefix(r.consumed);
        if (r.status == resp::scan_status::need_more) {
            at_reply_boundary_ = false;
            break;
        }
        at_reply_boundary_ = true;
        const auto& info = replies_.info();
        if (info.type == '-') {
            if (starts_with(info.head(), "READONLY")) {
                ++ctx_->stats->readonly_replies;
                // A failover demoted the upstream: the pool's idle connections point at it too.
                if (!upstream_bad_) ctx_->pool->note_readonly();
                upstream_bad_ = true;
            } else if (starts_with(info.head(), "LOADING")) {
                ++ctx_->stats->loading_replies;
                upstream_bad_ = true;
            }
        }
        if (!info.is_push && !untracked_ && !slots_.empty() && slots_.front().local.empty()) {
            ++replies_received_total_;
            if (--slots_.front().upstream_replies == 0) slots_.pop_front();
        }
        if (!slots_.empty() && !slots_.front().local.empty()) break;  // a local reply is next
    }
    return taken;
}

void session::pump() {
    if (client_writing_ || finished_) return;
    if (!slots_.empty() && !slots_.front().local.empty() && at_reply_boundary_) {
        auto s = std::move(slots_.front());
        slots_.pop_front();
        --local_slots_;
        client_writing_ = true;
        local_writing_ = std::move(s.local);
        asio::async_write(client_, asio::buffer(local_writing_),
                          [self = shared_from_this(), close_after = s.close_after](
                              const boost::system::error_code& ec, std::size_t n) {
                              self->client_writing_ = false;
                              if (ec || close_after) {
                                  self->finish();
                                  return;
                              }
                              self->ctx_->stats->bytes_to_clients += n;
                              self->pump();
                              self->maybe_read_client();
                          });
        return;
    }
    if (!pending_upstream_.empty()) {
        const auto n = take_upstream_bytes();
        const auto view = pending_upstream_.substr(0, n);
        pending_upstream_.remove_prefix(n);
        if (!view.empty()) {
            client_writing_ = true;
            asio::async_write(client_, asio::buffer(view.data(), view.size()),
                              [self = shared_from_this()](const boost::system::error_code& ec,
                                                          std::size_t written) {
                                  self->client_writing_ = false;
                                  if (ec) {
                                      self->finish();
                                      return;
                                  }
                                  self->ctx_->stats->bytes_to_clients += written;
                                  self->pump();
                              });
            return;
        }
    }
    if (pending_upstream_.empty() && upstream_paused_ && up_ && !closing_) {
        upstream_paused_ = false;
        up_->resume_reading();
    }
}

// ---------------------------------------------------------------------------------------------
// Ending

void session::protocol_error(std::string reply) {
    ++ctx_->stats->protocol_errors;
    log::debug("client sent a malformed command; closing it");
    // Part of a frame may have gone upstream already: that connection is never reused.
    if (mid_frame_ || mode_ == frame_mode::forward) upstream_bad_ = true;
    input_done_ = true;
    mode_ = frame_mode::undecided;
    held_.clear();
    answer_locally(std::move(reply), true);
}

void session::finish() {
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    boost::system::error_code ignored;
    client_.close(ignored);  // no shutdown() first: nothing else holds the descriptor
    --ctx_->stats->clients;
    if (ctx_->on_session_end) ctx_->on_session_end(this);
    recycle();
    // Pending handlers (a client write, an acquire) may still hold the session; they see closing_.
    auto keep_until_return = std::move(self_);
}

void session::recycle() {
    if (!up_) return;
    auto c = std::move(up_);
    c->set_reader(nullptr);
    std::uint64_t owed = 0;
    for (const auto& s : slots_) owed += s.upstream_replies;
    auto& pool = *ctx_->pool;
    // A command that may block is still unanswered: the connection would read RESET only once
    // it is served, maybe never (BLPOP k 0), holding a pool slot until recycle_timeout.
    const bool maybe_blocked = last_blocking_reply_ > replies_received_total_;
    if (upstream_bad_ || c->broken() || mid_frame_ || upstream_writing_ || !out_.empty() ||
        maybe_blocked) {
        ++ctx_->stats->discarded;
        pool.release(std::move(c), false);
        return;
    }
    if (!dirty_ && !untracked_ && owed == 0 && pending_upstream_.empty() && at_reply_boundary_) {
        ++ctx_->stats->recycled_clean;
        pool.release(std::move(c), true);
        return;
    }
    // State left behind (MULTI, SELECT, SUBSCRIBE, a reply in flight): RESET, re-AUTH, re-SELECT,
    // and drain up to RESET's reply before anyone else gets the connection.
    recycle_with_reset(ctx_, std::move(c), replies_, std::string(pending_upstream_));
}

}  // namespace redis_sidecar::bridge
