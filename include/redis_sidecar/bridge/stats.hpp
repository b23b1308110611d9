#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace redis_sidecar::bridge {

/// Commands per write to a shared connection (a lane holds at most 1,024 in flight, so the
/// +Inf bucket stays empty).
struct batch_histogram {
    static constexpr std::array<double, 11> bounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
    std::array<std::uint64_t, bounds.size() + 1> counts{};  ///< per bucket, not cumulative
    double sum = 0;

    void observe(std::size_t commands) {
        std::size_t i = 0;
        while (i < bounds.size() && static_cast<double>(commands) > bounds[i]) ++i;
        ++counts[i];
        sum += static_cast<double>(commands);
    }
};

/// The bridge's counters and gauges, read by /status and /metrics (on the bridge's thread).
struct bridge_stats {
    // Gauges.
    std::size_t clients = 0;  ///< local clients connected now
    /// Shared upstream connections (multiplexing): [0] RESP2, [1] RESP3.
    std::array<std::size_t, 2> lanes_open{};

    // Counters.
    std::uint64_t clients_accepted = 0;
    std::uint64_t clients_rejected = 0;      ///< over the max-clients bound
    std::uint64_t commands_forwarded = 0;    ///< complete commands sent upstream
    std::uint64_t commands_intercepted = 0;  ///< AUTH, HELLO … AUTH, QUIT answered locally
    std::uint64_t bytes_from_clients = 0;
    std::uint64_t bytes_to_clients = 0;
    std::uint64_t recycled_clean = 0;   ///< upstream connections returned as they were
    std::uint64_t discarded = 0;        ///< closed instead of returned (failed RESETs: pool_stats)
    std::uint64_t protocol_errors = 0;  ///< clients that sent something that is not RESP
    std::uint64_t readonly_replies = 0;
    std::uint64_t loading_replies = 0;
    std::uint64_t upstream_unavailable = 0;   ///< clients closed because no connection came
    std::uint64_t auth_failures = 0;          ///< wrong local client password
    std::uint64_t client_resets = 0;          ///< client RESETs (connection re-authenticated)
    std::uint64_t auth_other_user = 0;        ///< local AUTH naming another user than ours
    std::uint64_t identity_discards = 0;      ///< closed: the client learned its identity
    std::uint64_t reply_framing_errors = 0;   ///< clients closed: an upstream reply was not RESP
    std::uint64_t client_write_timeouts = 0;  ///< clients closed: they stopped reading
    std::uint64_t upstream_write_timeouts =
        0;  ///< clients closed: the upstream stopped taking bytes
    std::uint64_t upstream_read_timeouts = 0;  ///< clients closed: a reply stopped mid-way
    // Multiplexing (REDIS_SIDECAR_MULTIPLEX=on).
    std::uint64_t commands_shared = 0;     ///< commands sent on a shared connection
    batch_histogram lane_batches;          ///< writes to shared connections, by commands
    std::uint64_t lane_breaks = 0;         ///< shared connections that broke
    std::uint64_t lane_commands_lost = 0;  ///< commands answered "upstream connection lost"
    /// Clients moved to a dedicated connection, by mux::pin_reason; the last two entries count
    /// a command too large to share (pin_large_command) and a client reading a large value
    /// (pin_large_reply).
    std::array<std::uint64_t, 9> pins{};
    static constexpr std::size_t pin_large_command = 7;
    static constexpr std::size_t pin_large_reply = 8;
    // Cluster mode.
    std::uint64_t cluster_rewrites = 0;        ///< topology replies rewritten to local ports
    std::uint64_t cluster_redirects = 0;       ///< MOVED/ASK rewritten to local ports
    std::uint64_t cluster_rewrite_errors = 0;  ///< replies that could not be rewritten
};

}  // namespace redis_sidecar::bridge
