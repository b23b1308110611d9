#pragma once

// Every metric the sidecar exports. Their names, types and labels are a public API (dashboards
// and alerts depend on them): add freely, rename or remove only on purpose and say so in
// docs/observability.md, which lists the same families (a test checks the two agree).

#include <array>
#include <cstddef>
#include <span>
#include <string_view>

namespace redis_sidecar::metrics {

/// A Prometheus metric type.
enum class metric_type { counter, gauge, histogram };

/// "counter", "gauge" or "histogram", as in a `# TYPE` line.
std::string_view name(metric_type t);

/// The most labels one family has (histograms add `le` on export, not counted here).
inline constexpr std::size_t max_labels = 2;

/// One metric family: what `# HELP` and `# TYPE` say and which labels every sample carries.
struct family {
    std::string_view name;  ///< full name, "redis_sidecar_" prefix; counters end in "_total"
    metric_type type;       ///< counter, gauge or histogram
    std::string_view help;  ///< one line of help text
    std::array<std::string_view, max_labels> labels{};  ///< label names; unused slots empty

    /// How many label names the family has.
    constexpr std::size_t label_count() const {
        std::size_t n = 0;
        while (n < labels.size() && !labels[n].empty()) ++n;
        return n;
    }
};

// Upstream connection pool (from upstream::pool_stats).

/// Upstream connections open: idle + leased + being health-checked.
inline constexpr family pool_connections_open{
    "redis_sidecar_pool_connections_open", metric_type::gauge,
    "Upstream connections open (idle, leased or being health-checked)."};
/// Upstream connections idle in the pool.
inline constexpr family pool_connections_idle{"redis_sidecar_pool_connections_idle",
                                              metric_type::gauge,
                                              "Upstream connections idle in the pool."};
/// Upstream connections leased to local clients.
inline constexpr family pool_connections_leased{"redis_sidecar_pool_connections_leased",
                                                metric_type::gauge,
                                                "Upstream connections leased to local clients."};
/// Upstream connects in flight.
inline constexpr family pool_connections_opening{
    "redis_sidecar_pool_connections_opening", metric_type::gauge,
    "Upstream connects in flight (DNS, TCP, TLS, AUTH, PING)."};
/// Local clients waiting for an upstream connection.
inline constexpr family pool_waiters{"redis_sidecar_pool_waiters", metric_type::gauge,
                                     "Local clients waiting for an upstream connection."};
/// Successful upstream connects.
inline constexpr family upstream_connects{
    "redis_sidecar_upstream_connects_total", metric_type::counter,
    "Upstream connections opened successfully (TLS, AUTH and PING done)."};
/// Failed upstream connects, by error class (upstream::label(error)).
inline constexpr family upstream_connect_failures{
    "redis_sidecar_upstream_connect_failures_total",
    metric_type::counter,
    "Upstream connection attempts that failed, by error class.",
    {"class"}};
/// Time from connect start to PONG.
inline constexpr family upstream_handshake_duration{
    "redis_sidecar_upstream_handshake_duration_seconds", metric_type::histogram,
    "Time to open an upstream connection: DNS, TCP, TLS, HELLO/AUTH and PING."};
/// Pooled connections closed as unusable or too old.
inline constexpr family pool_discards{
    "redis_sidecar_pool_discards_total", metric_type::counter,
    "Pooled upstream connections closed as unusable or past their maximum lifetime."};
/// Connections that went back to idle after a lease.
inline constexpr family pool_reuses{
    "redis_sidecar_pool_reuses_total", metric_type::counter,
    "Upstream connections returned to the idle pool after a lease."};
/// Health-check PINGs sent to idle connections.
inline constexpr family pool_health_checks{"redis_sidecar_pool_health_checks_total",
                                           metric_type::counter,
                                           "Health-check PINGs sent to idle upstream connections."};
/// Acquirers that gave up waiting.
inline constexpr family pool_acquire_timeouts{
    "redis_sidecar_pool_acquire_timeouts_total", metric_type::counter,
    "Local clients that waited for an upstream connection longer than the bound."};
/// DNS lookups of the upstream host.
inline constexpr family dns_lookups{"redis_sidecar_dns_lookups_total", metric_type::counter,
                                    "DNS lookups of the upstream host."};
/// DNS answers that differed from the previous one (failover, node replacement).
inline constexpr family dns_changes{
    "redis_sidecar_dns_changes_total", metric_type::counter,
    "DNS lookups whose addresses differed from the previous lookup (failover)."};
/// 1 when at least one healthy upstream connection exists.
inline constexpr family upstream_up{"redis_sidecar_upstream_up", metric_type::gauge,
                                    "1 when at least one healthy upstream connection is open."};
/// The upstream's role: 1 on the current role's sample ("master", "replica", "unknown").
inline constexpr family upstream_role{"redis_sidecar_upstream_role",
                                      metric_type::gauge,
                                      "The upstream's replication role (1 for the current one).",
                                      {"role"}};

// Local clients (from bridge::bridge_stats).

/// Local clients connected now.
inline constexpr family clients{"redis_sidecar_clients", metric_type::gauge,
                                "Local clients connected."};
/// Local clients accepted.
inline constexpr family clients_accepted{"redis_sidecar_clients_accepted_total",
                                         metric_type::counter,
                                         "Local client connections accepted."};
/// Local clients refused over the max-clients bound.
inline constexpr family clients_rejected{"redis_sidecar_clients_rejected_total",
                                         metric_type::counter,
                                         "Local client connections refused over the bound."};
/// Local clients closed because no upstream connection came.
inline constexpr family clients_upstream_unavailable{
    "redis_sidecar_clients_upstream_unavailable_total", metric_type::counter,
    "Local clients closed because no upstream connection became available."};
/// Local AUTH attempts with a wrong password.
inline constexpr family client_auth_failures{"redis_sidecar_client_auth_failures_total",
                                             metric_type::counter,
                                             "Local clients that sent a wrong password."};
/// Local AUTH / HELLO AUTH naming another user than the sidecar's
/// (REDIS_SIDECAR_CLIENT_AUTH=local).
inline constexpr family client_auth_other_user{
    "redis_sidecar_client_auth_other_user_total", metric_type::counter,
    "Local AUTHs naming another user than the sidecar's; their commands run as the sidecar's "
    "user."};
/// Client RESETs: the connection was reset and re-authenticated as the sidecar's user.
inline constexpr family client_resets{
    "redis_sidecar_client_resets_total", metric_type::counter,
    "Client RESETs (the upstream connection reset and re-authenticated as the sidecar's user)."};
/// Clients closed because an upstream reply could not be framed.
inline constexpr family reply_framing_errors{
    "redis_sidecar_reply_framing_errors_total", metric_type::counter,
    "Local clients closed because an upstream reply was not valid RESP."};
/// Clients closed by the write deadline.
inline constexpr family write_timeouts{
    "redis_sidecar_write_timeouts_total",
    metric_type::counter,
    "Local clients closed because a write to them (peer=client) or to their upstream "
    "connection (peer=upstream) took longer than the socket timeout.",
    {"peer"}};
/// Complete commands sent upstream.
inline constexpr family commands_forwarded{"redis_sidecar_commands_forwarded_total",
                                           metric_type::counter,
                                           "Client commands forwarded to the upstream."};
/// Commands answered by the sidecar itself (AUTH, HELLO … AUTH, QUIT).
inline constexpr family commands_intercepted{
    "redis_sidecar_commands_intercepted_total", metric_type::counter,
    "Client commands answered by the sidecar itself (AUTH, HELLO with AUTH, QUIT)."};
/// Bytes read from local clients.
inline constexpr family client_received_bytes{"redis_sidecar_client_received_bytes_total",
                                              metric_type::counter,
                                              "Bytes received from local clients."};
/// Bytes written to local clients.
inline constexpr family client_sent_bytes{"redis_sidecar_client_sent_bytes_total",
                                          metric_type::counter, "Bytes sent to local clients."};
/// Upstream connections given back to the pool after a client, by kind ("clean", "reset").
inline constexpr family upstream_recycles{
    "redis_sidecar_upstream_recycles_total",
    metric_type::counter,
    "Upstream connections returned to the pool after a client left, by kind (clean, reset).",
    {"kind"}};
/// Upstream connections closed after a client instead of being returned.
inline constexpr family upstream_recycle_discards{
    "redis_sidecar_upstream_recycle_discards_total", metric_type::counter,
    "Upstream connections closed after a client left instead of being returned."};
/// Upstream connections closed after their client learned the connection's identity.
inline constexpr family upstream_identity_discards{
    "redis_sidecar_upstream_identity_discards_total", metric_type::counter,
    "Upstream connections closed, not reused, because their client learned the connection's "
    "identity (CLIENT ID / INFO) or turned on tracking."};
/// Clients that sent something that is not RESP.
inline constexpr family client_protocol_errors{
    "redis_sidecar_client_protocol_errors_total", metric_type::counter,
    "Local clients that sent something that is not RESP."};
/// READONLY replies seen from the upstream (a failover demoted it).
inline constexpr family readonly_replies{"redis_sidecar_readonly_replies_total",
                                         metric_type::counter,
                                         "READONLY error replies seen from the upstream."};
/// LOADING replies seen from the upstream.
inline constexpr family loading_replies{"redis_sidecar_loading_replies_total", metric_type::counter,
                                        "LOADING error replies seen from the upstream."};

// Probes and lifecycle (from health::probe_state and the admin server).

/// Each probe's current answer: 1 (200) or 0 (503), by probe ("livez", "startupz", "readyz").
inline constexpr family probe_status{"redis_sidecar_probe_status",
                                     metric_type::gauge,
                                     "Current probe answer: 1 for 200, 0 for 503.",
                                     {"probe"}};
/// Probe requests served, by probe and HTTP status code.
inline constexpr family probe_requests{"redis_sidecar_probe_requests_total",
                                       metric_type::counter,
                                       "Probe requests served, by probe and HTTP status code.",
                                       {"probe", "code"}};
/// The lifecycle state: 1 on the current state's sample, 0 on the others.
inline constexpr family lifecycle_state{
    "redis_sidecar_state",
    metric_type::gauge,
    "Lifecycle state (starting, ready, draining, stopped): 1 for the current one.",
    {"state"}};
/// Always 1; the version as a label.
inline constexpr family build_info{"redis_sidecar_build_info",
                                   metric_type::gauge,
                                   "Always 1; the sidecar's version as a label.",
                                   {"version"}};
/// Unix time the process started.
inline constexpr family process_start_time{"redis_sidecar_process_start_time_seconds",
                                           metric_type::gauge,
                                           "Start time of the process since the Unix epoch."};

// Secret rotation and failover (from upstream::pool_stats and the app's secret watcher).

/// New credentials taken from a rotated secret.
inline constexpr family credential_rotations{
    "redis_sidecar_credential_rotations_total", metric_type::counter,
    "Times new upstream credentials were taken from a rotated secret."};
/// Opens that needed the previous password (the secret was rotated before the cache).
inline constexpr family auth_fallbacks{
    "redis_sidecar_auth_fallbacks_total", metric_type::counter,
    "Upstream connects that succeeded only with the previous password."};
/// Idle connections re-authenticated in place after a rotation.
inline constexpr family pool_reauths{
    "redis_sidecar_pool_reauths_total", metric_type::counter,
    "Idle upstream connections re-authenticated in place after a rotation."};
/// Secret reloads that found bad input and kept the last good values.
inline constexpr family secret_reload_failures{
    "redis_sidecar_secret_reload_failures_total", metric_type::counter,
    "Secret reloads that failed (unreadable, empty) and kept the last good values."};
/// The upstream went from master to replica.
inline constexpr family upstream_demotions{
    "redis_sidecar_upstream_demotions_total", metric_type::counter,
    "Times the upstream answered as a replica after being the primary (failover)."};
/// Idle connections dropped because the upstream was demoted (READONLY or role change).
inline constexpr family pool_failover_discards{
    "redis_sidecar_pool_failover_discards_total", metric_type::counter,
    "Idle upstream connections dropped because the upstream was demoted."};

/// Every family, in export order.
inline constexpr std::array<const family*, 46> all_families = {
    &pool_connections_open,
    &pool_connections_idle,
    &pool_connections_leased,
    &pool_connections_opening,
    &pool_waiters,
    &upstream_connects,
    &upstream_connect_failures,
    &upstream_handshake_duration,
    &pool_discards,
    &pool_reuses,
    &pool_health_checks,
    &pool_acquire_timeouts,
    &dns_lookups,
    &dns_changes,
    &upstream_up,
    &upstream_role,
    &clients,
    &clients_accepted,
    &clients_rejected,
    &clients_upstream_unavailable,
    &client_auth_failures,
    &client_auth_other_user,
    &client_resets,
    &reply_framing_errors,
    &write_timeouts,
    &upstream_identity_discards,
    &commands_forwarded,
    &commands_intercepted,
    &client_received_bytes,
    &client_sent_bytes,
    &upstream_recycles,
    &upstream_recycle_discards,
    &client_protocol_errors,
    &readonly_replies,
    &loading_replies,
    &probe_status,
    &probe_requests,
    &lifecycle_state,
    &build_info,
    &process_start_time,
    &credential_rotations,
    &auth_fallbacks,
    &pool_reauths,
    &secret_reload_failures,
    &upstream_demotions,
    &pool_failover_discards,
};

}  // namespace redis_sidecar::metrics
