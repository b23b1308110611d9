#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "redis_sidecar/bridge/listener.hpp"
#include "redis_sidecar/cluster/port_map.hpp"
#include "redis_sidecar/cluster/rewrite.hpp"
#include "redis_sidecar/cluster/stats.hpp"
#include "redis_sidecar/config/settings.hpp"
#include "redis_sidecar/upstream/pool.hpp"

namespace redis_sidecar::app {

namespace asio = boost::asio;

/// Cluster mode (README "Cluster mode"): reads the upstream's topology (CLUSTER SHARDS, or
/// CLUSTER SLOTS where that is unknown) through the seed pool, gives every node a local port
/// from REDIS_SIDECAR_CLUSTER_PORTS with its own pool (TLS with SNI = the node's host name,
/// same credentials) and listener, and is the address book the bridge rewrites topology
/// replies and MOVED/ASK with. Refreshes on a timer, and soon (at most once a second) after a
/// MOVED or a node's failed connect; a node that leaves the
/// topology stops accepting and is closed once its clients left. With mode "auto" it turns itself
/// off when the upstream is no cluster. Single-threaded (the io_context's).
class cluster_bridge final : public cluster::address_book {
  public:
    /// How often the topology is read when nothing asks for it sooner.
    static constexpr std::chrono::seconds refresh_interval{15};
    /// Refreshes asked for by MOVED or a failing node come at most this often.
    static constexpr std::chrono::milliseconds min_refresh_gap{1000};

    cluster_bridge(asio::any_io_executor ex, const config::settings& s, upstream::tls_client* tls,
                   upstream::pool_options options, std::shared_ptr<upstream::pool> seed,
                   std::shared_ptr<bridge::session_context> seed_context);
    ~cluster_bridge() override;

    /// Reads the topology now and then on the timer.
    void start();
    /// Every node listener stops accepting (drain).
    void stop_accepting();
    /// Closes every client and pool (shutdown).
    void stop();
    std::size_t clients() const;
    /// Every node pool takes these credentials (a rotated Secret, a new IAM token); node pools
    /// opened later take the seed pool's.
    void update_credentials(const std::optional<std::string>& username,
                            const std::optional<config::secret>& password);
    /// Every node port takes the new local client password.
    void update_client_password(const std::optional<config::secret>& password);
    /// Called when a node pool's AUTH was refused (IAM: the token).
    std::function<void()> on_auth_refused;

    /// Cluster mode is on: the upstream is a cluster (or mode "on").
    bool active() const { return active_; }
    /// Known whether cluster mode is on (mode "auto" asked the upstream).
    bool settled() const { return settled_; }
    /// Why not ready, or "" when the topology is known and every slot's primary has a healthy
    /// connection (or cluster mode is off).
    std::string not_ready_reason() const;
    nlohmann::json status() const;
    /// The counters, and every node's pool figures as of now.
    const cluster::cluster_stats& stats() const;
    /// Pool figures summed over the node pools.
    upstream::pool_stats pool_totals() const;

    // cluster::address_book
    std::optional<std::uint16_t> local_port(const cluster::node& n) override;
    const std::string& local_host() const override { return advertised_host_; }
    void redirected() override;

  private:
    struct node_port {
        std::shared_ptr<upstream::pool> pool;
        std::shared_ptr<bridge::session_context> context;
        std::unique_ptr<bridge::listener> listener;
        std::string address;  ///< upstream host:port
    };

    void refresh();
    void schedule(std::chrono::milliseconds after);
    void on_reply(const resp::value& reply, bool shards);
    void open_port(const cluster::mapped_node& m);
    void reap_retired();
    void activate();

    asio::any_io_executor ex_;
    const config::settings& settings_;
    upstream::tls_client* tls_;
    upstream::pool_options options_;
    std::shared_ptr<upstream::pool> seed_;
    std::shared_ptr<bridge::session_context> seed_context_;
    std::string bind_host_;
    std::string advertised_host_;
    cluster::port_map map_;
    std::map<std::uint16_t, node_port> ports_;
    std::vector<node_port> retired_;  // left the topology: closed once their clients left
    std::optional<cluster::topology> topology_;
    asio::steady_timer timer_;
    std::chrono::steady_clock::time_point last_refresh_{};
    bool refreshing_ = false;
    bool use_slots_ = false;  // CLUSTER SHARDS is unknown upstream (before Redis 7)
    bool active_ = false;
    bool settled_ = false;
    bool stopped_ = false;
    std::string last_error_;
    mutable cluster::cluster_stats stats_;  // per_node is refreshed by stats()
};

}  // namespace redis_sidecar::app
