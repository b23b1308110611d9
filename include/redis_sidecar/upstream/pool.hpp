#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "redis_sidecar/config/settings.hpp"
#include "redis_sidecar/resp/scanner.hpp"
#include "redis_sidecar/upstream/connection.hpp"
#include "redis_sidecar/upstream/pacing.hpp"
#include "redis_sidecar/upstream/resolve.hpp"
#include "redis_sidecar/upstream/stats.hpp"

namespace redis_sidecar::upstream {

/// A bound on the connections several pools hold together (cluster mode: REDIS_MAX_CONNECTIONS
/// over the seed's pool and every node's). Each pool adds what it holds (open and opening) and
/// opens no connection that would take the sum past `max`. Single-threaded, like the pools.
struct connection_budget {
    std::size_t max = 0;
    std::size_t used = 0;
};

/// The pool's tunables (see config::pool_settings for the user-facing ones).
struct pool_options {
    std::size_t max_connections = 128;
    std::size_t min_idle = 2;
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds command_timeout{5000};   ///< health PINGs and the like
    std::chrono::milliseconds acquire_timeout{5000};   ///< a waiter gets pool_timeout after this
    std::chrono::milliseconds health_interval{10000};  ///< PING idle connections this often
    std::chrono::milliseconds max_lifetime{std::chrono::hours(1)};  ///< then replaced
    /// Idle connections above min_idle close after this long unused (0: never); checked at
    /// each health round, so they close within idle_timeout + health_interval.
    std::chrono::milliseconds idle_timeout{60000};
    std::chrono::milliseconds backoff_base{100};   ///< reconnect backoff: full jitter in
    std::chrono::milliseconds backoff_max{10000};  ///< [0, min(max, base * 2^failures)]
    double max_connects_per_second = 50;           ///< new connections, at most
    std::size_t max_waiters = 10000;               ///< queued acquirers, at most
    bool keepalive = true;
    std::string client_name = "redis-sidecar";
    /// Shared with other pools (cluster mode); null: max_connections is the only bound.
    std::shared_ptr<connection_budget> budget;
};

/// Builds pool_options from the resolved settings.
pool_options options_from(const config::settings& s);

/// A lease: the connection plus the promise to give it back.
using acquire_handler = std::function<void(std::error_code, std::shared_ptr<connection>)>;

/// Keeps warm, authenticated connections to one upstream. Single-threaded: every call and every
/// handler runs on the pool's executor.
class pool : public std::enable_shared_from_this<pool>, private reader {
  public:
    pool(asio::any_io_executor ex, const config::upstream_settings& upstream, tls_client* tls,
         pool_options options, resolver_fn resolver);
    ~pool() override;

    /// Starts filling up to min_idle and the health timer.
    void start();
    /// Closes every idle connection, fails waiters with shutting_down; leased connections are
    /// closed when released.
    void stop();

    /// Gives an idle connection at once, or queues (bounded count, bounded wait) until one
    /// opens. The handler runs later, never inside this call.
    void async_acquire(acquire_handler handler);

    /// Takes a leased connection back. `reusable` false (the client left it in an unknown state,
    /// or it saw READONLY/LOADING/an I/O error) closes it.
    void release(std::shared_ptr<connection> c, bool reusable);

    /// Takes back a connection its client left with state (MULTI, SELECT, SUBSCRIBE, replies in
    /// flight): RESET, re-authenticate (reauth()), skip the replies the client was still owed
    /// (`owed`, pushes aside; nullopt when it left request/reply: every frame up to the first
    /// "+RESET"), and only then reuse it; anything unexpected, or command_timeout, closes it.
    /// `replies` continues the reply stream where the client's session left it, `leftover`
    /// holds bytes read from the connection but not delivered.
    void release_with_reset(std::shared_ptr<connection> c, const resp::scanner& replies,
                            std::string leftover, std::optional<std::uint64_t> owed);

    /// What makes a connection the sidecar's again after a RESET: HELLO 2 AUTH (current
    /// credentials) SETNAME, and SELECT when db is not 0. Replies: one per step.
    handshake reauth() const;

    /// Secret rotation: new connections use these credentials; one that gets WRONGPASS with
    /// them tries the previous ones once (the Secret was updated before the cache). Idle
    /// connections re-authenticate in place at the next health round; leased ones are left
    /// alone (they stay authenticated). No-op when nothing changed. Before start() they simply
    /// replace the ones the pool was made with (no fallback).
    void update_credentials(std::optional<std::string> username,
                            std::optional<config::secret> password);

