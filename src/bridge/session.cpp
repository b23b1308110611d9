#include "redis_sidecar/bridge/session.hpp"

#include <boost/asio/write.hpp>

#include <array>
#include <vector>

#include "redis_sidecar/bridge/args.hpp"

#include "redis_sidecar/config/values.hpp"
#include "redis_sidecar/log/logger.hpp"
#include "redis_sidecar/upstream/error.hpp"

namespace redis_sidecar::bridge {

session::session(local_socket socket, std::shared_ptr<session_context> context)
    : client_(std::move(socket)), ctx_(std::move(context)), core_(*ctx_) {}

session::~session() = default;

void session::start() {
    self_ = shared_from_this();
    boost::system::error_code ignored;
    client_.non_blocking(true, ignored);
    ++ctx_->stats->clients;
    ++ctx_->stats->clients_accepted;
    if (ctx_->lanes != nullptr) {
        mode_ = mux_mode::shared;
        mux_id_ = ctx_->lanes->next_id();
    }
    do_read_client();
}

void session::close() {
    finish();
}

// ---------------------------------------------------------------------------------------------
// Client → upstream

void session::do_read_client() {
    if (reading_client_ || finished_ || !core_.accepts_input()) return;
    reading_client_ = true;
    client_.async_wait(local_socket::wait_read,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                           self->on_client_readable(ec);
                       });
}

// One read at a time, and only once the previous bytes went upstream: a client that sends
// faster than the upstream takes is paused, not buffered.
void session::maybe_read_client() {
    if (mode_ == mux_mode::shared) {
        // Complete commands are with the lane; what is left is one arriving.
        if (!waiting_room_ && core_.wants_input() && !client_eof_ &&
            incoming_.size() + pending_upstream_.size() <= max_shared_backlog) {
            do_read_client();
        }
        return;
    }
    if (mode_ == mux_mode::dedicated && !upstream_writing_ && core_.upstream_output().empty() &&
        !acquiring_ && core_.wants_input() && !client_eof_) {
        do_read_client();
    }
}

// Bytes read from a client are copied out (into the bytes to forward, or a held frame) before
// the next read anywhere on this thread, so all sessions share one read buffer: an idle client
// costs no buffer at all.
void session::on_client_readable(const boost::system::error_code& ec) {
    reading_client_ = false;
    if (finished_) return;
    static thread_local std::array<char, client_buffer_size> buffer;
    boost::system::error_code read_ec = ec;
    std::size_t n = 0;
    if (!read_ec) n = client_.read_some(asio::buffer(buffer), read_ec);
    if (read_ec == asio::error::would_block || read_ec == asio::error::try_again) {
        do_read_client();
        return;
    }
    if (read_ec == asio::error::eof && core_.can_drain_after_eof()) {
        // A half-close: the client reads on. Its commands go upstream and their replies to it,
        // then it is closed (pump, once the core is settled).
        client_eof_ = true;
        flush_to_upstream();
        pump();
        return;
    }
    if (read_ec) {
        finish();
        return;
    }
    ctx_->stats->bytes_from_clients += n;
    core_.feed_client(std::string_view(buffer.data(), n));
    pump();  // local replies
    flush_to_upstream();
    maybe_read_client();
}

