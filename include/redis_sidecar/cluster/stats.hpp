#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace redis_sidecar::cluster {

/// Cluster mode's counters and gauges (read by /status and /metrics on the event loop).
struct cluster_stats {
    std::size_t nodes = 0;               ///< nodes with an open local port now
    std::uint64_t refreshes = 0;         ///< topologies read
    std::uint64_t refresh_failures = 0;  ///< topology reads that failed
    std::uint64_t nodes_added = 0;       ///< local ports opened for nodes
    std::uint64_t nodes_removed = 0;     ///< local ports closed: the node left the topology
    std::uint64_t bind_failures = 0;     ///< a node's local port could not be bound
    std::uint64_t ports_exhausted = 0;   ///< times a node got no port: the range was full

    /// One node's pool, by its local port (at most one per port of the range: bounded labels).
    struct node_figures {
        std::uint16_t port = 0;
        bool primary = false;
        bool healthy = false;  ///< a healthy connection is open
        std::size_t idle = 0;
        std::size_t leased = 0;
    };
    std::vector<node_figures> per_node;  ///< as of the last read
};

}  // namespace redis_sidecar::cluster
