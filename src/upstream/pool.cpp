#include "redis_sidecar/upstream/pool.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <random>

#include "redis_sidecar/log/logger.hpp"
#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/upstream/error.hpp"

#include "recycler.hpp"

namespace redis_sidecar::upstream {

namespace {

using clock = std::chrono::steady_clock;

}  // namespace

pool_options options_from(const config::settings& s) {
    pool_options o;
    o.max_connections = s.pool.max_connections;
    o.min_idle = s.pool.min_idle_connections;
    o.connect_timeout = s.pool.connection_timeout;
    o.command_timeout = s.pool.socket_timeout;
    o.acquire_timeout = s.pool.connection_timeout;
    o.keepalive = s.pool.socket_keepalive;
    o.health_interval = s.pool.health_check_interval;
    o.idle_timeout = s.pool.idle_timeout;
    return o;
}

pool::pool(asio::any_io_executor ex, const config::upstream_settings& upstream, tls_client* tls,
           pool_options options, resolver_fn resolver)
    : ex_(ex),
      upstream_(upstream),
      tls_(tls),
      options_(std::move(options)),
      resolver_(std::move(resolver)),
      maintain_timer_(ex),
      health_timer_(ex),
      pacer_({options_.max_connects_per_second, options_.backoff_base, options_.backoff_max},
             clock::now(), std::random_device{}()) {}

// Idle connections (and opens in flight) call the pool by plain pointer: they must not outlive
// it able to. Normally stop() ran first and this finds nothing.
pool::~pool() {
    if (options_.budget) options_.budget->used -= std::min(budgeted_, options_.budget->used);
    for (auto& c : idle_) {
        c->set_reader(nullptr);
        c->close();
    }
    for (auto& w : in_flight_) {
        if (auto c = w.lock()) c->close();
    }
}

void pool::start() {
    running_ = true;
    maintain();
    health_timer_.expires_after(options_.health_interval);
    health_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        if (auto self = weak.lock(); self && !ec) self->health_check();
    });
}

void pool::stop() {
    if (!running_) return;
    running_ = false;
    maintain_timer_.cancel();
    health_timer_.cancel();
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& w : waiters) {
        w.timer->cancel();
        asio::post(
            ex_, [h = std::move(w.handler)] { h(make_error_code(error::shutting_down), nullptr); });
    }
    auto idle = std::move(idle_);
    idle_.clear();
    for (auto& c : idle) discard(c);
    // Opens in flight end now (their handlers see the error and find the pool stopped): left to
    // run, a TLS handshake pending when the event loop stops keeps its opener and connection
    // alive in a cycle.
    auto in_flight = std::move(in_flight_);
    in_flight_.clear();
    for (auto& w : in_flight) {
        if (auto c = w.lock()) c->close();
    }
    update_counts();
}

void pool::async_acquire(acquire_handler handler) {
    if (!running_) {
        asio::post(ex_,
                   [h = std::move(handler)] { h(make_error_code(error::shutting_down), nullptr); });
        return;
    }
    while (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        if (c->broken()) continue;
        ++leased_;
        c->set_reader(nullptr);
        asio::post(ex_, [h = std::move(handler), c = std::move(c)] { h({}, c); });
        update_counts();
        maintain();
        return;
    }
    // The upstream is failing and nothing is on its way: say so now rather than at the deadline
    // (a cache client would rather fail fast than hang); the pool keeps reconnecting.
    if (pacer_.failing() && opening_ == 0) {
        asio::post(ex_, [h = std::move(handler), ec = last_failure_] { h(ec, nullptr); });
        maintain();
        return;
    }
    if (waiters_.size() >= options_.max_waiters) {
        ++stats_.acquire_timeouts;
        asio::post(ex_,
                   [h = std::move(handler)] { h(make_error_code(error::pool_timeout), nullptr); });
        return;
    }
    const auto id = next_waiter_id_++;
    auto timer = std::make_unique<asio::steady_timer>(ex_, options_.acquire_timeout);
    timer->async_wait([weak = weak_from_this(), id](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self || ec) return;
        auto it = std::find_if(self->waiters_.begin(), self->waiters_.end(),
                               [id](const waiter& w) { return w.id == id; });
        if (it == self->waiters_.end()) return;
        auto h = std::move(it->handler);
        self->waiters_.erase(it);
        ++self->stats_.acquire_timeouts;
        self->update_counts();
        h(make_error_code(error::pool_timeout), nullptr);
    });
    waiters_.push_back({std::move(handler), std::move(timer), id});
    update_counts();
    maintain();
}

