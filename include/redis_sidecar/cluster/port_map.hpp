#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis_sidecar/cluster/rewrite.hpp"
#include "redis_sidecar/cluster/topology.hpp"

namespace redis_sidecar::cluster {

/// A node that has a local port.
struct mapped_node {
    std::uint16_t local_port = 0;
    std::string id;    ///< node id, once known
    std::string host;  ///< what the node's pool connects to (node::host())
    std::uint16_t port = 0;
    std::vector<std::string> aliases;  ///< every "host:port" the upstream names it by
    bool primary = false;
    bool in_topology = false;  ///< in the last topology (false: only seen in a MOVED/ASK)
};

/// Which local port stands for which upstream node: one per node, from a fixed range, stable
/// for as long as the node exists. A node is known by its id and by every address the upstream
/// gives it (host name, IP, endpoint, each with the port), so a MOVED naming it by host name and
/// a CLUSTER SLOTS naming it by IP find the same port. A port freed by a node that left is
/// handed out again only after every other port of the range was used once. Socket-free.
class port_map {
  public:
    /// Ports first..last (inclusive).
    port_map(std::uint16_t first, std::uint16_t last);

    /// Never hands out `port` (the sidecar's own listener and admin ports, when in the range).
    void reserve(std::uint16_t port);

    /// The node's port, given one if it has none. nullptr: the range is full, or the node has
    /// no address.
    const mapped_node* ensure(const node& n);
    /// The node reached at host:port, or nullptr.
    const mapped_node* find(std::string_view host, std::uint16_t port) const;
    const mapped_node* find_port(std::uint16_t local_port) const;

    /// Takes a fresh topology: marks its nodes (giving ports to new ones, primaries first, so
    /// that a range too small for every node still serves every slot) and removes the nodes
    /// not in it, returning them (their listeners close). Nodes only ever seen in MOVED/ASK
    /// are removed too: the topology is the authority.
    std::vector<mapped_node> apply(const topology& t);

    const std::vector<mapped_node>& nodes() const { return nodes_; }
    std::size_t capacity() const { return static_cast<std::size_t>(last_ - first_) + 1; }
    /// Nodes that got no port because the range was full (since the start).
    std::uint64_t refused() const { return refused_; }

  private:
    mapped_node* lookup(const node& n);
    mapped_node* ensure_mut(const node& n);
    mapped_node* find_mut(std::string_view host, std::uint16_t port);
    std::optional<std::uint16_t> take_port();
    static void add_alias(mapped_node& m, const std::string& host, std::uint16_t port);

    std::uint16_t first_;
    std::uint16_t last_;
    std::vector<mapped_node> nodes_;
    std::vector<bool> used_;       // a node holds the port now
    std::vector<bool> used_once_;  // a node held it since the start
    std::uint64_t refused_ = 0;
};

/// An address_book that is a port_map and nothing else: ports are handed out, nothing listens,
/// MOVEDs are counted. For tests and fuzzing of the rewriting (the sidecar's own book is
/// app::cluster_bridge, which opens a listener and a pool per port).
class port_map_book final : public address_book {
  public:
    explicit port_map_book(std::uint16_t first = 7000, std::uint16_t last = 7099)
        : map_(first, last) {}
    std::optional<std::uint16_t> local_port(const node& n) override {
        const auto* m = map_.ensure(n);
        return m != nullptr ? std::optional<std::uint16_t>(m->local_port) : std::nullopt;
    }
    const std::string& local_host() const override { return host_; }
    void redirected() override { ++redirects_; }

    port_map& map() { return map_; }
    std::size_t redirects() const { return redirects_; }

  private:
    port_map map_;
    std::string host_ = "127.0.0.1";
    std::size_t redirects_ = 0;
};

}  // namespace redis_sidecar::cluster