void session::flush_to_upstream() {
    if (mode_ == mux_mode::shared) {
        submit_shared();
        return;
    }
    if (mode_ == mux_mode::pinning) {
        maybe_finish_pin();
        return;
    }
    auto& out = core_.upstream_output();
    if (out.empty() || upstream_writing_ || finished_) return;
    if (!up_) {
        acquire_upstream();
        return;
    }
    upstream_writing_ = true;
    upstream_watch_.started();
    out_writing_.swap(out);
    out.clear();
    up_->async_write(asio::buffer(out_writing_),
                     [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                         self->upstream_writing_ = false;
                         if (ec) {
                             self->core_.upstream_failed();
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
        if (!ec && c->broken()) {
            // It broke between the pool's handing it over and now (a CLIENT KILL while it sat
            // idle): nothing was sent on it, so another one serves this client as well.
            if (!self->finished_ && self->broken_leases_ < max_broken_leases) {
                ++self->broken_leases_;
                self->ctx_->pool->release(std::move(c), false);
                self->acquire_upstream();
                return;
            }
            ec = make_error_code(upstream::error::io_error);
        }
        if (self->finished_) {
            if (c) self->ctx_->pool->release(std::move(c), !ec);
            return;
        }
        if (ec) {
            if (c) self->ctx_->pool->release(std::move(c), false);
            self->core_.upstream_unavailable("-ERR redis-sidecar: upstream unavailable (" +
                                             std::string(upstream::label(upstream::classify(ec))) +
                                             ")\r\n");
            self->pump();
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
    upstream_read_watch_.started();
    if (hidden_reply_ && !skip_hidden_reply(bytes)) return !finished_;
    pending_upstream_ = bytes;
    upstream_paused_ = true;
    pump();
    return false;
}

// The reply to the sidecar's HELLO 3 (maybe_finish_pin) is cut off the front of `bytes`.
// False while it is still arriving (or the bytes held nothing else).
bool session::skip_hidden_reply(std::string_view& bytes) {
    const auto r = hidden_scan_.scan(bytes);
    if (r.status == resp::scan_status::error) {
        ++ctx_->stats->reply_framing_errors;
        log::warn("the upstream's reply to HELLO 3 is not RESP; closing the client");
        core_.upstream_failed();
        finish();
        return false;
    }
    if (r.status == resp::scan_status::need_more) return false;
    hidden_reply_ = false;
    if (hidden_scan_.info().type == '-') {
        log::warn("the upstream refused HELLO 3 on a client's connection; it stays RESP2");
    }
    bytes.remove_prefix(r.consumed);
    return !bytes.empty();
}

void session::on_upstream_error(upstream::connection&, std::error_code ec) {
    // The client cannot know which of its commands ran: close it; it reconnects afresh.
    log::debug("upstream connection lost under a client", {{"reason", ec.message()}});
    core_.upstream_failed();
    finish();
}

// Performs the core's writes for the client, one at a time; then reads the upstream again.
void session::pump() {
    if (client_writing_ || finished_) return;
    if (pending_upstream_.empty() && !incoming_.empty()) {
        // The bytes a write viewed in shared_in_ are written: take the lane's newer ones.
        shared_in_.swap(incoming_);
        incoming_.clear();
        pending_upstream_ = shared_in_;
    }
    if (lane_ && incoming_.size() + pending_upstream_.size() <= lane::max_client_backlog) {
        lane_->backlog_drained(mux_id_);
    }
    auto w = core_.next_write(pending_upstream_);
    if (core_.take_readonly_event()) ctx_->pool->note_readonly();
    switch (w.what) {
        case client_write::kind::close:
            finish();
            return;
        case client_write::kind::local:
            client_writing_ = true;
            client_watch_.started();
            local_writing_ = std::move(w.local);
            asio::async_write(client_, asio::buffer(local_writing_),
                              [self = shared_from_this(), close_after = w.close_after](
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
        case client_write::kind::upstream:
            client_writing_ = true;
            client_watch_.started();
            asio::async_write(client_, asio::buffer(w.bytes.data(), w.bytes.size()),
                              [self = shared_from_this()](const boost::system::error_code& ec,
                                                          std::size_t written) {
                                  self->client_writing_ = false;
                                  if (ec) {
                                      self->finish();
                                      return;
                                  }
                                  self->ctx_->stats->bytes_to_clients += written;
                                  self->pump();
                                  if (self->mode_ == mux_mode::shared) self->maybe_read_client();
                              });
            return;
        case client_write::kind::none:
            break;
    }
    if (client_eof_ && core_.settled() && core_.upstream_output().empty() && !upstream_writing_) {
        finish();  // a half-closed client got every reply it was owed
        return;
    }
    if (mode_ == mux_mode::pinning) maybe_finish_pin();
    if (pending_upstream_.empty() && upstream_paused_ && up_) {
        upstream_paused_ = false;
        up_->resume_reading();
    }
}

// ---------------------------------------------------------------------------------------------
// Ending

bool session::enforce_write_deadline(unsigned limit) {
    if (finished_) return false;
    const bool client_stuck = client_watch_.stalled(client_writing_, limit);
    const bool upstream_stuck = upstream_watch_.stalled(upstream_writing_, limit);
    // A reply begun and not finished while the sidecar is reading the upstream (not paused
    // behind a slow client): a server writes a reply whole, so a stall there is the network
    // (a half-dead path, a proxy that stopped forwarding). Waiting for a reply to begin is not
    // timed: a slow script or a blocking command may legitimately take longer.
    const bool mid_reply = up_ && !upstream_paused_ && !client_writing_ &&
                           pending_upstream_.empty() && !core_.at_reply_boundary();
    if (!client_stuck && !upstream_stuck && upstream_read_watch_.stalled(mid_reply, limit)) {
        ++ctx_->stats->upstream_read_timeouts;
        log::warn("upstream reply stalled mid-way; closing the client",
                  {{"timeout", config::format_duration(ctx_->write_timeout)}});
        core_.upstream_failed();
        finish();
        return true;
    }
    if (!client_stuck && !upstream_stuck) return false;
    const char* peer = client_stuck ? "client" : "upstream";
    ++(client_stuck ? ctx_->stats->client_write_timeouts : ctx_->stats->upstream_write_timeouts);
    log::warn("write timed out; closing the client",
              {{"peer", peer}, {"timeout", config::format_duration(ctx_->write_timeout)}});
    // Half-written: neither side's stream can be trusted. upstream_failed() makes the core
    // discard the connection; a stuck client write leaves replies owed, which does too.
    core_.upstream_failed();
    if (client_stuck) {
        // A reset, not a FIN: the kernel would otherwise go on trickling the queued replies
        // (up to the socket's send buffer, megabytes) into a client that does not read.
        boost::system::error_code ignored;
        client_.set_option(asio::socket_base::linger(true, 0), ignored);
    }
    finish();
    return true;
}

void session::finish() {
    if (finished_) return;
    finished_ = true;
    boost::system::error_code ignored;
    client_.close(ignored);  // no shutdown() first: nothing else holds the descriptor
    --ctx_->stats->clients;
    if (ctx_->on_session_end) ctx_->on_session_end(this);
    if (lane_) {
        lane_->forget(mux_id_);  // its replies still in flight are dropped
        lane_.reset();
    }
    recycle();
    // Pending handlers (a client write, an acquire) may still hold the session; they see
    // finished_.
    auto keep_until_return = std::move(self_);
}

void session::recycle() {
    if (!up_) return;
    auto c = std::move(up_);
    c->set_reader(nullptr);
    if (hidden_reply_) {  // the recycler could not tell that reply from the client's
        ++ctx_->stats->discarded;
        ctx_->pool->release(std::move(c), false);
        return;
    }
    const auto d = core_.release(upstream_writing_, !pending_upstream_.empty(), c->broken(),
                                 c->info().client_id);
    auto& pool = *ctx_->pool;
    switch (d.what) {
        case release_decision::kind::discard:
            ++ctx_->stats->discarded;
            pool.release(std::move(c), false);
            return;
        case release_decision::kind::clean:
            ++ctx_->stats->recycled_clean;
            pool.release(std::move(c), true);
            return;
        case release_decision::kind::reset:
            // State left behind (MULTI, SELECT, SUBSCRIBE, replies in flight): RESET, re-AUTH,
            // re-SELECT, and drain up to RESET's reply before anyone else gets the connection.
            pool.release_with_reset(std::move(c), core_.reply_scanner(),
                                    std::string(pending_upstream_), d.owed);
            return;
    }
}

}  // namespace redis_sidecar::bridge

namespace redis_sidecar::bridge {

// ---------------------------------------------------------------------------------------------
// Shared mode

// Cuts the bytes the core forwards into whole commands and hands the shareable ones to a lane;
// the first one that needs a connection of its own stays, with everything after it, for the
// dedicated connection (pinning). A command still arriving stays until it is whole.
void session::submit_shared() {
    if (finished_ || waiting_room_) return;
    auto& out = core_.upstream_output();
    std::size_t start = 0;  // the first byte not yet submitted
    while (mode_ == mux_mode::shared && scan_pos_ < out.size()) {
        const auto r = mux_scan_.scan(std::string_view(out).substr(scan_pos_));
        scan_pos_ += r.consumed;
        if (r.status == resp::scan_status::error) {
            pin(static_cast<std::size_t>(mux::pin_reason::unknown));  // the core framed it
            break;
        }
        if (r.status != resp::scan_status::frame_done) {
            if (scan_pos_ - start > max_shared_command) pin(bridge_stats::pin_large_command);
            break;
        }
        const std::string_view command(out.data() + start, scan_pos_ - start);
        const auto c = classify_command(command);
        if (!c.shareable()) {
            pin(static_cast<std::size_t>(c.reason));
            break;
        }
        const auto outcome = submit_one(command, c.protocol != 0 ? c.protocol : mux_protocol_);
        if (outcome == submitted::wait) {
            scan_pos_ = start;  // scanned again once there is room
            mux_scan_.reset();
            break;
        }
        if (outcome == submitted::pin || outcome == submitted::no_lane) {
            // no_lane: every lane the sidecar may open speaks the other protocol.
            pin(static_cast<std::size_t>(outcome == submitted::pin
                                             ? mux::pin_reason::unknown
                                             : mux::pin_reason::connection_state));
            break;
        }
        start = scan_pos_;
    }
    if (start > 0) {
        out.erase(0, start);
        scan_pos_ -= start;
    }
    if (mode_ == mux_mode::pinning) maybe_finish_pin();
}

session::submitted session::submit_one(std::string_view command, int protocol) {
    for (int attempt = 0; attempt < 4; ++attempt) {
        // Between commands a client may take any lane of its protocol; with commands in flight
        // it stays on its lane, so its replies come back in order. A HELLO that switches
        // protocol waits for the replies on the old protocol's lane first.
        const bool switching = lane_ && lane_->resp3() != (protocol == 3);
        if (switching && lane_->in_flight(mux_id_) > 0) {
            waiting_room_ = true;
            lane_->wait_for_room(mux_id_, this);
            return submitted::wait;
        }
        if (!lane_ || lane_->in_flight(mux_id_) == 0) lane_ = ctx_->lanes->pick(protocol);
        if (!lane_) return submitted::no_lane;
        switch (lane_->submit(mux_id_, this, command)) {
            case mux::submit_status::accepted:
                ++ctx_->stats->commands_shared;
                if (protocol != mux_protocol_) switch_in_flight_ = true;
                mux_protocol_ = protocol;
                return submitted::ok;
            case mux::submit_status::full:
                waiting_room_ = true;
                lane_->wait_for_room(mux_id_, this);
                return submitted::wait;
            case mux::submit_status::broken:
                if (lane_->in_flight(mux_id_) > 0) {  // retiring: wait for its replies
                    waiting_room_ = true;
                    lane_->wait_for_room(mux_id_, this);
                    return submitted::wait;
                }
                lane_.reset();
                continue;
            case mux::submit_status::not_one_command:
                return submitted::pin;
        }
    }
    return submitted::pin;
}

mux::classification session::classify_command(std::string_view command) const {
    const auto& info = mux_scan_.info();
    if (info.name_too_long) return mux::classify("");  // no known command: unknown
    const std::string_view name = info.command_name();
    if (!mux::depends_on_arguments(name)) return mux::classify(name);
    const auto args = info.is_inline ? split_inline(command) : split_multibulk(command);
    std::vector<std::string_view> rest;
    rest.reserve(args.empty() ? 0 : args.size() - 1);
    for (std::size_t i = 1; i < args.size(); ++i) rest.emplace_back(args[i]);
    return mux::classify(name, rest);
}

void session::pin(std::size_t reason) {
    mode_ = mux_mode::pinning;
    ++ctx_->stats->pins.at(reason);
}

// The dedicated connection gets the client's bytes once every shared reply has arrived and
// been handed to the core (its replies then follow them in the same stream).
void session::maybe_finish_pin() {
    if (mode_ != mux_mode::pinning || finished_) return;
    if (lane_ && lane_->in_flight(mux_id_) > 0) return;
    if (!incoming_.empty() || !pending_upstream_.empty()) return;
    mode_ = mux_mode::dedicated;
    waiting_room_ = false;
    if (lane_) {
        lane_->forget(mux_id_);
        lane_.reset();
    }
    if (mux_protocol_ == 3) {
        // The client switched to RESP3 on a lane; its connection must speak it too.
        core_.upstream_output().insert(0, lane::hello3);
        hidden_reply_ = true;
    }
    flush_to_upstream();
}

bool session::lane_bytes(std::string_view bytes, bool large_value) {
    // A client that reads large values would hold every command queued behind each of them on
    // its shared connection: its next commands go to a connection of its own.
    if (large_value && mode_ == mux_mode::shared) pin(bridge_stats::pin_large_reply);
    incoming_.append(bytes);
    // Nothing of the client's left in flight: the reply to its last protocol switch is in.
    if (switch_in_flight_ && lane_ && lane_->in_flight(mux_id_) == 0) switch_in_flight_ = false;
    const bool over = incoming_.size() + pending_upstream_.size() > lane::max_client_backlog;
    pump();  // may end the session: nothing after this
    return over;
}

void session::lane_lost(std::size_t commands, bool partial_reply, std::string_view error) {
    if (finished_) return;
    if (partial_reply || switch_in_flight_) {
        // Part of a reply was written: no error can follow it in the same stream. Or a HELLO
        // that switched the client's protocol may not have run, so the protocol it speaks is
        // unknown: closed, as a dedicated connection's client is.
        core_.upstream_failed();
        finish();
        return;
    }
    ctx_->stats->lane_commands_lost += commands;
    for (std::size_t i = 0; i < commands; ++i) incoming_.append(error);
    lane_.reset();
    pump();
}

void session::lane_room() {
    if (finished_) return;
    waiting_room_ = false;
    auto keep = shared_from_this();
    submit_shared();
    maybe_read_client();
}

}  // namespace redis_sidecar::bridge
