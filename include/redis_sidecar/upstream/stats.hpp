#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include "redis_sidecar/upstream/error.hpp"

namespace redis_sidecar::upstream {

/// A fixed-bucket latency histogram (Prometheus-style cumulative on export).
struct latency_histogram {
    /// Upper bounds in seconds; a last implicit +Inf bucket.
    static constexpr std::array<double, 12> bounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
    std::array<std::uint64_t, bounds.size() + 1> counts{};  ///< per bucket, not cumulative
    double sum_seconds = 0;
    std::uint64_t count = 0;

    void observe(std::chrono::nanoseconds d) {
        const double s = std::chrono::duration<double>(d).count();
        std::size_t i = 0;
        while (i < bounds.size() && s > bounds[i]) ++i;
        ++counts[i];
        sum_seconds += s;
        ++count;
    }
};

/// The pool's state and counters, read by /status and /metrics.
struct pool_stats {
    // Gauges.
    std::size_t open = 0;     ///< idle + leased + checking
    std::size_t idle = 0;     ///< ready in the pool
    std::size_t leased = 0;   ///< held by local clients
    std::size_t waiting = 0;  ///< acquirers queued for a connection
    std::size_t opening = 0;  ///< connects in flight

    // Counters.
    std::uint64_t connects = 0;                         ///< opens that succeeded
    std::array<std::uint64_t, error_count> failures{};  ///< opens that failed, by class
    std::uint64_t discards = 0;                         ///< connections closed as unusable or old
    std::uint64_t idle_closes = 0;     ///< idle connections above the minimum closed, unused
    std::uint64_t reuses = 0;          ///< connections that went back to idle after a lease
    std::uint64_t resets = 0;          ///< of those, after RESET + re-authentication
    std::uint64_t reset_failures = 0;  ///< connections closed because that RESET failed
    /// The sidecar's own commands on pooled connections that failed (INFO for /status; RESET and
    /// its re-authentication when a client leaves, except on servers without RESET), by class.
    std::array<std::uint64_t, error_count> command_failures{};
    std::uint64_t health_checks = 0;  ///< PINGs sent to idle connections
    std::uint64_t acquire_timeouts = 0;
    std::uint64_t dns_lookups = 0;
    std::uint64_t dns_changes = 0;  ///< the upstream's address differed from the last lookup's
    std::uint64_t credential_rotations = 0;  ///< new username/password taken (secret rotation)
    std::uint64_t auth_fallbacks =
        0;                      ///< opens that needed the previous password (cache not rotated yet)
    std::uint64_t reauths = 0;  ///< idle connections re-authenticated in place
    std::uint64_t demotions = 0;  ///< the upstream went from master to replica (failover)
    std::uint64_t failover_discards =
        0;  ///< dropped after a demotion: idle ones, and any opened before it
    latency_histogram handshake_latency;  ///< TCP + TLS + HELLO/AUTH + PING

    // Facts.
    std::string role;            ///< "master", "replica" or "" (unknown)
    std::string server_version;  ///< from HELLO
    std::string server_mode;     ///< from HELLO: "standalone", "cluster", "sentinel"; "" if unknown
    bool ever_connected = false;
    std::string last_error;          ///< classification label of the last failure, "" if none
    std::string last_error_message;  ///< its message (never a secret)
    std::chrono::system_clock::time_point last_error_time{};
};

}  // namespace redis_sidecar::upstream