void pool::release(std::shared_ptr<connection> c, bool reusable) {
    --leased_;
    const bool too_old = clock::now() - c->created() > options_.max_lifetime;
    if (!running_ || !reusable || c->broken() || too_old || c->epoch() != epoch_) {
        discard(c);
    } else {
        ++stats_.reuses;
        c->set_idle_since(clock::now());  // unused from now (a health round does not count)
        give(std::move(c));
    }
    update_counts();
    maintain();
}

void pool::release_with_reset(std::shared_ptr<connection> c, const resp::scanner& replies,
                              std::string leftover, std::optional<std::uint64_t> owed) {
    reset_connection(std::move(c), replies, std::move(leftover), owed, reauth(),
                     options_.command_timeout,
                     [weak = weak_from_this()](std::shared_ptr<connection> c, reset_result result) {
                         auto self = weak.lock();
                         if (!self) {
                             c->close();
                             return;
                         }
                         const bool ok = !result.ec;
                         if (ok) {
                             ++self->stats_.resets;
                         } else {
                             ++self->stats_.reset_failures;
                             if (result.expected) {
                                 log::debug("closing an upstream connection instead of reusing it",
                                            {{"reason", result.why}});
                             } else {
                                 self->record_command_failure("RESET", result.ec, result.why);
                             }
                         }
                         self->release(std::move(c), ok);
                     });
}

handshake pool::reauth() const {
    return make_handshake(upstream_, options_.client_name, {.hello = true, .ping = false});
}

void pool::give(std::shared_ptr<connection> c) {
    if (c->epoch() != epoch_) {  // opened before a failover: it points at the old primary
        ++stats_.failover_discards;
        discard(c);
        maintain();
        return;
    }
    while (!waiters_.empty()) {
        auto w = std::move(waiters_.front());
        waiters_.pop_front();
        w.timer->cancel();
        ++leased_;
        c->set_reader(nullptr);
        asio::post(ex_, [h = std::move(w.handler), c = std::move(c)] { h({}, c); });
        update_counts();
        return;
    }
    make_idle(std::move(c));
}

void pool::make_idle(std::shared_ptr<connection> c) {
    c->set_reader(this);
    c->resume_reading();
    idle_.push_back(std::move(c));
    update_counts();
}

void pool::discard(const std::shared_ptr<connection>& c) {
    c->set_reader(nullptr);
    if (!c->broken()) c->close();
    ++stats_.discards;
}

void pool::remove_idle(connection& c) {
    auto it =
        std::find_if(idle_.begin(), idle_.end(), [&c](const auto& p) { return p.get() == &c; });
    if (it != idle_.end()) idle_.erase(it);
}

bool pool::on_upstream_data(connection& c, std::string_view) {
    // An idle connection has nothing to say; if it does, its protocol state is unknown.
    log::debug("upstream sent data on an idle connection; discarding it",
               {{"connection", std::to_string(c.id())}});
    auto keep = c.shared_from_this();
    remove_idle(c);
    discard(keep);
    update_counts();
    maintain();
    return false;
}

void pool::on_upstream_error(connection& c, std::error_code ec) {
    log::debug("idle upstream connection closed",
               {{"connection", std::to_string(c.id())}, {"reason", ec.message()}});
    auto keep = c.shared_from_this();
    remove_idle(c);
    ++stats_.discards;
    update_counts();
    asio::post(ex_, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->maintain();
    });
}

void pool::maintain() {
    if (!running_) return;
    const std::size_t available = idle_.size() + checking_ + opening_;
    const std::size_t demand = options_.min_idle + waiters_.size();
    if (available >= demand) return;
    const std::size_t total = idle_.size() + leased_ + checking_ + opening_;
    if (total >= options_.max_connections) return;
    std::size_t room = options_.max_connections - total;
    if (const auto& b = options_.budget) {
        room = std::min(room, b->used < b->max ? b->max - b->used : 0);
        if (room == 0) {
            // Another pool holds the rest: look again when one of them may have let some go.
            schedule_maintain(clock::now() + std::chrono::milliseconds(100));
            return;
        }
    }
    const auto g = pacer_.request(std::min(demand - available, room), clock::now());
    if (g.again) schedule_maintain(*g.again);
    if (g.count > 0) open_batch(g.count);
}

