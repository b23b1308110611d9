#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "redis_sidecar/metrics/registry.hpp"

namespace redis_sidecar::http {

namespace detail {
struct server_state;
}

/// The families the admin server exports itself, from its own probe counters.
inline constexpr metrics::family probe_status{"redis_sidecar_probe_status",
                                              metrics::metric_type::gauge,
                                              "Current probe answer: 1 for 200, 0 for 503.",
                                              {"probe"}};
inline constexpr metrics::family probe_requests{
    "redis_sidecar_probe_requests_total",
    metrics::metric_type::counter,
    "Probe requests served, by probe and HTTP status code.",
    {"probe", "code"}};
inline constexpr std::array<const metrics::family*, 2> probe_families = {&probe_status,
                                                                         &probe_requests};

/// What the admin server asks the app. Every function runs on the server's executor, during a
/// request; an empty function means "false" for the probes, `{}` for the JSON routes, no app
/// metrics, and 501 for /quitquitquit. A function that throws gets a 500 (never a crash).
struct sources {
    /// /livez: the process and its event loop answer (health::probe_state::live(now)).
    std::function<bool()> live;
    /// /startupz: settings valid and the first upstream connection done.
    std::function<bool()> started;
    /// /readyz: started, not draining, and the readiness policy holds.
    std::function<bool()> ready;
    /// Why /readyz is 503, for its body ("draining", "no healthy upstream connection").
    /// Optional; without it the body is just "not ready".
    std::function<std::string()> not_ready_reason;
    /// /status body.
    std::function<nlohmann::json()> status;
    /// /metrics: the app sets its values (pool, bridge, state, build info) into the registry;
    /// the server adds redis_sidecar_probe_status and redis_sidecar_probe_requests_total and
    /// renders it.
    std::function<void(metrics::registry&)> metrics;
    /// Every family /metrics may hold (the app's and probe_families); empty: probe_families.
    std::span<const metrics::family* const> metric_families;
    /// /configz body (the `config` subcommand's JSON, secrets redacted). Served only to a
    /// loopback peer (src/http/routes.hpp's refusal()); others get 403 and this is not called.
    std::function<nlohmann::json()> configz;
    /// POST /quitquitquit: begin graceful shutdown. Called after the 200 has been written. Only
    /// a loopback peer may ask; others get 403 and this is not called.
    std::function<void()> quit;
};

/// Bounds on the server's resources; the defaults suit production, tests shrink them.
struct server_limits {
    /// Default for `timeout`.
    static constexpr std::chrono::milliseconds default_timeout{5000};
    /// Default for `header_limit`: 8 KiB.
    static constexpr std::size_t default_header_limit = 8 * 1024;
    /// Default for `body_limit`: 4 KiB (probes carry no body).
    static constexpr std::size_t default_body_limit = 4 * 1024;
    /// Default for `max_connections`.
    static constexpr std::size_t default_max_connections = 64;

    /// Bound on reading one whole request (headers and body) and on writing one response; a
    /// client that is slower is disconnected. Also bounds an idle keep-alive connection.
    std::chrono::milliseconds timeout = default_timeout;
    /// Request line plus headers, bytes; more gets 431 and the connection closed.
    std::size_t header_limit = default_header_limit;
    /// Request body, bytes; more gets 413 and the connection closed.
    std::size_t body_limit = default_body_limit;
    /// Connections served at once; further ones are accepted and closed at once.
    std::size_t max_connections = default_max_connections;
};

/// Counts of probe requests, by probe and status code (exported as
/// redis_sidecar_probe_requests_total).
struct probe_counts {
    std::uint64_t livez_ok = 0, livez_fail = 0;
    std::uint64_t startupz_ok = 0, startupz_fail = 0;
    std::uint64_t readyz_ok = 0, readyz_fail = 0;
};

/// Counts of requests refused with 403 because the peer was not loopback, by path (the app
/// exports them as redis_sidecar_admin_refused_total{path}).
struct refused_counts {
    std::uint64_t configz = 0;       ///< path="/configz"
    std::uint64_t quitquitquit = 0;  ///< path="/quitquitquit"
};

/// The admin HTTP server (Boost.Beast): /livez /startupz /readyz /status /metrics /configz and
/// POST /quitquitquit. It listens where it is told (the pod's 0.0.0.0:9090 by default, for the
/// kubelet), so /configz and /quitquitquit answer only peers on loopback (127.0.0.0/8, ::1,
/// ::ffff:127.0.0.0/104), that is, the pod's own containers; anyone else gets 403, counted and
/// logged. Everything it does runs on one strand of the given executor; the sources are called
/// there.
///
/// Lifetime: the server owns its state through shared pointers held by pending operations, so
/// it may be destroyed (after stop()) while handlers are still queued.
class admin_server {
  public:
    /// `listen` is "host:port" (REDIS_SIDECAR_HTTP_ADDR; port 0 picks a free port).
    admin_server(boost::asio::any_io_executor ex, std::string listen, sources src,
                 server_limits limits = {});
    ~admin_server();

    admin_server(const admin_server&) = delete;
    admin_server& operator=(const admin_server&) = delete;

    /// Resolves and binds the address and starts accepting. Throws std::runtime_error naming
    /// REDIS_SIDECAR_HTTP_ADDR and the address when it cannot listen. Call once, before the
    /// executor runs the server's handlers or on it.
    void start();

    /// Stops accepting and closes every connection. Idempotent; callable from any thread (the
    /// work is dispatched onto the server's strand).
    void stop();

    /// The bound port (after start()).
    std::uint16_t port() const;

    /// Probe requests served so far. Call on the server's strand (or after the loop stopped).
    probe_counts probe_requests() const;

    /// Requests refused so far because the peer was not loopback. Any thread (atomic counters).
    refused_counts refused_requests() const;

  private:
    std::shared_ptr<detail::server_state> state_;
};

}  // namespace redis_sidecar::http