    /// The credentials, db and TLS settings connections are opened with now.
    const config::upstream_settings& upstream() const { return upstream_; }

    /// A client saw READONLY: the upstream was demoted (failover). Idle connections point at it
    /// too: drop them and reconnect, which re-resolves DNS.
    void note_readonly();
    /// False once `c` would not be reused (failover dropped its epoch, or past its lifetime):
    /// a connection held for good (a shared lane) retires then.
    bool current(const connection& c) const;

    /// One of the sidecar's own commands on a pooled connection failed ("INFO" for /status;
    /// RESET when a client leaves is recorded by the pool itself): counted by class
    /// (pool_stats::command_failures), logged (at most once per 10 s unless the class changes),
    /// and /status last_error. The caller closes the connection (release(c, false)).
    void record_command_failure(std::string_view command, std::error_code ec,
                                const std::string& detail);

    const pool_stats& stats() const { return stats_; }
    /// At least one healthy connection (idle or leased).
    bool healthy() const { return stats_.open > 0; }
    /// Called once, when the first connection has opened (the sidecar's startup mark).
    void on_first_connect(std::function<void()> f) { on_first_connect_ = std::move(f); }
    /// Called after every failed connect or health check, with its classification (cluster
    /// mode: the topology may have changed; IAM: error::wrongpass means the token was refused).
    void on_connect_failure(std::function<void(std::error_code)> f) {
        on_connect_failure_ = std::move(f);
    }

  private:
    struct waiter {
        acquire_handler handler;
        std::unique_ptr<asio::steady_timer> timer;
        std::uint64_t id;
    };

    bool on_upstream_data(connection& c, std::string_view bytes) override;
    void on_upstream_error(connection& c, std::error_code ec) override;

    void maintain();
    void schedule_maintain(std::chrono::steady_clock::time_point when);
    void open_batch(std::size_t count);
    void open_one(const std::vector<tcp::endpoint>& endpoints, bool with_previous,
                  std::chrono::steady_clock::time_point started);
    void on_opened(std::error_code ec, std::shared_ptr<connection> c,
                   std::chrono::steady_clock::time_point started, const std::string& detail);
    void drop_idle(const char* why);
    void learn_role(const std::string& role);
    void give(std::shared_ptr<connection> c);
    void make_idle(std::shared_ptr<connection> c);
    void discard(const std::shared_ptr<connection>& c);
    void remove_idle(connection& c);
    void health_check();
    /// What a health round sends an idle connection.
    enum class probe { ping, hello, reauth };
    probe probe_for(const connection& c, bool& role_probe_left) const;
    void check_one(const std::shared_ptr<connection>& c, probe how);
    void on_checked(const std::shared_ptr<connection>& c, probe how, const handshake& h,
                    std::uint64_t generation, const command_result& r);
    void update_counts();
    void record_failure(std::error_code ec, const std::string& detail);

    asio::any_io_executor ex_;
    config::upstream_settings upstream_;
    std::optional<config::upstream_settings> previous_;  // before the last rotation
    std::uint64_t auth_generation_ = 1;
    tls_client* tls_;
    pool_options options_;
    resolver_fn resolver_;

    std::deque<std::shared_ptr<connection>> idle_;
    std::size_t leased_ = 0;
    std::size_t checking_ = 0;
    std::size_t opening_ = 0;
    /// Connections being opened, closed by stop() so that no open outlives the pool.
    std::vector<std::weak_ptr<connection>> in_flight_;
    std::deque<waiter> waiters_;
    std::uint64_t next_waiter_id_ = 1;
    std::uint64_t next_connection_id_ = 1;

    asio::steady_timer maintain_timer_;
    bool maintain_scheduled_ = false;
    asio::steady_timer health_timer_;
    connect_pacer pacer_;
    std::error_code last_failure_;
    bool seen_primary_ = false;  // the upstream was a master once: a replica now means failover
    /// Bumped when the upstream was demoted: connections opened before point at the old
    /// primary (also those in a health check or leased at that moment) and are not reused.
    std::uint64_t epoch_ = 0;
    std::string last_address_;
    bool running_ = false;
    std::size_t budgeted_ = 0;  // what this pool has added to options_.budget->used
    pool_stats stats_;
    std::function<void()> on_first_connect_;
    std::function<void(std::error_code)> on_connect_failure_;
    std::chrono::system_clock::time_point last_command_log_{};
};

}  // namespace redis_sidecar::upstream