void pool::schedule_maintain(clock::time_point when) {
    if (maintain_scheduled_) return;
    maintain_scheduled_ = true;
    maintain_timer_.expires_at(when);
    maintain_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self) return;
        self->maintain_scheduled_ = false;
        if (!ec) self->maintain();
    });
}

void pool::open_batch(std::size_t count) {
    // One DNS lookup, fresh for every batch (ElastiCache repoints its names on failover), shared
    // by all the connections opened together.
    opening_ += count;
    ++stats_.dns_lookups;
    update_counts();
    const auto started = clock::now();
    resolver_(upstream_.host, upstream_.port,
              [weak = weak_from_this(), count, started](std::error_code ec,
                                                        std::vector<tcp::endpoint> endpoints) {
                  auto self = weak.lock();
                  if (!self) return;
                  if (ec) {
                      for (std::size_t i = 0; i < count; ++i) {
                          self->on_opened(make_error_code(error::dns_failure), nullptr, started,
                                          ec.message());
                      }
                      return;
                  }
                  const auto address = endpoints.front().address().to_string();
                  if (!self->last_address_.empty() && address != self->last_address_) {
                      ++self->stats_.dns_changes;
                      log::info("upstream address changed", {{"host", self->upstream_.host},
                                                             {"from", self->last_address_},
                                                             {"to", address}});
                  }
                  self->last_address_ = address;
                  for (std::size_t i = 0; i < count; ++i) self->open_one(endpoints, false, started);
              });
}

void pool::open_one(const std::vector<tcp::endpoint>& endpoints, bool with_previous,
                    clock::time_point started) {
    open_options o;
    o.upstream = with_previous ? &*previous_ : &upstream_;
    o.timeout = options_.connect_timeout;
    o.keepalive = options_.keepalive;
    o.client_name = options_.client_name;
    const auto generation = with_previous ? auth_generation_ - 1 : auth_generation_;
    std::erase_if(in_flight_, [](const std::weak_ptr<connection>& w) { return w.expired(); });
    in_flight_.push_back(async_open(
        ex_, tls_, next_connection_id_++, endpoints, o,
        [weak = weak_from_this(), endpoints, with_previous, generation, started, epoch = epoch_](
            std::error_code e, std::shared_ptr<connection> c, const std::string& detail) {
            auto self = weak.lock();
            if (!self) return;
            std::erase_if(self->in_flight_, [&c](const std::weak_ptr<connection>& w) {
                const auto p = w.lock();
                return !p || p == c;
            });
            // A Secret updated before the cache: the previous password still works.
            if (e == make_error_code(error::wrongpass) && !with_previous && self->previous_ &&
                self->running_) {
                self->open_one(endpoints, true, started);
                return;
            }
            if (!e) {
                c->set_auth_generation(generation);
                c->set_epoch(epoch);
                if (with_previous) {
                    ++self->stats_.auth_fallbacks;
                    log::warn(
                        "the new password was refused and the previous one worked; "
                        "the cache has not been rotated yet");
                }
            }
            self->on_opened(e, std::move(c), started, detail);
        }));
}

void pool::update_credentials(std::optional<std::string> username,
                              std::optional<config::secret> password) {
    if (username == upstream_.username && password == upstream_.password) return;
    if (!running_ && !stats_.ever_connected && opening_ == 0) {
        // Before start (IAM's first token): nothing was authenticated with the old ones, so
        // they are no fallback.
        upstream_.username = std::move(username);
        upstream_.password = std::move(password);
        return;
    }
    previous_ = upstream_;
    upstream_.username = std::move(username);
    upstream_.password = std::move(password);
    ++auth_generation_;
    ++stats_.credential_rotations;
    log::info("upstream credentials changed; new connections use them, idle ones re-authenticate");
}

void pool::note_readonly() {
    drop_idle("a client got READONLY: the upstream was demoted");
}

bool pool::current(const connection& c) const {
    return running_ && !c.broken() && c.epoch() == epoch_ &&
           clock::now() - c.created() <= options_.max_lifetime;
}

