#include "redis_sidecar/cluster/rewrite.hpp"

#include <algorithm>
#include <cctype>

#include "fields.hpp"
#include "redis_sidecar/resp/value.hpp"

namespace redis_sidecar::cluster {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

const char* command_of(reply_kind kind) {
    switch (kind) {
        case reply_kind::slots:
            return "CLUSTER SLOTS";
        case reply_kind::shards:
            return "CLUSTER SHARDS";
        case reply_kind::nodes:
            return "CLUSTER NODES";
        case reply_kind::replicas:
            return "CLUSTER REPLICAS";
        case reply_kind::transaction:
            return "EXEC";
        case reply_kind::none:
            break;
    }
    return "reply";
}

resp::value bulk(std::string s) {
    resp::value v;
    v.type = '$';
    v.text = std::move(s);
    return v;
}

resp::value integer_value(long long n) {
    resp::value v;
    v.type = ':';
    v.text = std::to_string(n);
    return v;
}

class rewriter {
  public:
    explicit rewriter(address_book& book) : book_(book) {}

    std::optional<std::uint16_t> port_for(const node& n) {
        auto p = book_.local_port(n);
        if (!p) ++unmapped_;
        return p;
    }

    // CLUSTER SLOTS: [[first, last, [host, port, id, {ip, hostname}], replicas...], ...]
    bool slots(resp::value& reply) {
        if (reply.type != '*') return false;
        std::vector<resp::value> kept;
        for (auto& entry : reply.items) {
            if (entry.type != '*' || entry.items.size() < 3) return false;
            std::vector<resp::value> nodes;
            bool primary_kept = false;
            for (std::size_t i = 2; i < entry.items.size(); ++i) {
                auto& e = entry.items[i];
                if (e.type != '*' || e.items.size() < 2 || !e.items[0].is_string()) return false;
                node n;
                n.endpoint = e.items[0].text;
                long long port = 0;
                if (!detail::integer(e.items[1], port) || port < 0 || port > 65535) return false;
                n.port = static_cast<std::uint16_t>(port);
                if (e.items.size() > 2) n.id = detail::text(&e.items[2]);
                if (e.items.size() > 3 && detail::is_map_like(e.items[3])) {
                    n.ip = detail::text(detail::field(e.items[3], "ip"));
                    n.hostname = detail::text(detail::field(e.items[3], "hostname"));
                }
                n.primary = i == 2;
                const auto local = port_for(n);
                if (!local) continue;
                if (i == 2) primary_kept = true;
                e.items[0] = bulk(book_.local_host());
                e.items[1] = integer_value(*local);
                if (e.items.size() > 3 && detail::is_map_like(e.items[3])) {
                    rewrite_metadata(e.items[3]);
                }
                nodes.push_back(std::move(e));
            }
            if (!primary_kept) continue;  // a range nobody here can serve: left out
            entry.items.resize(2);
            for (auto& n : nodes) entry.items.push_back(std::move(n));
            kept.push_back(std::move(entry));
        }
        reply.items = std::move(kept);
        return true;
    }

    // CLUSTER SHARDS: [{slots: [...], nodes: [{id, port|tls-port, ip, endpoint, hostname, ...}]}]
    bool shards(resp::value& reply) {
        if (reply.type != '*') return false;
        for (auto& entry : reply.items) {
            if (!detail::is_map_like(entry)) return false;
            auto* nodes = detail::field(entry, "nodes");
            if (nodes == nullptr || nodes->type != '*') return false;
            std::vector<resp::value> kept;
            for (auto& item : nodes->items) {
                if (!detail::is_map_like(item)) return false;
                node n;
                n.id = detail::text(detail::field(item, "id"));
                n.ip = detail::text(detail::field(item, "ip"));
                n.endpoint = detail::text(detail::field(item, "endpoint"));
                n.hostname = detail::text(detail::field(item, "hostname"));
                long long port = 0;
                const auto* p = detail::field(item, "tls-port");
                if (p == nullptr) p = detail::field(item, "port");
                if (p == nullptr || !detail::integer(*p, port) || port < 0 || port > 65535) {
                    return false;
                }
                n.port = static_cast<std::uint16_t>(port);
                const auto local = port_for(n);
                if (!local) continue;
                // Locally there is one plain port per node: "port" is it, "tls-port" goes.
                std::vector<resp::value> fields;
                for (std::size_t i = 0; i + 1 < item.items.size(); i += 2) {
                    const auto& key = item.items[i].text;
                    auto& val = item.items[i + 1];
                    if (key == "tls-port" || key == "hostname") continue;
                    if (key == "port") {
                        val = integer_value(*local);
                    } else if (key == "ip" || key == "endpoint") {
                        val = bulk(book_.local_host());
                    }
                    fields.push_back(std::move(item.items[i]));
                    fields.push_back(std::move(val));
                }
                if (detail::field(item, "port") == nullptr) {
                    fields.push_back(bulk("port"));
                    fields.push_back(integer_value(*local));
                }
                item.items = std::move(fields);
                kept.push_back(std::move(item));
            }
            nodes->items = std::move(kept);
        }
        return true;
    }

