#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <nlohmann/json.hpp>

#include "cluster_bridge.hpp"
#include "exports.hpp"
#include "iam_auth.hpp"
#include "redis_sidecar/bridge/listener.hpp"
#include "redis_sidecar/config/resolver.hpp"
#include "redis_sidecar/health/probe_state.hpp"
#include "redis_sidecar/http/admin_server.hpp"
#include "redis_sidecar/metrics/registry.hpp"
#include "redis_sidecar/upstream/pool.hpp"
#include "secret_watcher.hpp"

namespace redis_sidecar::app {

/// The running sidecar: owns the io_context, the pool, the listeners, the admin server and the
/// lifecycle starting → ready → draining → stopped. Everything runs on one thread, so probes
/// answer only while the event loop does (that is what /livez measures).
class sidecar {
  public:
    sidecar(config::resolution resolved, config::inputs inputs);
    ~sidecar();

    /// Binds, starts the pool and runs until shutdown. Returns the exit code.
    int run();

  private:
    void on_signal(int sig);
    void begin_drain(const char* why);
    void stop_accepting_and_wait();
    void wait_for_clients();
    void finish();
    void heartbeat();
    health::upstream_view upstream_view() const;
    nlohmann::json status();
    void sample_upstream_info();
    stats_view stats() const;
    iam_counts iam_counts_of() const;
    /// Starts the pools and the cluster bridge (at once, or with the first IAM token).
    void start_upstream();

    config::resolution resolved_;
    config::inputs inputs_;
    // One thread runs everything; only Asio's resolver thread posts completions to it. So the
    // scheduler keeps its lock, the reactor's per-socket I/O locking goes (UNSAFE_IO).
    boost::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    boost::asio::signal_set signals_;
    boost::asio::steady_timer drain_timer_;
    boost::asio::steady_timer heartbeat_timer_;
    health::probe_state probes_;
    std::unique_ptr<upstream::tls_client> tls_;
    std::shared_ptr<upstream::pool> pool_;
    bridge::bridge_stats bridge_stats_;
    std::shared_ptr<bridge::session_context> session_context_;
    std::unique_ptr<bridge::listener> listener_;
    std::unique_ptr<cluster_bridge> cluster_;
    std::unique_ptr<secret_watcher> secrets_;
    std::unique_ptr<iam_auth> iam_;  ///< REDIS_IAM_AUTH only
    bool upstream_started_ = false;
    std::unique_ptr<http::admin_server> admin_;
    std::chrono::steady_clock::time_point drain_deadline_{};
    std::chrono::system_clock::time_point started_at_ = std::chrono::system_clock::now();

    // INFO facts for /status, sampled at most every info_sample_interval.
    nlohmann::json upstream_info_ = nlohmann::json::object();
    std::chrono::steady_clock::time_point info_sampled_{};
    bool info_sampling_ = false;
    int exit_code_ = 0;
};

}  // namespace redis_sidecar::app
