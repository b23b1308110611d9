#include "sidecar.hpp"

#include <sys/resource.h>

#include <csignal>

#include "identity.hpp"
#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/config/values.hpp"
#include "redis_sidecar/log/logger.hpp"

namespace redis_sidecar::app {

namespace {

using namespace std::chrono_literals;

/// How often the drain checks whether the last client has left.
constexpr auto drain_poll_interval = 50ms;

const char* name(int s) {
    switch (s) {
        case 0: return "starting";
        case 1: return "ready";
        case 2: return "draining";
        default: return "stopped";
    }
}

// A sidecar holds two sockets per client: use all the descriptors the pod allows.
void raise_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

}  // namespace

sidecar::sidecar(config::resolution resolved, config::inputs inputs)
    : resolved_(std::move(resolved)),
      inputs_(std::move(inputs)),
      signals_(io_, SIGTERM, SIGINT, SIGHUP),
      drain_timer_(io_) {}

sidecar::~sidecar() = default;

int sidecar::run() {
    std::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    const auto& s = resolved_.values;
    if (s.upstream.tls.enabled) {
        tls_ = std::make_unique<upstream::tls_client>(s.upstream.tls);
        if (!s.upstream.tls.verify) {
            log::warn("TLS certificate verification is OFF (REDIS_TLS_SKIP_VERIFY)");
        }
    }
    auto options = upstream::options_from(s);
    options.client_name = client_name();
    pool_ = std::make_shared<upstream::pool>(io_.get_executor(), s.upstream, tls_.get(), options,
                                             upstream::make_resolver(io_.get_executor(), s.upstream));
    pool_->on_change([this] { on_pool_change(); });

    session_context_ = std::make_shared<bridge::session_context>();
    session_context_->pool = pool_;
    session_context_->stats = &bridge_stats_;
    session_context_->client_password = s.listen.client_password;
    session_context_->upstream = &pool_->upstream();  // follows credential rotation
    session_context_->client_name = options.client_name;
    session_context_->recycle_timeout = s.pool.socket_timeout;
    listener_ = std::make_unique<bridge::listener>(io_.get_executor(), session_context_,
                                                   s.listen.max_clients);
    if (s.listen.tcp) listener_->listen_tcp(*s.listen.tcp);
    if (s.listen.unix_path) listener_->listen_unix(*s.listen.unix_path);

    log::info("redis-sidecar starting",
              {{"upstream", config::join_host_port(s.upstream.host, s.upstream.port)},
               {"tls", s.upstream.tls.enabled ? "on" : "off"},
               {"readiness", s.lifecycle.readiness}});
    pool_->start();
    secrets_ = std::make_unique<secret_watcher>(
        io_, inputs_, resolved_.values, [this](const config::settings& fresh) {
            pool_->update_credentials(fresh.upstream.username, fresh.upstream.password);
            session_context_->client_password = fresh.listen.client_password;
        });
    secrets_->start();
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
        if (!ec) on_signal(sig);
    });
    io_.run();
    return exit_code_;
}

void sidecar::set_state(state next) {
    if (next == state_) return;
    log::info("state changed", {{"from", name(static_cast<int>(state_))},
                                {"to", name(static_cast<int>(next))}});
    state_ = next;
}

void sidecar::on_pool_change() {
    if (!started_ && pool_->stats().ever_connected) {
        started_ = true;
        if (state_ == state::starting) set_state(state::ready);
    }
}

void sidecar::on_signal(int sig) {
    if (sig == SIGHUP) {
        log::info("SIGHUP: re-reading secrets and settings");
        secrets_->trigger();
    } else if (state_ == state::draining || state_ == state::stopped) {
        log::warn("second signal: exiting now", {{"signal", std::to_string(sig)}});
        std::_Exit(exit_code_);
    } else {
        begin_drain(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    signals_.async_wait([this](const boost::system::error_code& ec, int s) {
        if (!ec) on_signal(s);
    });
}

void sidecar::begin_drain(const char* why) {
    set_state(state::draining);
    const auto& lc = resolved_.values.lifecycle;
    log::info("draining", {{"reason", why},
                           {"min_drain", config::format_duration(lc.min_drain)},
                           {"max_drain", config::format_duration(lc.max_drain)}});
    drain_deadline_ = std::chrono::steady_clock::now() + lc.min_drain + lc.max_drain;
    // Keep accepting for min_drain: a terminating app may still open connections.
    drain_timer_.expires_after(lc.min_drain);
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) stop_accepting_and_wait();
    });
}

void sidecar::stop_accepting_and_wait() {
    listener_->stop_accepting();
    wait_for_clients();
}

void sidecar::wait_for_clients() {
    if (listener_->clients() == 0 || std::chrono::steady_clock::now() >= drain_deadline_) {
        if (listener_->clients() > 0) {
            log::warn("drain bound reached; closing remaining clients",
                      {{"clients", std::to_string(listener_->clients())}});
        }
        finish();
        return;
    }
    drain_timer_.expires_after(drain_poll_interval);
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) wait_for_clients();
    });
}

void sidecar::finish() {
    secrets_->stop();
    listener_->close_all();
    pool_->stop();
    set_state(state::stopped);
    signals_.cancel();
    drain_timer_.cancel();
    // Let the closes and releases run, then return from run().
    io_.post([this] { io_.stop(); });
}

}  // namespace redis_sidecar::app
