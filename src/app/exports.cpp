#include "exports.hpp"

#include <array>

#include "redis_sidecar/http/admin_server.hpp"
#include "redis_sidecar/mux/classify.hpp"

namespace redis_sidecar::app {

namespace {

using metrics::family;
using metrics::metric_type;
using metrics::registry;
using P = upstream::pool_stats;
using B = bridge::bridge_stats;
using C = cluster::cluster_stats;

constexpr auto counter = metric_type::counter;
constexpr auto gauge = metric_type::gauge;

template <auto member>
double pool(const stats_view& v) {
    return static_cast<double>(v.pool.*member);
}

template <auto member>
double bridge(const stats_view& v) {
    return static_cast<double>(v.bridge.*member);
}

template <auto member>
double cluster_figure(const stats_view& v) {
    return static_cast<double>(v.cluster.*member);
}

void cluster_refreshes(registry& r, const family& f, const stats_view& v) {
    r.set(f, {{"result", "ok"}}, static_cast<double>(v.cluster.refreshes));
    r.set(f, {{"result", "failed"}}, static_cast<double>(v.cluster.refresh_failures));
}

void cluster_rewrites(registry& r, const family& f, const stats_view& v) {
    r.set(f, {{"kind", "topology"}}, static_cast<double>(v.bridge.cluster_rewrites));
    r.set(f, {{"kind", "redirect"}}, static_cast<double>(v.bridge.cluster_redirects));
}

void cluster_node_up(registry& r, const family& f, const stats_view& v) {
    for (const auto& n : v.cluster.per_node) {
        r.set(f, {{"port", std::to_string(n.port)}, {"role", n.primary ? "primary" : "replica"}},
              n.healthy ? 1 : 0);
    }
}

void cluster_node_connections(registry& r, const family& f, const stats_view& v) {
    for (const auto& n : v.cluster.per_node) {
        const auto port = std::to_string(n.port);
        r.set(f, {{"port", port}, {"state", "idle"}}, static_cast<double>(n.idle));
        r.set(f, {{"port", port}, {"state", "leased"}}, static_cast<double>(n.leased));
    }
}

void by_class(registry& r, const family& f,
              const std::array<std::uint64_t, upstream::error_count>& counts) {
    for (int i = 1; i < upstream::error_count; ++i) {
        const auto kind = static_cast<upstream::error>(i);
        r.set(f, {{"class", upstream::label(kind)}},
              static_cast<double>(counts[static_cast<std::size_t>(i)]));
    }
}

void connect_failures(registry& r, const family& f, const stats_view& v) {
    by_class(r, f, v.pool.failures);
}

void command_failures(registry& r, const family& f, const stats_view& v) {
    by_class(r, f, v.pool.command_failures);
}

void pins(registry& r, const family& f, const stats_view& v) {
    const auto& p = v.bridge.pins;
    for (std::size_t i = 1; i < p.size(); ++i) {
        const std::string_view reason = i == bridge::bridge_stats::pin_large_command
                                            ? std::string_view("large_command")
                                        : i == bridge::bridge_stats::pin_large_reply
                                            ? std::string_view("large_reply")
                                            : mux::to_string(static_cast<mux::pin_reason>(i));
        r.set(f, {{"reason", std::string(reason)}}, static_cast<double>(p[i]));
    }
}

void handshake_duration(registry& r, const family& f, const stats_view& v) {
    const auto& h = v.pool.handshake_latency;
    r.set_histogram(f, upstream::latency_histogram::bounds, h.counts, h.sum_seconds);
}

void shared_connections(registry& r, const family& f, const stats_view& v) {
    const auto& open = v.bridge.lanes_open;
    r.set(f, {{"protocol", "2"}}, static_cast<double>(open[0]));
    r.set(f, {{"protocol", "3"}}, static_cast<double>(open[1]));
}

void shared_batch_commands(registry& r, const family& f, const stats_view& v) {
    const auto& h = v.bridge.lane_batches;
    r.set_histogram(f, bridge::batch_histogram::bounds, h.counts, h.sum);
}

void role(registry& r, const family& f, const stats_view& v) {
    r.set(f, {{"role", v.pool.role.empty() ? "unknown" : v.pool.role}}, 1);
}

void write_timeouts(registry& r, const family& f, const stats_view& v) {
    r.set(f, {{"peer", "client"}}, static_cast<double>(v.bridge.client_write_timeouts));
    r.set(f, {{"peer", "upstream"}}, static_cast<double>(v.bridge.upstream_write_timeouts));
}

void recycles(registry& r, const family& f, const stats_view& v) {
    r.set(f, {{"kind", "clean"}}, static_cast<double>(v.bridge.recycled_clean));
    r.set(f, {{"kind", "reset"}}, static_cast<double>(v.pool.resets));
}

double recycle_discards(const stats_view& v) {
    return static_cast<double>(v.bridge.discarded + v.pool.reset_failures);
}

void admin_refused(registry& r, const family& f, const stats_view& v) {
    r.set(f, {{"path", "/configz"}}, static_cast<double>(v.admin_refused.configz));
    r.set(f, {{"path", "/quitquitquit"}}, static_cast<double>(v.admin_refused.quitquitquit));
}

void lifecycle(registry& r, const family& f, const stats_view& v) {
    for (auto st : health::all_states)
        r.set(f, {{"state", health::name(st)}}, st == v.state ? 1 : 0);
}

void build_info(registry& r, const family& f, const stats_view& v) {
    r.set(f, {{"version", v.version}}, 1);
}

// clang-format off
const exported app_exports[] = {
    // Upstream connection pool (upstream::pool_stats).
    {{"redis_sidecar_pool_connections_open", gauge,
      "Upstream connections open (idle, leased or being health-checked)."},
     pool<&P::open>, nullptr, "pool.open"},
    {{"redis_sidecar_pool_connections_idle", gauge, "Upstream connections idle in the pool."},
     pool<&P::idle>, nullptr, "pool.idle"},
    {{"redis_sidecar_pool_connections_leased", gauge, "Upstream connections leased to local clients."},
     pool<&P::leased>, nullptr, "pool.leased"},
    {{"redis_sidecar_pool_connections_opening", gauge,
      "Upstream connects in flight (DNS, TCP, TLS, AUTH, PING)."},
     pool<&P::opening>, nullptr, "pool.opening"},
    {{"redis_sidecar_pool_waiters", gauge, "Local clients waiting for an upstream connection."},
     pool<&P::waiting>, nullptr, "pool.waiting"},
    {{"redis_sidecar_upstream_connects_total", counter,
      "Upstream connections opened successfully (TLS, AUTH and PING done)."},
     pool<&P::connects>, nullptr, "pool.connects"},
    {{"redis_sidecar_upstream_connect_failures_total", counter,
      "Upstream connection attempts that failed, by error class.", {"class"}},
     nullptr, connect_failures},
    {{"redis_sidecar_upstream_handshake_duration_seconds", metric_type::histogram,
      "Time to open an upstream connection: DNS, TCP, TLS, HELLO/AUTH and PING."},
     nullptr, handshake_duration},
    {{"redis_sidecar_pool_discards_total", counter,
      "Pooled upstream connections closed as unusable or past their maximum lifetime."},
     pool<&P::discards>},
    {{"redis_sidecar_pool_idle_closes_total", counter,
      "Idle upstream connections above the minimum closed after REDIS_IDLE_TIMEOUT unused."},
     pool<&P::idle_closes>},
    {{"redis_sidecar_pool_reuses_total", counter,
      "Upstream connections returned to the idle pool after a lease."},
     pool<&P::reuses>},
    {{"redis_sidecar_pool_health_checks_total", counter,
      "Health-check PINGs sent to idle upstream connections."},
     pool<&P::health_checks>},
    {{"redis_sidecar_pool_acquire_timeouts_total", counter,
      "Local clients that waited for an upstream connection longer than the bound."},
     pool<&P::acquire_timeouts>},
    {{"redis_sidecar_dns_lookups_total", counter, "DNS lookups of the upstream host."},
     pool<&P::dns_lookups>},
    {{"redis_sidecar_dns_changes_total", counter,
      "DNS lookups whose addresses differed from the previous lookup (failover)."},
     pool<&P::dns_changes>},
    {{"redis_sidecar_upstream_up", gauge, "1 when at least one healthy upstream connection is open."},
     [](const stats_view& v) { return v.upstream_up ? 1.0 : 0.0; }},
    {{"redis_sidecar_upstream_role", gauge,
      "The upstream's replication role (1 for the current one).", {"role"}},
     nullptr, role},

    // Local clients (bridge::bridge_stats).
    {{"redis_sidecar_clients", gauge, "Local clients connected."}, bridge<&B::clients>, nullptr,
     "clients"},
    {{"redis_sidecar_clients_accepted_total", counter, "Local client connections accepted."},
     bridge<&B::clients_accepted>},
    {{"redis_sidecar_clients_rejected_total", counter,
      "Local client connections refused over the bound."},
     bridge<&B::clients_rejected>},
    {{"redis_sidecar_clients_upstream_unavailable_total", counter,
      "Local clients closed because no upstream connection became available."},
     bridge<&B::upstream_unavailable>},
    {{"redis_sidecar_client_auth_failures_total", counter,
      "Local clients that sent a wrong password."},
     bridge<&B::auth_failures>},
    {{"redis_sidecar_client_auth_other_user_total", counter,
      "Local AUTHs naming another user than the sidecar's; their commands run as the sidecar's "
      "user."},
     bridge<&B::auth_other_user>},
    {{"redis_sidecar_client_resets_total", counter,
      "Client RESETs (the upstream connection reset and re-authenticated as the sidecar's user)."},
     bridge<&B::client_resets>},
    {{"redis_sidecar_reply_framing_errors_total", counter,
      "Local clients closed because an upstream reply was not valid RESP."},
     bridge<&B::reply_framing_errors>},
    {{"redis_sidecar_write_timeouts_total", counter,
      "Local clients closed because a write to them (peer=client) or to their upstream "
      "connection (peer=upstream) took longer than the socket timeout.", {"peer"}},
     nullptr, write_timeouts},
    {{"redis_sidecar_upstream_read_timeouts_total", counter,
      "Local clients closed because their upstream connection stopped in the middle of a reply "
      "for longer than the socket timeout (the connection is discarded)."},
     bridge<&B::upstream_read_timeouts>},
    {{"redis_sidecar_upstream_identity_discards_total", counter,
      "Upstream connections closed, not reused, because their client learned the connection's "
      "identity (CLIENT ID / INFO) or turned on tracking."},
     bridge<&B::identity_discards>},
    {{"redis_sidecar_commands_forwarded_total", counter,
      "Client commands forwarded to the upstream."},
     bridge<&B::commands_forwarded>},
    {{"redis_sidecar_commands_intercepted_total", counter,
      "Client commands the sidecar read whole before deciding (AUTH, HELLO, QUIT, RESET, "
      "CLIENT; CLUSTER in cluster mode): answered by the sidecar itself (local AUTH, QUIT, "
      "CLIENT MAINT_NOTIFICATIONS refused) or forwarded."},
     bridge<&B::commands_intercepted>},
    {{"redis_sidecar_client_received_bytes_total", counter, "Bytes received from local clients."},
     bridge<&B::bytes_from_clients>},
    {{"redis_sidecar_client_sent_bytes_total", counter, "Bytes sent to local clients."},
     bridge<&B::bytes_to_clients>},
    {{"redis_sidecar_upstream_recycles_total", counter,
      "Upstream connections returned to the pool after a client left, by kind (clean, reset).",
      {"kind"}},
     nullptr, recycles},
    {{"redis_sidecar_upstream_recycle_discards_total", counter,
      "Upstream connections closed after a client left instead of being returned."},
     recycle_discards},
    {{"redis_sidecar_upstream_command_failures_total", counter,
      "The sidecar's own commands on pooled connections that failed, by error class: INFO "
      "(for /status), RESET and its re-authentication (when a client leaves). Each closes its "
      "connection; /status last_error names the command.", {"class"}},
     nullptr, command_failures},
    {{"redis_sidecar_client_protocol_errors_total", counter,
      "Local clients that sent something that is not RESP."},
     bridge<&B::protocol_errors>},
    {{"redis_sidecar_readonly_replies_total", counter,
      "READONLY error replies seen from the upstream."},
     bridge<&B::readonly_replies>},
    {{"redis_sidecar_loading_replies_total", counter, "LOADING error replies seen from the upstream."},
     bridge<&B::loading_replies>},

    // Cluster mode (cluster::cluster_stats, bridge::bridge_stats).
    {{"redis_sidecar_cluster_nodes", gauge, "Cluster nodes with an open local port."},
     cluster_figure<&C::nodes>, nullptr, "cluster.node_count"},
    {{"redis_sidecar_cluster_node_up", gauge,
      "1 when the cluster node behind a local port has a healthy upstream connection; one "
      "series per node port (bounded by REDIS_SIDECAR_CLUSTER_PORTS).", {"port", "role"}},
     nullptr, cluster_node_up},
    {{"redis_sidecar_cluster_node_connections", gauge,
      "Upstream connections to the cluster node behind a local port, by state (idle, leased).",
      {"port", "state"}},
     nullptr, cluster_node_connections},
    {{"redis_sidecar_cluster_topology_refreshes_total", counter,
      "Cluster topology reads (CLUSTER SHARDS or SLOTS), by result (ok, failed).", {"result"}},
     nullptr, cluster_refreshes},
    {{"redis_sidecar_cluster_nodes_added_total", counter, "Local ports opened for cluster nodes."},
     cluster_figure<&C::nodes_added>},
    {{"redis_sidecar_cluster_nodes_removed_total", counter,
      "Local ports closed because their node left the cluster topology."},
     cluster_figure<&C::nodes_removed>},
    {{"redis_sidecar_cluster_port_bind_failures_total", counter,
      "Cluster nodes whose local port could not be bound."},
     cluster_figure<&C::bind_failures>},
    {{"redis_sidecar_cluster_ports_exhausted_total", counter,
      "Cluster nodes that got no local port because REDIS_SIDECAR_CLUSTER_PORTS was full."},
     cluster_figure<&C::ports_exhausted>},
    {{"redis_sidecar_cluster_rewrites_total", counter,
      "Replies whose node addresses were rewritten to local ports, by kind (topology: CLUSTER "
      "SLOTS/SHARDS/NODES/REPLICAS; redirect: MOVED/ASK).", {"kind"}},
     nullptr, cluster_rewrites},
    {{"redis_sidecar_cluster_rewrite_errors_total", counter,
      "Cluster topology replies that could not be rewritten (malformed or too large); the client "
      "got an error instead."},
     bridge<&B::cluster_rewrite_errors>},

    // Multiplexing (REDIS_SIDECAR_MULTIPLEX=on).
    {{"redis_sidecar_shared_connections", gauge,
      "Upstream connections shared by clients (multiplexing), by the protocol they speak (2: "
      "RESP2, 3: RESP3).", {"protocol"}},
     nullptr, shared_connections},
    {{"redis_sidecar_commands_shared_total", counter,
      "Commands sent on a shared upstream connection (the rest of "
      "redis_sidecar_commands_forwarded_total went on clients' dedicated connections)."},
     bridge<&B::commands_shared>},
    {{"redis_sidecar_client_pins_total", counter,
      "Clients moved from the shared connections to a dedicated one, by the first command's "
      "reason.", {"reason"}},
     nullptr, pins},
    {{"redis_sidecar_shared_batch_commands", metric_type::histogram,
      "Commands per write to a shared upstream connection (what its clients sent during one "
      "turn of the event loop)."},
     nullptr, shared_batch_commands},
    {{"redis_sidecar_shared_connection_breaks_total", counter,
      "Shared upstream connections that broke; their commands in flight were answered "
      "'upstream connection lost'."},
     bridge<&B::lane_breaks>},
    {{"redis_sidecar_shared_commands_lost_total", counter,
      "Commands answered '-ERR redis-sidecar: upstream connection lost' because their shared "
      "connection broke."},
     bridge<&B::lane_commands_lost>},

    // IAM authentication.
    {{"redis_sidecar_iam_credential_fetches_total", counter,
      "Requests for AWS credentials (STS AssumeRoleWithWebIdentity or the Pod Identity / ECS "
      "agent) for IAM authentication."},
     [](const stats_view& v) { return static_cast<double>(v.iam.credential_fetches); }},
    {{"redis_sidecar_iam_credential_errors_total", counter,
      "AWS credential requests that failed (retried with backoff; see /status iam.last_error)."},
     [](const stats_view& v) { return static_cast<double>(v.iam.credential_failures); }},
    {{"redis_sidecar_iam_tokens_signed_total", counter,
      "ElastiCache IAM tokens signed (at start, every 5 minutes, and when credentials change)."},
     [](const stats_view& v) { return static_cast<double>(v.iam.tokens_signed); }},
    {{"redis_sidecar_iam_tokens_refused_total", counter,
      "Times the upstream refused the current IAM token and the credentials were fetched again "
      "(at most one per 30 s)."},
     [](const stats_view& v) { return static_cast<double>(v.iam.tokens_refused); }},
    {{"redis_sidecar_iam_credentials_expiry_seconds", gauge,
      "Seconds until the AWS credentials IAM signs with expire (0: IAM off, or keys without "
      "expiry)."},
     [](const stats_view& v) { return v.iam.credentials_ttl_seconds; }},

    {{"redis_sidecar_admin_refused_total", counter,
      "Admin requests refused with 403 because the peer address is not loopback, by path.",
      {"path"}},
     nullptr, admin_refused},

    // Lifecycle.
    {{"redis_sidecar_state", gauge,
      "Lifecycle state (starting, ready, draining, stopped): 1 for the current one.", {"state"}},
     nullptr, lifecycle},
    {{"redis_sidecar_build_info", gauge, "Always 1; the sidecar's version as a label.",
      {"version"}},
     nullptr, build_info},
    {{"redis_sidecar_process_start_time_seconds", gauge,
      "Start time of the process since the Unix epoch."},
     [](const stats_view& v) { return v.process_start_seconds; }},

    // Secret rotation and failover.
    {{"redis_sidecar_credential_rotations_total", counter,
      "Times new upstream credentials were taken from a rotated secret."},
     pool<&P::credential_rotations>},
    {{"redis_sidecar_auth_fallbacks_total", counter,
      "Upstream connects that succeeded only with the previous password."},
     pool<&P::auth_fallbacks>},
    {{"redis_sidecar_pool_reauths_total", counter,
      "Idle upstream connections re-authenticated in place after a rotation."},
     pool<&P::reauths>},
    {{"redis_sidecar_secret_reload_failures_total", counter,
      "Secret reloads that failed (unreadable, empty) and kept the last good values."},
     [](const stats_view& v) { return static_cast<double>(v.secret_reload_failures); }},
    {{"redis_sidecar_upstream_demotions_total", counter,
      "Times the upstream answered as a replica after being the primary (failover)."},
     pool<&P::demotions>},
    {{"redis_sidecar_pool_failover_discards_total", counter,
      "Upstream connections dropped, not reused, because the upstream was demoted: idle ones at "
      "a READONLY reply or a replica's answer, and any opened before the failover."},
     pool<&P::failover_discards>},
};
// clang-format on

constexpr std::size_t app_count = std::size(app_exports);

const std::array<const family*, app_count + http::probe_families.size()> every_family = [] {
    std::array<const family*, app_count + http::probe_families.size()> all{};
    std::size_t i = 0;
    for (const auto& e : app_exports) all[i++] = &e.family;
    for (const family* f : http::probe_families) all[i++] = f;
    return all;
}();

}  // namespace

std::span<const exported> exports() {
    return app_exports;
}

std::span<const metrics::family* const> all_families() {
    return every_family;
}

void fill(metrics::registry& r, const stats_view& v) {
    for (const auto& e : app_exports) {
        if (e.value != nullptr) r.set(e.family, e.value(v));
        if (e.samples != nullptr) e.samples(r, e.family, v);
    }
}

}  // namespace redis_sidecar::app
