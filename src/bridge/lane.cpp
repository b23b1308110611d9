#include "redis_sidecar/bridge/lane.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <utility>

#include "redis_sidecar/log/logger.hpp"
#include "redis_sidecar/upstream/error.hpp"
#include "redis_sidecar/upstream/pool.hpp"

namespace redis_sidecar::bridge {

namespace {

constexpr std::string_view reply_connection_lost =
    "-ERR redis-sidecar: upstream connection lost\r\n";
/// Leases that arrive already broken are swapped for another, at most this many times.
constexpr int max_broken_leases = 3;

}  // namespace

lane::lane(asio::any_io_executor ex, std::shared_ptr<upstream::pool> pool, bridge_stats* stats,
           mux::shared_options options)
    : ex_(std::move(ex)), pool_(std::move(pool)), stats_(stats), core_(options) {
    ++stats_->lanes_open.at(resp3() ? 1 : 0);
    // A RESP3 lane switches its connection first; the reply goes to the lane itself (client 0).
    if (options.resp3 && core_.submit(own_id, hello3) == mux::submit_status::accepted) {
        ++submitted_since_flush_;
    }
}

lane::~lane() {
    if (!broken()) --stats_->lanes_open.at(resp3() ? 1 : 0);
    if (conn_) {
        conn_->set_reader(nullptr);
        pool_->release(std::move(conn_), false);
    }
}

void lane::open() {
    if (acquiring_ || conn_ || broken()) return;
    acquiring_ = true;
    pool_->async_acquire([weak = weak_from_this(), pool = std::weak_ptr(pool_)](
                             std::error_code ec, std::shared_ptr<upstream::connection> c) {
        auto self = weak.lock();
        if (!self) {
            // The lane closed while it waited: the lease goes back (and is counted back).
            if (auto p = pool.lock(); p && c) p->release(std::move(c), !ec);
            return;
        }
        self->acquiring_ = false;
        if (!ec && c->broken()) {
            self->pool_->release(std::move(c), false);
            if (++self->broken_leases_ <= max_broken_leases) {
                self->open();
                return;
            }
            ec = make_error_code(upstream::error::io_error);
        }
        if (self->broken()) {
            if (c) self->pool_->release(std::move(c), !ec);
            return;
        }
        if (ec) {
            if (c) self->pool_->release(std::move(c), false);
            self->fail("-ERR redis-sidecar: upstream unavailable (" +
                       std::string(upstream::label(upstream::classify(ec))) + ")\r\n");
            return;
        }
        self->conn_ = std::move(c);
        self->conn_->set_reader(self.get());
        self->conn_->resume_reading();
        self->schedule_flush();
    });
}

// ---------------------------------------------------------------------------------------------
// Commands

mux::submit_status lane::submit(mux::client_id id, lane_client* client, std::string_view command) {
    // An idle lane checks first whether a failover or its lifetime retired it.
    if (core_.commands_in_flight() == 0) maybe_retire();
    if (broken() || (retiring_ && core_.drained(id))) return mux::submit_status::broken;
    const auto status = core_.submit(id, command);
    if (status == mux::submit_status::accepted) {
        clients_[id] = client;
        ++submitted_since_flush_;
        schedule_flush();
    }
    return status;
}

void lane::wait_for_room(mux::client_id id, lane_client* client) {
    for (const auto& w : waiters_) {
        if (w.first == id) return;
    }
    waiters_.emplace_back(id, client);
}

void lane::forget(mux::client_id id) {
    clients_.erase(id);
    std::erase_if(waiters_, [id](const auto& w) { return w.first == id; });
    if (notifying_ != nullptr) {
        for (auto& w : *notifying_) {
            if (w.first == id) w.second = nullptr;
        }
    }
    backlog_drained(id);  // if it was the one that paused the lane
}

// Everything submitted during this turn of the loop goes out in one write.
void lane::schedule_flush() {
    if (flush_posted_ || writing_ || !conn_) return;
    flush_posted_ = true;
    asio::post(ex_, [weak = weak_from_this()] {
        if (auto self = weak.lock()) {
            self->flush_posted_ = false;
            self->flush();
        }
    });
}

void lane::flush() {
    if (writing_ || !conn_ || broken() || core_.pending_output() == 0) return;
    writing_bytes_ = core_.take_output();
    stats_->lane_batches.observe(submitted_since_flush_);
    submitted_since_flush_ = 0;
    writing_ = true;
    write_watch_.started();
    conn_->async_write(asio::buffer(writing_bytes_),
                       [weak = weak_from_this()](const boost::system::error_code& ec, std::size_t) {
                           auto self = weak.lock();
                           if (!self) return;
                           self->writing_ = false;
                           if (ec) {
                               self->fail(reply_connection_lost);
                               return;
                           }
                           self->writing_bytes_.clear();
                           self->flush();
                       });
}

// ---------------------------------------------------------------------------------------------
// Replies

bool lane::on_upstream_data(upstream::connection&, std::string_view bytes) {
    auto keep = shared_from_this();  // a client's reaction may drop the last other reference
    read_watch_.started();
    pieces_.clear();
    const auto status = core_.feed_upstream(bytes, pieces_);
    bool completed = false;
    bool over_backlog = false;
    // The bulk string still streaming (if any) is the last piece's.
    const bool large_value = core_.mid_reply() && streaming_large_reply();
    for (const auto& p : pieces_) {
        completed = completed || p.replies_completed > 0;
        if (p.client == own_id) {
            own_reply(p.bytes);
            continue;
        }
        const auto it = clients_.find(p.client);
        if (it == clients_.end()) continue;  // the client left: its replies are dropped
        if (it->second->lane_bytes(p.bytes, large_value && &p == &pieces_.back())) {
            over_backlog = true;
            paused_by_ = p.client;
        }
    }
    // Only now: a client drained by this read may have had several pieces in it (its replies
    // around another client's), and each must reach it.
    for (const auto& p : pieces_) {
        if (core_.drained(p.client)) clients_.erase(p.client);
    }
    if (status == mux::feed_status::violation) {
        ++stats_->reply_framing_errors;
        log::warn("a shared upstream connection sent a reply nobody waits for; closing it");
        fail(reply_connection_lost);
        return true;
    }
    if (completed) {
        maybe_retire();
        notify_waiters();
    }
    if (over_backlog && !broken()) {
        paused_ = true;
        return false;
    }
    return true;
}

// The reply to the lane's own HELLO 3. Refused (a server older than Redis 6), the connection
// stays RESP2, and so do the replies its clients get: their own HELLO 3 is refused the same way.
void lane::own_reply(std::string_view bytes) {
    if (own_reply_seen_ || bytes.empty()) return;
    own_reply_seen_ = true;
    if (bytes[0] == '-') {
        log::warn("the upstream refused HELLO 3 on a shared connection; it stays RESP2",
                  {{"reply", bytes.substr(0, std::min<std::size_t>(bytes.find('\r'), 200))}});
    }
}

void lane::backlog_drained(mux::client_id id) {
    if (!paused_ || id != paused_by_ || !conn_ || broken()) return;
    paused_ = false;
    conn_->resume_reading();
}

void lane::on_upstream_error(upstream::connection&, std::error_code ec) {
    log::debug("shared upstream connection lost", {{"reason", ec.message()}});
    fail(reply_connection_lost);
}

void lane::notify_waiters() {
    if (waiters_.empty()) return;
    auto waiting = std::exchange(waiters_, {});
    notifying_ = &waiting;  // a client that leaves meanwhile is struck off (forget)
    for (auto& [id, client] : waiting) {
        if (client == nullptr) continue;
        auto* c = std::exchange(client, nullptr);
        c->lane_room();
    }
    notifying_ = nullptr;
}

// A failover or the connection's lifetime: no new clients; once its commands are answered the
// connection goes back to the pool, which closes it.
void lane::maybe_retire() {
    if (!conn_ || broken()) return;
    if (!retiring_ && !pool_->current(*conn_)) retiring_ = true;
    if (!retiring_ || core_.commands_in_flight() > 0 || writing_) return;
    auto c = std::move(conn_);
    c->set_reader(nullptr);
    pool_->release(std::move(c), !resp3());  // a RESP3 connection is nobody else's
    fail(reply_connection_lost);  // nothing is in flight: nobody gets it; waiters move on
}

// ---------------------------------------------------------------------------------------------
// The end

void lane::fail(std::string_view error) {
    if (broken()) return;
    auto keep = shared_from_this();
    const auto lost = core_.broken();
    --stats_->lanes_open.at(resp3() ? 1 : 0);
    if (conn_) {
        ++stats_->lane_breaks;
        conn_->set_reader(nullptr);
        pool_->release(std::move(conn_), false);
    }
    auto clients = std::exchange(clients_, {});
    for (const auto& l : lost) {
        const auto it = clients.find(l.client);
        if (it != clients.end()) it->second->lane_lost(l.commands, l.partial_reply, error);
    }
    // Clients waiting for room take another lane.
    notify_waiters();
}

void lane::enforce_deadlines(unsigned limit) {
    const bool write_stalled = write_watch_.stalled(writing_, limit);
    const bool mid_reply = conn_ && !paused_ && core_.mid_reply();
    if (read_watch_.stalled(mid_reply, limit) && !write_stalled && !broken()) {
        ++stats_->upstream_read_timeouts;
        log::warn("reply on a shared upstream connection stalled mid-way; closing it");
        fail(reply_connection_lost);
    } else if (write_stalled && !broken()) {
        ++stats_->upstream_write_timeouts;
        log::warn("write to a shared upstream connection timed out; closing it");
        fail(reply_connection_lost);
    }
    if (!broken()) maybe_retire();
}

void lane::close() {
    fail(reply_connection_lost);
}

// ---------------------------------------------------------------------------------------------
// lane_set

lane_set::lane_set(asio::any_io_executor ex, std::shared_ptr<upstream::pool> pool,
                   bridge_stats* stats, std::size_t count, std::size_t max_total)
    : ex_(std::move(ex)),
      pool_(std::move(pool)),
      stats_(stats),
      count_(std::max<std::size_t>(count, 1)),
      max_total_(std::max(max_total, count_)) {}

lane_set::~lane_set() {
    try {
        close_all();
    } catch (const std::exception& e) {  // a destructor must not throw
        log::error("closing the shared connections failed", {{"error", e.what()}});
    }
}

void lane_set::prune() {
    std::erase_if(lanes_, [](const auto& l) { return l->broken(); });
}

std::shared_ptr<lane> lane_set::pick(int protocol) {
    prune();
    const bool resp3 = protocol == 3;
    // Ordered by (streams a large value, commands in flight): a lane in the middle of a large
    // value holds a new command for the rest of it, however few commands it has.
    const auto load = [](const lane& l) {
        return std::pair(l.streaming_large_reply(), l.commands_in_flight());
    };
    std::shared_ptr<lane> best;
    std::size_t usable = 0;
    for (const auto& l : lanes_) {
        if (l->retiring() || l->resp3() != resp3) continue;
        ++usable;
        if (!best || load(*l) < load(*best)) best = l;
    }
    const bool busy = best && (best->streaming_large_reply() || best->commands_in_flight() > 0);
    if (best && (!busy || usable >= count_)) return best;
    if (lanes_.size() >= max_total_) return best;  // null: no room for this protocol's first
    mux::shared_options options;
    options.resp3 = resp3;
    auto l = std::make_shared<lane>(ex_, pool_, stats_, options);
    lanes_.push_back(l);
    l->open();
    return l;
}

std::size_t lane_set::open() const {
    return static_cast<std::size_t>(
        std::count_if(lanes_.begin(), lanes_.end(), [](const auto& l) { return !l->broken(); }));
}

void lane_set::enforce_deadlines(unsigned limit) {
    const auto lanes = lanes_;  // a failing lane calls its clients
    for (const auto& l : lanes) l->enforce_deadlines(limit);
    prune();
}

void lane_set::close_all() {
    const auto lanes = std::exchange(lanes_, {});
    for (const auto& l : lanes) l->close();
}

}  // namespace redis_sidecar::bridge
