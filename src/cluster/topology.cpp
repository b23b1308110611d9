#include "redis_sidecar/cluster/topology.hpp"

#include <algorithm>
#include <charconv>

#include "fields.hpp"

namespace redis_sidecar::cluster {

std::string node::host() const {
    if (!hostname.empty()) return hostname;
    if (!endpoint.empty() && endpoint != "?") return endpoint;
    return ip;
}

std::string node::address() const {
    auto h = host();
    h.push_back(':');
    h.append(std::to_string(port));
    return h;
}

bool topology::covers_all_slots() const {
    std::vector<bool> covered(slot_count, false);
    for (const auto& s : shards) {
        const bool has_primary =
            std::any_of(s.nodes.begin(), s.nodes.end(), [](const node& n) { return n.primary; });
        if (!has_primary) continue;
        for (const auto& r : s.slots) {
            for (unsigned i = r.first; i <= r.last && i < slot_count; ++i) covered[i] = true;
        }
    }
    return std::all_of(covered.begin(), covered.end(), [](bool b) { return b; });
}

std::size_t topology::node_count() const {
    std::size_t n = 0;
    for (const auto& s : shards) n += s.nodes.size();
    return n;
}

namespace {

bool parse_port(std::string_view s, std::uint16_t& port) {
    unsigned v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return false;
    port = static_cast<std::uint16_t>(v);
    return true;
}

bool add_range(shard& s, long long first, long long last) {
    if (first < 0 || last < first || last >= slot_count) return false;
    s.slots.push_back({static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last)});
    return true;
}

}  // namespace

std::optional<topology> topology_from_shards(const resp::value& reply, bool tls,
                                             std::string& error) {
    if (reply.type != '*' || reply.null) {
        error = "CLUSTER SHARDS: not an array";
        return std::nullopt;
    }
    topology t;
    for (const auto& entry : reply.items) {
        if (!detail::is_map_like(entry)) {
            error = "CLUSTER SHARDS: a shard is not a map";
            return std::nullopt;
        }
        shard s;
        const auto* slots = detail::field(entry, "slots");
        const auto* nodes = detail::field(entry, "nodes");
        if (slots == nullptr || nodes == nullptr || slots->type != '*' || nodes->type != '*' ||
            slots->items.size() % 2 != 0) {
            error = "CLUSTER SHARDS: a shard without slots or nodes";
            return std::nullopt;
        }
        for (std::size_t i = 0; i + 1 < slots->items.size(); i += 2) {
            long long a = 0;
            long long b = 0;
            if (!detail::integer(slots->items[i], a) || !detail::integer(slots->items[i + 1], b) ||
                !add_range(s, a, b)) {
                error = "CLUSTER SHARDS: a bad slot range";
                return std::nullopt;
            }
        }
        for (const auto& item : nodes->items) {
            if (!detail::is_map_like(item)) {
                error = "CLUSTER SHARDS: a node is not a map";
                return std::nullopt;
            }
            node n;
            n.id = detail::text(detail::field(item, "id"));
            n.ip = detail::text(detail::field(item, "ip"));
            n.endpoint = detail::text(detail::field(item, "endpoint"));
            n.hostname = detail::text(detail::field(item, "hostname"));
            n.primary = detail::text(detail::field(item, "role")) == "master";
            const auto health = detail::text(detail::field(item, "health"));
            n.online = health.empty() || health == "online";
            long long port = 0;
            const auto* tls_port = detail::field(item, "tls-port");
            const auto* plain_port = detail::field(item, "port");
            const auto* chosen = tls && tls_port != nullptr ? tls_port : plain_port;
            if (chosen == nullptr) chosen = tls_port;
            if (chosen == nullptr || !detail::integer(*chosen, port) || port < 0 || port > 65535) {
                error = "CLUSTER SHARDS: a node without a port";
                return std::nullopt;
            }
            n.port = static_cast<std::uint16_t>(port);
            // The primary first, as CLUSTER SLOTS has it.
            if (n.primary) {
                s.nodes.insert(s.nodes.begin(), std::move(n));
            } else {
                s.nodes.push_back(std::move(n));
            }
        }
        t.shards.push_back(std::move(s));
    }
    return t;
}

