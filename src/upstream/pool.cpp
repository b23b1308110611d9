#include "redis_sidecar/upstream/pool.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/log/logger.hpp"
#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/upstream/error.hpp"

namespace redis_sidecar::upstream {

namespace {

using clock = std::chrono::steady_clock;

/// A hosts file larger than this is not a hosts file.
constexpr std::size_t max_hosts_file_bytes = 64 * 1024;
/// Backoff exponent cap (2^16 * base is far beyond any sane backoff_max).
constexpr unsigned max_backoff_exponent = 16;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

}  // namespace

resolver_fn system_resolver(asio::any_io_executor ex) {
    return [ex](const std::string& host, std::uint16_t port, resolve_handler handler) {
        auto resolver = std::make_shared<tcp::resolver>(ex);
        resolver->async_resolve(
            host, std::to_string(port),
            [resolver, handler = std::move(handler)](const boost::system::error_code& ec,
                                                     const tcp::resolver::results_type& results) {
                std::vector<tcp::endpoint> endpoints;
                for (const auto& r : results) endpoints.push_back(r.endpoint());
                if (!ec && endpoints.empty()) {
                    handler(make_error_code(error::dns_failure), {});
                    return;
                }
                handler(ec ? make_error_code(classify(ec)) : std::error_code{}, std::move(endpoints));
            });
    };
}

resolver_fn hosts_file_resolver(std::string path, resolver_fn fallback) {
    return [path = std::move(path), fallback = std::move(fallback)](
               const std::string& host, std::uint16_t port, resolve_handler handler) {
        std::ifstream file(path);
        std::string text(max_hosts_file_bytes, '\0');
        file.read(text.data(), static_cast<std::streamsize>(text.size()));
        text.resize(static_cast<std::size_t>(file.gcount()));
        std::istringstream lines(text);
        std::vector<tcp::endpoint> endpoints;
        const auto wanted = lower(host);
        for (std::string line; std::getline(lines, line);) {
            line = line.substr(0, line.find('#'));
            std::istringstream words(line);
            std::string address;
            words >> address;
            for (std::string name; words >> name;) {
                if (lower(name) != wanted) continue;
                boost::system::error_code ec;
                auto a = asio::ip::make_address(address, ec);
                if (!ec) endpoints.emplace_back(a, port);
            }
        }
        if (endpoints.empty()) {
            fallback(host, port, std::move(handler));
        } else {
            handler({}, std::move(endpoints));
        }
    };
}

resolver_fn make_resolver(asio::any_io_executor ex, const config::upstream_settings& upstream) {
    auto dns = system_resolver(ex);
    if (upstream.hosts_file.empty()) return dns;
    return hosts_file_resolver(upstream.hosts_file, std::move(dns));
}

pool_options options_from(const config::settings& s) {
    pool_options o;
    o.max_connections = s.pool.max_connections;
    o.min_idle = s.pool.min_idle_connections;
    o.connect_timeout = s.pool.connection_timeout;
    o.command_timeout = s.pool.socket_timeout;
    o.acquire_timeout = s.pool.connection_timeout;
    o.keepalive = s.pool.socket_keepalive;
    o.health_interval = s.pool.health_check_interval;
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
      health_timer_(ex) {
    tokens_ = std::max(1.0, options_.max_connects_per_second);
    tokens_at_ = clock::now();
}

pool::~pool() = default;

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
        asio::post(ex_, [h = std::move(w.handler)] { h(make_error_code(error::shutting_down), nullptr); });
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
        asio::post(ex_, [h = std::move(handler)] { h(make_error_code(error::shutting_down), nullptr); });
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
    if (consecutive_failures_ > 0 && opening_ == 0) {
        asio::post(ex_, [h = std::move(handler), ec = last_failure_] { h(ec, nullptr); });
        maintain();
        return;
    }
    if (waiters_.size() >= options_.max_waiters) {
        ++stats_.acquire_timeouts;
        asio::post(ex_, [h = std::move(handler)] { h(make_error_code(error::pool_timeout), nullptr); });
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
        give(std::move(c));
    }
    update_counts();
    maintain();
}

void pool::give(std::shared_ptr<connection> c) {
    if (c->epoch() != epoch_) {  // opened before a failover: it points at the old primary
        ++stats_.readonly_discards;
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
    auto it = std::find_if(idle_.begin(), idle_.end(), [&c](const auto& p) { return p.get() == &c; });
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
    log::debug("idle upstream connection closed", {{"connection", std::to_string(c.id())},
                                                   {"reason", ec.message()}});
    auto keep = c.shared_from_this();
    remove_idle(c);
    ++stats_.discards;
    update_counts();
    asio::post(ex_, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->maintain();
    });
}

bool pool::take_token() {
    const auto now = clock::now();
    const double rate = std::max(0.001, options_.max_connects_per_second);
    tokens_ = std::min(std::max(1.0, rate),
                       tokens_ + std::chrono::duration<double>(now - tokens_at_).count() * rate);
    tokens_at_ = now;
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
}

void pool::maintain() {
    if (!running_) return;
    const std::size_t available = idle_.size() + checking_ + opening_;
    const std::size_t demand = options_.min_idle + waiters_.size();
    if (available >= demand) return;
    const std::size_t total = idle_.size() + leased_ + checking_ + opening_;
    if (total >= options_.max_connections) return;
    std::size_t want = std::min(demand - available, options_.max_connections - total);
    const auto now = clock::now();
    if (now < next_open_allowed_) {
        schedule_maintain(next_open_allowed_);
        return;
    }
    std::size_t granted = 0;
    while (granted < want && take_token()) ++granted;
    if (granted < want) {
        const double rate = std::max(0.001, options_.max_connects_per_second);
        schedule_maintain(now + std::chrono::duration_cast<clock::duration>(
                                    std::chrono::duration<double>(1.0 / rate)));
    }
    if (granted > 0) open_batch(granted);
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
                          self->on_opened(make_error_code(error::dns_failure), nullptr, started);
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
    in_flight_.push_back(async_open(ex_, tls_, next_connection_id_++, endpoints, o,
               [weak = weak_from_this(), endpoints, with_previous, generation, started,
                epoch = epoch_](std::error_code e, std::shared_ptr<connection> c) {
                   auto self = weak.lock();
                   if (!self) return;
                   std::erase_if(self->in_flight_, [&c](const std::weak_ptr<connection>& w) {
                       const auto p = w.lock();
                       return !p || p == c;
                   });
                   // A Secret updated before the cache: the previous password still works.
                   if (e == make_error_code(error::wrongpass) && !with_previous &&
                       self->previous_ && self->running_) {
                       self->open_one(endpoints, true, started);
                       return;
                   }
                   if (!e) {
                       c->set_auth_generation(generation);
                       c->set_epoch(epoch);
                       if (with_previous) {
                           ++self->stats_.auth_fallbacks;
                           log::warn("the new password was refused and the previous one worked; "
                                     "the cache has not been rotated yet");
                       }
                   }
                   self->on_opened(e, std::move(c), started);
               }));
}

void pool::update_credentials(std::optional<std::string> username,
                              std::optional<config::secret> password) {
    if (username == upstream_.username && password == upstream_.password) return;
    previous_ = upstream_;
    upstream_.username = std::move(username);
    upstream_.password = std::move(password);
    ++auth_generation_;
    ++stats_.credential_rotations;
    log::info("upstream credentials changed; new connections use them, idle ones re-authenticate");
}

void pool::note_readonly() { drop_idle("a client got READONLY: the upstream was demoted"); }

void pool::drop_idle(const char* why) {
    ++epoch_;
    if (idle_.empty()) return;
    log::warn("dropping idle upstream connections", {{"reason", why},
                                                     {"count", std::to_string(idle_.size())}});
    auto idle = std::move(idle_);
    idle_.clear();
    for (auto& c : idle) {
        ++stats_.readonly_discards;
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
    if (changed || consecutive_failures_ == 0) {
        log::warn("upstream connect failed", {{"host", upstream_.host},
                                              {"port", std::to_string(upstream_.port)},
                                              {"error", label(kind)},
                                              {"detail", stats_.last_error_message}});
    }
}

void pool::on_opened(std::error_code ec, std::shared_ptr<connection> c, clock::time_point started) {
    --opening_;
    if (ec) {
        record_failure(ec, {});
        ++consecutive_failures_;
        const auto exp = std::min(consecutive_failures_ - 1, max_backoff_exponent);
        const auto ceiling = std::min<std::chrono::milliseconds>(
            options_.backoff_max, options_.backoff_base * (1LL << exp));
        std::uniform_int_distribution<long long> jitter(0, std::max<long long>(0, ceiling.count()));
        next_open_allowed_ = std::max(next_open_allowed_,
                                      clock::now() + std::chrono::milliseconds(jitter(rng_)));
        // Nothing else can serve the waiters soon: tell them now rather than at their deadline.
        if (opening_ == 0 && idle_.empty()) {
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
    if (consecutive_failures_ > 0 || !stats_.ever_connected) {
        log::info("upstream connected", {{"host", upstream_.host},
                                         {"version", c->info().version},
                                         {"role", c->info().role}});
    }
    consecutive_failures_ = 0;
    next_open_allowed_ = clock::now();
    stats_.ever_connected = true;
    learn_role(c->info().role);
    if (!c->info().version.empty()) stats_.server_version = c->info().version;
    if (!running_) {
        discard(c);
        update_counts();
        return;
    }
    give(std::move(c));
    update_counts();
    maintain();
}

void pool::health_check() {
    if (!running_) return;
    const auto now = clock::now();
    auto idle = std::move(idle_);
    idle_.clear();
    bool role_probe = true;
    for (auto& c : idle) {
        if (c->broken()) continue;
        if (now - c->created() > options_.max_lifetime) {
            discard(c);
            continue;
        }
        // One connection per round also answers HELLO, which carries the server's role; one
        // that authenticated before a rotation re-authenticates instead of a PING.
        const bool reauth = c->auth_generation() != auth_generation_ && upstream_.password;
        const bool hello = !reauth && std::exchange(role_probe, false);
        ++checking_;
        ++stats_.health_checks;
        std::string command;
        if (reauth) {
            command = resp::format_command({"AUTH", upstream_.username.value_or("default"),
                                            upstream_.password->reveal()});
        } else {
            command = hello ? resp::format_command({"HELLO", "2"}) : resp::format_command({"PING"});
        }
        const auto generation = auth_generation_;
        async_command(c, std::move(command), 1, options_.command_timeout,
                      [weak = weak_from_this(), c, hello, reauth, generation](command_result r) {
                          auto self = weak.lock();
                          if (!self) return;
                          --self->checking_;
                          bool ok = !r.ec && r.replies.size() == 1 &&
                                    r.replies[0].type != resp::reply_type::error;
                          if (reauth && !r.ec && !ok) {
                              // Refused: the cache still has the old password, under which this
                              // connection is authenticated. Keep it; try again next round.
                              ok = true;
                          } else if (reauth && ok) {
                              c->set_auth_generation(generation);
                              ++self->stats_.reauths;
                          }
                          std::string role;
                          if (ok && hello) {
                              const auto& e = r.replies[0].elements;
                              for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
                                  if (e[i].str == "role") role = e[i + 1].str;
                              }
                          }
                          if (ok && self->running_) {
                              self->give(c);
                          } else {
                              if (!ok) {
                                  self->record_failure(r.ec ? r.ec
                                                            : make_error_code(classify_reply(r.replies[0].str)),
                                                       {});
                              }
                              self->discard(c);
                          }
                          if (!role.empty()) {
                              self->learn_role(role);
                              // Once a primary, the endpoint is meant to be one: while it
                              // answers as a replica, keep re-resolving (gently: once a round)
                              // until its name points at the new primary.
                              if (self->seen_primary_ && role != "master") {
                                  self->drop_idle("the upstream is a replica, not the primary");
                              }
                          }
                          self->update_counts();
                          self->maintain();
                      });
    }
    update_counts();
    maintain();
    health_timer_.expires_after(options_.health_interval);
    health_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        if (auto self = weak.lock(); self && !ec) self->health_check();
    });
}

void pool::update_counts() {
    stats_.idle = idle_.size();
    stats_.leased = leased_;
    stats_.opening = opening_;
    stats_.waiting = waiters_.size();
    stats_.open = idle_.size() + leased_ + checking_;
    if (on_change_) on_change_();
}

}  // namespace redis_sidecar::upstream
