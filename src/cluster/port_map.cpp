#include "redis_sidecar/cluster/port_map.hpp"

#include <algorithm>

namespace redis_sidecar::cluster {

port_map::port_map(std::uint16_t first, std::uint16_t last)
    : first_(first),
      last_(std::max(first, last)),
      used_(capacity(), false),
      used_once_(capacity(), false) {}

void port_map::add_alias(mapped_node& m, const std::string& host, std::uint16_t port) {
    if (host.empty() || host == "?") return;
    auto a = host;
    a.push_back(':');
    a.append(std::to_string(port));
    if (std::find(m.aliases.begin(), m.aliases.end(), a) == m.aliases.end()) {
        m.aliases.push_back(std::move(a));
    }
}

mapped_node* port_map::lookup(const node& n) {
    if (!n.id.empty()) {
        for (auto& m : nodes_) {
            if (m.id == n.id) return &m;
        }
    }
    for (const auto* h : {&n.hostname, &n.endpoint, &n.ip}) {
        if (h->empty()) continue;
        auto* m = find_mut(*h, n.port);
        // A node first seen in a MOVED (no id) is the same node once a topology names it.
        if (m != nullptr && (m->id.empty() || n.id.empty())) return m;
    }
    return nullptr;
}

const mapped_node* port_map::ensure(const node& n) {
    return ensure_mut(n);
}

mapped_node* port_map::ensure_mut(const node& n) {
    if (n.host().empty() || n.port == 0) return nullptr;
    auto* m = lookup(n);
    if (m == nullptr) {
        const auto port = take_port();
        if (!port) {
            ++refused_;
            return nullptr;
        }
        nodes_.push_back({});
        m = &nodes_.back();
        m->local_port = *port;
        m->host = n.host();
        m->port = n.port;
    }
    if (m->id.empty()) m->id = n.id;
    add_alias(*m, n.hostname, n.port);
    add_alias(*m, n.endpoint, n.port);
    add_alias(*m, n.ip, n.port);
    return m;
}

const mapped_node* port_map::find(std::string_view host, std::uint16_t port) const {
    return const_cast<port_map*>(this)->find_mut(host, port);
}

mapped_node* port_map::find_mut(std::string_view host, std::uint16_t port) {
    std::string a(host);
    a.push_back(':');
    a.append(std::to_string(port));
    for (auto& m : nodes_) {
        if (std::find(m.aliases.begin(), m.aliases.end(), a) != m.aliases.end()) return &m;
    }
    return nullptr;
}

const mapped_node* port_map::find_port(std::uint16_t local_port) const {
    for (const auto& m : nodes_) {
        if (m.local_port == local_port) return &m;
    }
    return nullptr;
}

std::vector<mapped_node> port_map::apply(const topology& t) {
    for (auto& m : nodes_) m.in_topology = false;
    // Primaries first: when the range is too small, every slot still has a port.
    for (const bool primaries : {true, false}) {
        for (const auto& s : t.shards) {
            for (const auto& n : s.nodes) {
                if (n.primary != primaries) continue;
                auto* m = ensure_mut(n);
                if (m == nullptr) continue;
                m->in_topology = true;
                m->primary = n.primary;
            }
        }
    }
    std::vector<mapped_node> gone;
    auto keep = std::stable_partition(nodes_.begin(), nodes_.end(),
                                      [](const mapped_node& m) { return m.in_topology; });
    for (auto it = keep; it != nodes_.end(); ++it) {
        used_[it->local_port - first_] =
            false;  // (never a reserved port: those are not handed out)
        gone.push_back(std::move(*it));
    }
    nodes_.erase(keep, nodes_.end());
    return gone;
}

void port_map::reserve(std::uint16_t port) {
    if (port < first_ || port > last_) return;
    used_[port - first_] = true;
    used_once_[port - first_] = true;
}

// The lowest port never used, else the lowest free one.
std::optional<std::uint16_t> port_map::take_port() {
    std::optional<std::size_t> free;
    for (std::size_t i = 0; i < used_.size(); ++i) {
        if (used_[i]) continue;
        if (!used_once_[i]) {
            free = i;
            break;
        }
        if (!free) free = i;
    }
    if (!free) return std::nullopt;
    used_[*free] = true;
    used_once_[*free] = true;
    return static_cast<std::uint16_t>(first_ + *free);
}

}  // namespace redis_sidecar::cluster