void pool::drop_idle(const char* why) {
    ++epoch_;
    if (idle_.empty()) return;
    log::warn("dropping idle upstream connections",
              {{"reason", why}, {"count", std::to_string(idle_.size())}});
    auto idle = std::move(idle_);
    idle_.clear();
    for (auto& c : idle) {
        ++stats_.failover_discards;
        discard(c);
    }
    update_counts();
    maintain();
}

void pool::learn_role(const std::string& role) {
    if (role.empty()) return;
    const bool demoted = stats_.role == "master" && role != "master";
    stats_.role = role;
    if (role == "master") seen_primary_ = true;
    if (demoted) {
        ++stats_.demotions;
        log::warn("upstream is no longer a primary", {{"role", role}});
    }
}

void pool::record_failure(std::error_code ec, const std::string& detail) {
    const auto kind = classify(ec);
    last_failure_ = make_error_code(kind);
    ++stats_.failures[static_cast<std::size_t>(kind)];
    const bool changed = stats_.last_error != label(kind);
    stats_.last_error = std::string(label(kind));
    stats_.last_error_message = detail.empty() ? ec.message() : detail;
    stats_.last_error_time = std::chrono::system_clock::now();
    // Logged when the kind of failure changes, not per attempt: churn is counted, not logged.
    if (changed || pacer_.consecutive_failures() == 0) {
        log::warn("upstream connect failed", {{"host", upstream_.host},
                                              {"port", std::to_string(upstream_.port)},
                                              {"error", label(kind)},
                                              {"detail", stats_.last_error_message}});
    }
    if (on_connect_failure_) on_connect_failure_(make_error_code(kind));
}

void pool::record_command_failure(std::string_view command, std::error_code ec,
                                  const std::string& detail) {
    const auto kind = classify(ec);
    ++stats_.command_failures[static_cast<std::size_t>(kind)];
    const auto now = std::chrono::system_clock::now();
    // Logged when the class changes or at most every 10 s: a hostile upstream answering every
    // RESET wrongly is one line per 10 s, counted in the metric.
    const bool log_it =
        stats_.last_error != label(kind) || now - last_command_log_ >= std::chrono::seconds(10);
    stats_.last_error = std::string(label(kind));
    stats_.last_error_message =
        std::string(command) + ": " + (detail.empty() ? ec.message() : detail);
    stats_.last_error_time = now;
    if (log_it) {
        last_command_log_ = now;
        log::warn("upstream command failed; connection closed",
                  {{"command", std::string(command)},
                   {"error", label(kind)},
                   {"detail", stats_.last_error_message}});
    }
}

void pool::on_opened(std::error_code ec, std::shared_ptr<connection> c, clock::time_point started,
                     const std::string& detail) {
    --opening_;
    if (ec) {
        record_failure(ec, detail);
        pacer_.failed(started, clock::now());
        // Nothing else can serve the waiters soon: tell them now rather than at their deadline.
        // Not after the first failed batch: a CLIENT KILL or restart during the handshakes is
        // not an upstream that is down; the waiters wait for the retry (within their bound).
        if (pacer_.failing() && opening_ == 0 && idle_.empty()) {
            auto waiters = std::move(waiters_);
            waiters_.clear();
            for (auto& w : waiters) {
                w.timer->cancel();
                asio::post(ex_, [h = std::move(w.handler), ec] { h(ec, nullptr); });
            }
        }
        update_counts();
        maintain();
        return;
    }
    ++stats_.connects;
    stats_.handshake_latency.observe(clock::now() - started);
    if (pacer_.consecutive_failures() > 0 || !stats_.ever_connected) {
        log::info(
            "upstream connected",
            {{"host", upstream_.host}, {"version", c->info().version}, {"role", c->info().role}});
    }
    pacer_.succeeded(clock::now());
    const bool first = !std::exchange(stats_.ever_connected, true);
    learn_role(c->info().role);
    if (!c->info().version.empty()) stats_.server_version = c->info().version;
    if (!c->info().mode.empty()) stats_.server_mode = c->info().mode;
    if (!running_) {
        discard(c);
        update_counts();
        return;
    }
    c->set_idle_since(clock::now());
    give(std::move(c));
    update_counts();
    if (first && on_first_connect_) std::exchange(on_first_connect_, nullptr)();
    maintain();
}