namespace {

std::optional<node> node_from_slots_entry(const resp::value& v, bool primary) {
    if (v.type != '*' || v.items.size() < 2 || !v.items[0].is_string()) return std::nullopt;
    long long port = 0;
    if (!detail::integer(v.items[1], port) || port < 0 || port > 65535) return std::nullopt;
    node n;
    n.endpoint = v.items[0].text;
    n.port = static_cast<std::uint16_t>(port);
    n.primary = primary;
    if (v.items.size() > 2) n.id = detail::text(&v.items[2]);
    if (v.items.size() > 3 && detail::is_map_like(v.items[3])) {
        n.ip = detail::text(detail::field(v.items[3], "ip"));
        n.hostname = detail::text(detail::field(v.items[3], "hostname"));
    }
    return n;
}

}  // namespace

std::optional<topology> topology_from_slots(const resp::value& reply, std::string& error) {
    if (reply.type != '*' || reply.null) {
        error = "CLUSTER SLOTS: not an array";
        return std::nullopt;
    }
    topology t;
    for (const auto& entry : reply.items) {
        long long a = 0;
        long long b = 0;
        shard s;
        if (entry.type != '*' || entry.items.size() < 3 || !detail::integer(entry.items[0], a) ||
            !detail::integer(entry.items[1], b) || !add_range(s, a, b)) {
            error = "CLUSTER SLOTS: a bad slot range";
            return std::nullopt;
        }
        for (std::size_t i = 2; i < entry.items.size(); ++i) {
            auto n = node_from_slots_entry(entry.items[i], i == 2);
            if (!n) {
                error = "CLUSTER SLOTS: a bad node";
                return std::nullopt;
            }
            s.nodes.push_back(std::move(*n));
        }
        // Shards with several ranges come as several entries with the same primary.
        auto same = std::find_if(t.shards.begin(), t.shards.end(), [&](const shard& o) {
            return o.nodes.front().endpoint == s.nodes.front().endpoint &&
                   o.nodes.front().port == s.nodes.front().port;
        });
        if (same != t.shards.end()) {
            same->slots.push_back(s.slots.front());
        } else {
            t.shards.push_back(std::move(s));
        }
    }
    return t;
}

std::optional<node> node_from_line(std::string_view line) {
    // <id> <ip:port@cport[,hostname]> <flags> <primary> <ping> <pong> <epoch> <link> <slots>...
    std::vector<std::string_view> f;
    std::size_t pos = 0;
    while (pos < line.size() && f.size() < 4) {
        const auto end = std::min(line.find(' ', pos), line.size());
        f.push_back(line.substr(pos, end - pos));
        pos = end + 1;
    }
    if (f.size() < 4) return std::nullopt;
    node n;
    n.id.assign(f[0]);
    auto addr = f[1];
    if (const auto comma = addr.find(','); comma != std::string_view::npos) {
        n.hostname.assign(addr.substr(comma + 1));
        addr = addr.substr(0, comma);
    }
    if (const auto at = addr.find('@'); at != std::string_view::npos) addr = addr.substr(0, at);
    const auto colon = addr.rfind(':');
    if (colon == std::string_view::npos || !parse_port(addr.substr(colon + 1), n.port)) {
        return std::nullopt;
    }
    n.ip.assign(addr.substr(0, colon));
    n.endpoint = n.ip;
    const auto flags = f[2];
    n.primary = flags.find("master") != std::string_view::npos;
    n.online = flags.find("fail") == std::string_view::npos &&
               flags.find("noaddr") == std::string_view::npos;
    return n;
}

std::optional<redirect> parse_redirect(std::string_view line) {
    redirect r;
    if (line.rfind("MOVED ", 0) == 0) {
        r.kind = line.substr(0, 5);
    } else if (line.rfind("ASK ", 0) == 0) {
        r.kind = line.substr(0, 3);
    } else {
        return std::nullopt;
    }
    auto rest = line.substr(r.kind.size() + 1);
    const auto space = rest.find(' ');
    if (space == std::string_view::npos || space == 0) return std::nullopt;
    r.slot = rest.substr(0, space);
    const auto addr = rest.substr(space + 1);
    const auto colon = addr.rfind(':');
    if (colon == std::string_view::npos || !parse_port(addr.substr(colon + 1), r.port)) {
        return std::nullopt;
    }
    r.host = addr.substr(0, colon);
    return r;
}

}  // namespace redis_sidecar::cluster