    // One CLUSTER NODES line: the address field becomes the local one.
    bool line(std::string_view in, std::string& out) {
        const auto n = node_from_line(in);
        if (!n) return false;
        const auto first = in.find(' ');
        const auto second = in.find(' ', first + 1);
        if (n->port == 0 || n->ip.empty()) {  // noaddr, handshake: no address to hide
            out.append(in);
            return true;
        }
        const auto local = port_for(*n);
        if (!local) return true;  // left out
        out.append(in.substr(0, first + 1));
        out.append(join_address(book_.local_host(), *local)).append("@0");
        out.append(in.substr(second));
        return true;
    }

    // Redis ends every line with "\n"; lines left out leave no blank line behind.
    bool node_lines(std::string& text) {
        std::string out;
        std::size_t pos = 0;
        while (pos < text.size()) {
            auto end = text.find('\n', pos);
            if (end == std::string::npos) end = text.size();
            const auto l = std::string_view(text).substr(pos, end - pos);
            pos = end + 1;
            if (l.empty()) continue;
            const auto before = out.size();
            if (!line(l, out)) return false;
            if (out.size() != before) out.push_back('\n');
        }
        text = std::move(out);
        return true;
    }

    // CLUSTER NODES: one string (a verbatim "txt:" string in RESP3).
    bool nodes(resp::value& reply) {
        if (reply.type == '=') {
            if (reply.text.rfind("txt:", 0) != 0) return false;
            auto body = reply.text.substr(4);
            if (!node_lines(body)) return false;
            reply.text = "txt:" + body;
            return true;
        }
        if (reply.type != '$' || reply.null) return false;
        return node_lines(reply.text);
    }

    // CLUSTER REPLICAS: an array of CLUSTER NODES lines.
    bool replicas(resp::value& reply) {
        if (reply.type != '*') return false;
        std::vector<resp::value> kept;
        for (auto& item : reply.items) {
            if (!item.is_string()) return false;
            std::string out;
            if (!line(item.text, out)) return false;
            if (out.empty()) continue;
            item.text = std::move(out);
            kept.push_back(std::move(item));
        }
        reply.items = std::move(kept);
        return true;
    }

    bool apply(reply_kind kind, resp::value& v) {
        switch (kind) {
            case reply_kind::slots:
                return slots(v);
            case reply_kind::shards:
                return shards(v);
            case reply_kind::nodes:
                return nodes(v);
            case reply_kind::replicas:
                return replicas(v);
            case reply_kind::transaction:
            case reply_kind::none:
                break;
        }
        return true;
    }

    std::size_t unmapped() const { return unmapped_; }

  private:
    void rewrite_metadata(resp::value& meta) {
        std::vector<resp::value> fields;
        for (std::size_t i = 0; i + 1 < meta.items.size(); i += 2) {
            const auto& key = meta.items[i].text;
            if (key == "hostname") continue;
            if (key == "ip") meta.items[i + 1] = bulk(book_.local_host());
            fields.push_back(std::move(meta.items[i]));
            fields.push_back(std::move(meta.items[i + 1]));
        }
        meta.items = std::move(fields);
    }

    address_book& book_;
    std::size_t unmapped_ = 0;
};

}  // namespace