void pool::health_check() {
    if (!running_) return;
    const auto now = clock::now();
    auto idle = std::move(idle_);
    idle_.clear();
    bool role_probe_left = true;
    // Least recently used first (leases take the back): those beyond min_idle that sat unused
    // past idle_timeout close, so the pool shrinks back after a burst.
    std::size_t surplus = idle.size() > options_.min_idle ? idle.size() - options_.min_idle : 0;
    for (auto& c : idle) {
        if (c->broken()) continue;
        if (now - c->created() > options_.max_lifetime) {
            discard(c);
            continue;
        }
        if (surplus > 0 && options_.idle_timeout.count() > 0 &&
            now - c->idle_since() >= options_.idle_timeout) {
            --surplus;
            ++stats_.idle_closes;
            c->set_reader(nullptr);
            c->close();
            continue;
        }
        check_one(c, probe_for(*c, role_probe_left));
    }
    update_counts();
    maintain();
    health_timer_.expires_after(options_.health_interval);
    health_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        if (auto self = weak.lock(); self && !ec) self->health_check();
    });
}

// One connection per round also answers HELLO, whose reply carries the server's role; one that
// authenticated before a rotation re-authenticates instead (its HELLO … AUTH says the role too).
pool::probe pool::probe_for(const connection& c, bool& role_probe_left) const {
    if (c.auth_generation() != auth_generation_ && upstream_.password) return probe::reauth;
    if (c.info().supports_hello && std::exchange(role_probe_left, false)) return probe::hello;
    return probe::ping;
}

void pool::check_one(const std::shared_ptr<connection>& c, probe how) {
    ++checking_;
    ++stats_.health_checks;
    handshake h;
    switch (how) {
        case probe::reauth:
            h = make_handshake(upstream_, options_.client_name,
                               {.hello = c->info().supports_hello, .ping = false});
            break;
        case probe::hello:
            h = {resp::format_command({"HELLO", "2"}), {"hello"}};
            break;
        case probe::ping:
            h = {resp::format_command({"PING"}), {"ping"}};
            break;
    }
    const auto replies = h.steps.size();
    auto commands = std::move(h.commands);
    async_command(c, std::move(commands), replies, options_.command_timeout,
                  [weak = weak_from_this(), c, how, h = std::move(h),
                   generation = auth_generation_](command_result r) {
                      if (auto self = weak.lock()) self->on_checked(c, how, h, generation, r);
                  });
}

void pool::on_checked(const std::shared_ptr<connection>& c, probe how, const handshake& h,
                      std::uint64_t generation, const command_result& r) {
    --checking_;
    const bool hello = how == probe::hello || (how == probe::reauth && c->info().supports_hello);
    handshake_outcome out;
    if (r.ec) {
        out.ec = r.ec;
    } else {
        out = check_handshake(h, r.replies, hello);
    }
    bool ok = !out.ec;
    if (how == probe::reauth && !r.ec && out.ec &&
        out.ec != make_error_code(error::protocol_error)) {
        // Refused: the cache still has the old password, under which this connection is
        // authenticated. Keep it; try again next round. (A reply that makes no sense is no
        // refusal: that connection goes.)
        ok = true;
    } else if (how == probe::reauth && ok) {
        c->set_auth_generation(generation);
        ++stats_.reauths;
    }
    if (ok && running_) {
        give(c);
    } else {
        if (!ok) record_failure(out.ec, out.detail);
        discard(c);
    }
    if (!out.ec && hello && !out.info.role.empty()) {
        learn_role(out.info.role);
        // Once a primary, the endpoint is meant to be one: while it answers as a replica, keep
        // re-resolving (gently: once a round) until its name points at the new primary.
        if (seen_primary_ && out.info.role != "master") {
            drop_idle("the upstream is a replica, not the primary");
        }
    }
    update_counts();
    maintain();
}

void pool::update_counts() {
    stats_.idle = idle_.size();
    stats_.leased = leased_;
    stats_.opening = opening_;
    stats_.waiting = waiters_.size();
    stats_.open = idle_.size() + leased_ + checking_;
    if (options_.budget) {
        const auto held = stats_.open + opening_;
        options_.budget->used = options_.budget->used + held - budgeted_;
        budgeted_ = held;
    }
}

}  // namespace redis_sidecar::upstream
