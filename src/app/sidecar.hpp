#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>

#include "redis_sidecar/bridge/listener.hpp"
#include "redis_sidecar/config/resolver.hpp"
#include "redis_sidecar/upstream/pool.hpp"
#include "secret_watcher.hpp"

namespace redis_sidecar::app {

/// The running sidecar: owns the io_context, the pool, the listeners and the lifecycle
/// starting → ready → draining → stopped. Everything runs on one thread.
class sidecar {
public:
    explicit sidecar(config::resolution resolved, config::inputs inputs);
    ~sidecar();

    /// Binds, starts the pool and runs until shutdown. Returns the exit code.
    int run();

private:
    enum class state { starting, ready, draining, stopped };

    void set_state(state s);
    void on_signal(int sig);
    void begin_drain(const char* why);
    void stop_accepting_and_wait();
    void wait_for_clients();
    void finish();
    void on_pool_change();

    config::resolution resolved_;
    config::inputs inputs_;
    boost::asio::io_context io_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer drain_timer_;
    std::unique_ptr<upstream::tls_client> tls_;
    std::shared_ptr<upstream::pool> pool_;
    bridge::bridge_stats bridge_stats_;
    std::shared_ptr<bridge::session_context> session_context_;
    std::unique_ptr<bridge::listener> listener_;
    std::unique_ptr<secret_watcher> secrets_;
    state state_ = state::starting;
    bool started_ = false;  // the first upstream connection completed TLS + AUTH + PING
    std::chrono::steady_clock::time_point drain_deadline_{};
    int exit_code_ = 0;
};

}  // namespace redis_sidecar::app
