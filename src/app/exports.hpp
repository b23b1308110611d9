#pragma once

// The one list of what the sidecar exports: every metric family of the app, declared once
// beside the counter it reads. /metrics renders it, /status shows the rows that name a status
// key, and README.md / docs/observability.md carry the same table (a test compares them).

#include <cstdint>
#include <span>
#include <string_view>

#include "redis_sidecar/bridge/stats.hpp"
#include "redis_sidecar/cluster/stats.hpp"
#include "redis_sidecar/health/probe_state.hpp"
#include "redis_sidecar/http/admin_server.hpp"
#include "redis_sidecar/metrics/families.hpp"
#include "redis_sidecar/metrics/registry.hpp"
#include "redis_sidecar/upstream/stats.hpp"

namespace redis_sidecar::app {

/// IAM authentication's counters (all zero when REDIS_IAM_AUTH is off).
struct iam_counts {
    std::uint64_t credential_fetches = 0;
    std::uint64_t credential_failures = 0;
    std::uint64_t tokens_signed = 0;
    std::uint64_t tokens_refused = 0;
    double credentials_ttl_seconds = 0;  ///< until the AWS credentials expire; 0: none or no expiry
};

/// What the exports read at scrape time (all on the event loop's thread).
struct stats_view {
    const upstream::pool_stats& pool;
    const bridge::bridge_stats& bridge;
    const cluster::cluster_stats& cluster;
    bool upstream_up = false;
    health::state state = health::state::starting;
    std::uint64_t secret_reload_failures = 0;
    double process_start_seconds = 0;  ///< since the Unix epoch
    std::string_view version;          ///< the build's version (build_info's label)
    iam_counts iam{};
    http::refused_counts admin_refused{};  ///< admin requests refused: not from loopback
};

/// One exported family and where its samples come from: `value` for a family without labels,
/// `samples` for one with labels or a histogram. `status` names the /status field that shows
/// the same value ("pool.open"), if any.
struct exported {
    metrics::family family;
    double (*value)(const stats_view&) = nullptr;
    void (*samples)(metrics::registry&, const metrics::family&, const stats_view&) = nullptr;
    std::string_view status{};
};

/// The app's families, in the order /metrics and the documentation list them.
std::span<const exported> exports();

/// Every family the sidecar exports: the app's, then the admin server's own (probe counters).
std::span<const metrics::family* const> all_families();

/// Sets every sample of the app's families from `v`.
void fill(metrics::registry& r, const stats_view& v);

}  // namespace redis_sidecar::app