reply_kind kind_of(std::string_view name, std::string_view subcommand) {
    if (!iequals(name, "CLUSTER")) return reply_kind::none;
    if (iequals(subcommand, "SLOTS")) return reply_kind::slots;
    if (iequals(subcommand, "SHARDS")) return reply_kind::shards;
    if (iequals(subcommand, "NODES")) return reply_kind::nodes;
    if (iequals(subcommand, "REPLICAS") || iequals(subcommand, "SLAVES")) {
        return reply_kind::replicas;
    }
    return reply_kind::none;
}

std::string join_address(std::string_view host, std::uint16_t port) {
    std::string out(host);
    out.push_back(':');
    out.append(std::to_string(port));
    return out;
}

rewrite_result rewrite_reply(reply_kind kind, std::string_view reply, address_book& book) {
    rewrite_result result;
    // Errors (not a cluster, a wrong argument) carry no address: as they are, unless a redirect.
    if (!reply.empty() && (reply.front() == '-' || reply.front() == '!')) {
        if (reply.front() == '-' && reply.size() >= 3) {
            if (auto r = rewrite_redirect(reply.substr(1, reply.size() - 3), book)) return *r;
        }
        result.bytes.assign(reply);
        return result;
    }
    // +QUEUED (the command is in a MULTI) and the like: no topology.
    if (!reply.empty() && reply.front() == '+') {
        result.bytes.assign(reply);
        return result;
    }
    if (kind == reply_kind::none || kind == reply_kind::transaction) {
        result.bytes.assign(reply);
        return result;
    }
    std::string error;
    auto value = resp::parse_value(reply, error);
    bool ok = value.has_value();
    rewriter w(book);
    if (ok) {
        ok = w.apply(kind, *value);
        if (!ok) error = "unexpected shape";
    }
    if (!ok) {
        result.error = std::string(command_of(kind)) + ": " + error;
        result.bytes =
            "-ERR redis-sidecar: could not rewrite the node addresses of the upstream's " +
            result.error + "\r\n";
        return result;
    }
    result.bytes = resp::serialize(*value);
    result.rewritten = true;
    result.unmapped = w.unmapped();
    return result;
}

rewrite_result rewrite_transaction(std::string_view reply,
                                   const std::vector<queued_command>& queued, address_book& book) {
    rewrite_result result;
    std::string error;
    auto value = resp::parse_value(reply, error);
    if (value && (value->type != '*' || value->null)) {  // EXECABORT, nil after WATCH
        result.bytes.assign(reply);
        return result;
    }
    rewriter w(book);
    bool ok = value.has_value();
    if (ok) {
        for (const auto& q : queued) {
            if (q.index >= value->items.size()) continue;
            auto& item = value->items[q.index];
            if (item.type == '-' || item.type == '!') continue;  // the command failed
            if (!w.apply(q.kind, item)) {
                ok = false;
                error = "unexpected shape";
                break;
            }
        }
    }
    if (!ok) {
        result.error = "EXEC: " + error;
        result.bytes =
            "-ERR redis-sidecar: could not rewrite the node addresses of the upstream's " +
            result.error + "\r\n";
        return result;
    }
    for (auto& item : value->items) {
        if (item.type != '-') continue;
        if (auto r = rewrite_redirect(item.text, book)) {
            item.text = r->bytes.substr(1, r->bytes.size() - 3);
            result.unmapped += r->unmapped;
        }
    }
    result.bytes = resp::serialize(*value);
    result.rewritten = true;
    result.unmapped += w.unmapped();
    return result;
}

std::optional<rewrite_result> rewrite_redirect(std::string_view line, address_book& book) {
    const auto r = parse_redirect(line);
    if (!r) return std::nullopt;
    rewrite_result result;
    if (r->kind == "MOVED") book.redirected();
    node n;
    n.endpoint.assign(r->host);
    n.port = r->port;
    const auto local = book.local_port(n);
    if (!local) {
        result.unmapped = 1;
        result.error = "no local port for a redirect target";
        result.bytes =
            "-CLUSTERDOWN redis-sidecar: no local port is free for the node this slot "
            "moved to (REDIS_SIDECAR_CLUSTER_PORTS is full)\r\n";
        return result;
    }
    result.bytes.push_back('-');
    result.bytes.append(r->kind).push_back(' ');
    result.bytes.append(r->slot).push_back(' ');
    result.bytes.append(join_address(book.local_host(), *local)).append("\r\n");
    result.rewritten = true;
    return result;
}

}  // namespace redis_sidecar::cluster
