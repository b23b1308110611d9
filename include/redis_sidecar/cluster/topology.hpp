#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis_sidecar/resp/value.hpp"

namespace redis_sidecar::cluster {

/// Slots of a Redis Cluster (0..16383).
inline constexpr unsigned slot_count = 16384;

/// One cluster node as the upstream describes it.
struct node {
    std::string id;          ///< node id; empty where the reply has none
    std::string endpoint;    ///< the preferred endpoint (a host name on ElastiCache with TLS)
    std::string ip;          ///< its IP, where the reply gives one
    std::string hostname;    ///< its announced host name, where the reply gives one
    std::uint16_t port = 0;  ///< the port clients use (the TLS port when connecting with TLS)
    bool primary = false;
    bool online = true;

    /// What the sidecar connects to: the host name (ElastiCache repoints the addresses behind
    /// it, and TLS verifies it), else the endpoint, else the IP. Empty: no usable address.
    std::string host() const;
    /// "host:port" of host().
    std::string address() const;
};

struct slot_range {
    std::uint16_t first = 0;
    std::uint16_t last = 0;
};

/// One shard: its slots, its primary first, then its replicas.
struct shard {
    std::vector<slot_range> slots;
    std::vector<node> nodes;
};

/// A cluster's shape at one moment.
struct topology {
    std::vector<shard> shards;

    /// Every slot is served by a shard with a primary.
    bool covers_all_slots() const;
    std::size_t node_count() const;
};

/// From a CLUSTER SHARDS reply (Redis/Valkey 7+; RESP2 or RESP3). `tls`: the sidecar connects
/// with TLS, so a node's `tls-port` is the one to use. nullopt with `error` when the reply is not
/// that shape.
std::optional<topology> topology_from_shards(const resp::value& reply, bool tls,
                                             std::string& error);

/// From a CLUSTER SLOTS reply (every Redis Cluster; RESP2 or RESP3).
std::optional<topology> topology_from_slots(const resp::value& reply, std::string& error);

/// The node a CLUSTER NODES / CLUSTER REPLICAS line describes; nullopt when the line is not one.
std::optional<node> node_from_line(std::string_view line);

/// A MOVED or ASK error ("MOVED 3999 host:6379", without the leading '-').
struct redirect {
    std::string_view kind;  ///< "MOVED" or "ASK"
    std::string_view slot;
    std::string_view host;
    std::uint16_t port = 0;
};
std::optional<redirect> parse_redirect(std::string_view error_line);

}  // namespace redis_sidecar::cluster
