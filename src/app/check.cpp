#include "check.hpp"

#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "iam_auth.hpp"
#include "identity.hpp"
#include "redis_sidecar/cluster/topology.hpp"
#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/config/resolver.hpp"
#include "redis_sidecar/config/values.hpp"
#include "redis_sidecar/upstream/connection.hpp"
#include "redis_sidecar/upstream/error.hpp"
#include "redis_sidecar/upstream/pool.hpp"
#include "redis_sidecar/upstream/tls.hpp"

namespace redis_sidecar::app {

namespace {

namespace upstream = redis_sidecar::upstream;
namespace asio = boost::asio;
using clock = std::chrono::steady_clock;
using upstream::error;

struct step {
    std::string name;
    bool ok = false;
    double ms = 0;
    std::string detail;
    std::string hint;
};

// What most likely went wrong, for the person who just pointed the sidecar at their cache.
std::string hint_for(const std::string& step_name, error e, const config::settings& s) {
    const auto& up = s.upstream;
    const auto port = std::to_string(up.port);
    switch (e) {
        case error::dns_failure:
            return "the name does not resolve from here: check the endpoint (ElastiCache's primary "
                   "endpoint, without a scheme or port) and the cluster's DNS";
        case error::connection_refused:
            return "nothing listens on port " + port +
                   ": check the port (ElastiCache uses 6379) and that the server is up";
        case error::timeout:
            if (step_name == "tcp") {
                return "no answer to the TCP connect: a security group or NetworkPolicy probably "
                       "drops traffic to port " +
                       port + " (allow egress from this pod to the cache)";
            }
            return up.tls.enabled
                       ? "the server accepted TCP but did not complete " + step_name +
                             " in time: check that this port speaks TLS, and the server's load"
                       : "the server accepted TCP but did not answer: if the cluster has "
                         "in-transit "
                         "encryption, set REDIS_TLS_ENABLED=true (or use rediss://)";
        case error::tls_certificate_verify_failed:
            if (config::is_ip_literal(up.tls.server_name)) {
                return "the certificate names hosts, not the IP " + up.tls.server_name +
                       ": use the endpoint's host name, or set REDIS_TLS_SERVER_NAME";
            }
            return "check that the certificate names " + up.tls.server_name +
                   " and that its CA is trusted (REDIS_TLS_CA_FILE for a private CA)";
        case error::tls_handshake_failed:
            return "the server does not speak TLS on port " + port +
                   ": in-transit encryption is probably off (set REDIS_TLS_ENABLED=false), or "
                   "the server requires a client certificate (REDIS_TLS_CERT_FILE/KEY_FILE)";
        case error::wrongpass:
            if (s.iam.enabled) {
                return "ElastiCache refused the IAM token: check that user " +
                       up.username.value_or("") +
                       " is IAM-enabled (authentication mode iam, user id equal to its name), "
                       "that the role allows elasticache:Connect on the " +
                       std::string(s.iam.serverless ? "serverlesscache/" : "replicationgroup/") +
                       s.iam.cache_name + " and user/" + up.username.value_or("") +
                       " resources, and that REDIS_IAM_CACHE_NAME / REDIS_IAM_SERVERLESS name "
                       "this cache";
            }
            return "the password or user name is wrong: check the Secret's value (a trailing "
                   "newline or space from `kubectl create secret --from-file` breaks other "
                   "clients; the sidecar trims it) and REDIS_USERNAME (ElastiCache RBAC users)";
        case error::noauth:
            return "the server requires a password and none is set: set REDIS_PASSWORD_FILE, "
                   "ELASTICACHE_AUTH_TOKEN or the secrets directory's `password`";
        case error::noperm:
            return "the ACL user may not run a command the sidecar needs (HELLO, PING, SELECT, "
                   "CLIENT SETNAME): grant them, e.g. +@connection +ping +select";
        case error::io_error:
            return up.tls.enabled
                       ? "the server closed the connection: check the server's log, and whether "
                         "it has reached maxclients (every connection taken: CurrConnections)"
                       : "the server closed the connection: if the cluster has in-transit "
                         "encryption, set REDIS_TLS_ENABLED=true (or use rediss://); or the "
                         "server has reached maxclients (every connection taken: CurrConnections)";
        case error::loading:
            return "the server is loading its dataset; try again shortly";
        case error::max_clients:
            return "the server refuses new connections: maxclients is reached (ElastiCache: "
                   "65,000 per node). Check CurrConnections and who holds the connections: "
                   "other clients, or REDIS_MAX_CONNECTIONS times the number of pods";
        default:
            return "see the detail above";
    }
}

// Why AWS credentials could not be had, and what to look at.
std::string iam_hint(const std::string& code) {
    if (code == "InvalidIdentityToken" || code == "ExpiredTokenException") {
        return "STS refused the service account token: check the ServiceAccount's "
               "eks.amazonaws.com/role-arn annotation, the cluster's IAM OIDC provider and the "
               "role's trust policy (audience sts.amazonaws.com)";
    }
    if (code == "AccessDenied") {
        return "the role's trust policy does not let this service account assume it "
               "(sts:AssumeRoleWithWebIdentity, condition on system:serviceaccount:NS:NAME)";
    }
    if (code == "http") {
        return "STS or the credentials agent cannot be reached: allow egress to "
               "sts.<region>.amazonaws.com (or an STS VPC endpoint), or check that the EKS Pod "
               "Identity Agent add-on runs";
    }
    if (code == "token_file")
        return "the projected token file is not mounted where the variable says";
    return "see the detail above";
}

class checker {
  public:
    checker(const config::settings& s) : settings_(s) {}

    bool run() {
        if (settings_.iam.enabled && !iam_token()) return false;
        const auto& up = settings_.upstream;
        add({"config", true, 0,
             config::join_host_port(up.host, up.port) + (up.tls.enabled ? ", TLS" : ", no TLS") +
                 (up.username ? ", user " + *up.username : "") +
                 (settings_.iam.enabled ? ", IAM token"
                  : up.password         ? ", password set"
                                        : ", no password") +
                 (up.db != 0 ? ", db " + std::to_string(up.db) : ""),
             ""});
        std::unique_ptr<upstream::tls_client> tls;
        if (up.tls.enabled) {
            try {
                tls = std::make_unique<upstream::tls_client>(up.tls);
            } catch (const std::exception& e) {
                add({"tls", false, 0, e.what(), "fix the TLS files' paths or contents"});
                return false;
            }
        }
        asio::io_context io;
        io_ = &io;
        tls_ = tls.get();
        auto resolve = upstream::make_resolver(io.get_executor(), up);
        const auto dns_start = clock::now();
        bool ok = false;
        resolve(up.host, up.port,
                [&](std::error_code ec, std::vector<upstream::tcp::endpoint> eps) {
                    if (ec) {
                        add({"dns", false, ms_since(dns_start), ec.message(),
                             hint_for("dns", error::dns_failure, settings_)});
                        return;
                    }
                    std::string addresses;
                    for (const auto& ep : eps) {
                        addresses += (addresses.empty() ? "" : ", ") + ep.address().to_string();
                    }
                    add({"dns", true, ms_since(dns_start), addresses, ""});
                    open(io, tls.get(), std::move(eps), ok);
                });
        io.run();
        return ok;
    }

    const std::vector<step>& steps() const { return steps_; }

  private:
    // IAM: credentials and a token first; the token is the password of every step after.
    bool iam_token() {
        const auto start = clock::now();
        const auto t = iam_token_once(settings_, config::environment_map());
        if (!t.token) {
            add({"aws credentials", false, ms_since(start), t.error, iam_hint(t.error_code)});
            return false;
        }
        std::string detail = t.source;
        if (t.credentials_ttl_seconds) {
            detail += ", expire in " +
                      std::to_string(static_cast<long long>(*t.credentials_ttl_seconds)) + " s";
        }
        add({"aws credentials", true, ms_since(start), detail, ""});
        add({"iam token", true, 0,
             "for user " + settings_.upstream.username.value_or("") + " on " +
                 (settings_.iam.serverless ? "serverless cache " : "replication group ") +
                 settings_.iam.cache_name + " in " + settings_.iam.region,
             ""});
        settings_.upstream.password = *t.token;
        return true;
    }

    static double ms_since(clock::time_point t) {
        return std::chrono::duration<double, std::milli>(clock::now() - t).count();
    }

    void add(step s) { steps_.push_back(std::move(s)); }

    void open(asio::io_context& io, upstream::tls_client* tls,
              std::vector<upstream::tcp::endpoint> eps, bool& ok) {
        upstream::open_options o;
        o.upstream = &settings_.upstream;
        o.timeout = settings_.pool.connection_timeout;
        o.keepalive = settings_.pool.socket_keepalive;
        o.client_name = client_name() + ":check";
        o.trace = &trace_;
        upstream::async_open(
            io.get_executor(), tls, 1, std::move(eps), o,
            [this, &ok](std::error_code ec, std::shared_ptr<upstream::connection> c,
                        const std::string& detail) {
                for (const auto& t : trace_) {
                    step s{t.name, t.ok, std::chrono::duration<double, std::milli>(t.took).count(),
                           t.detail, ""};
                    if (!t.ok) s.hint = hint_for(t.name, upstream::classify(ec), settings_);
                    add(std::move(s));
                }
                if (ec) {
                    if (trace_.empty() || trace_.back().ok) {
                        add({"connect", false, 0, detail,
                             hint_for("connect", upstream::classify(ec), settings_)});
                    }
                    return;
                }
                ping(std::move(c), ok);
            });
    }

    // A separate PING for a clean round-trip time, then what HELLO said about the server.
    void ping(std::shared_ptr<upstream::connection> c, bool& ok) {
        const auto start = clock::now();
        upstream::async_command(
            c, resp::format_command({"PING"}), 1, settings_.pool.socket_timeout,
            [this, c, start, &ok](upstream::command_result r) {
                const double rtt = ms_since(start);
                if (r.ec || r.replies.front().type == resp::reply_type::error) {
                    add({"ping", false, rtt, r.ec ? r.ec.message() : r.replies.front().str,
                         hint_for("ping",
                                  r.ec ? upstream::classify(r.ec)
                                       : upstream::classify_reply(r.replies.front().str),
                                  settings_)});
                    return;
                }
                char buf[64];
                std::snprintf(buf, sizeof buf, "round trip %.2f ms", rtt);
                add({"rtt", true, rtt, buf, ""});
                const auto& info = c->info();
                add({"role", true, 0,
                     info.role.empty() ? "unknown (server without HELLO)" : info.role, ""});
                add({"version", true, 0, info.version.empty() ? "unknown" : info.version, ""});
                if (settings_.cluster.mode == "off") {
                    ok = true;
                    c->close();
                    return;
                }
                cluster_topology(c, true, ok);
            });
    }

    // Cluster mode: the topology through the configured endpoint, then every node on its own.
    void cluster_topology(std::shared_ptr<upstream::connection> c, bool shards, bool& ok) {
        upstream::async_command(
            c, resp::format_command({"CLUSTER", shards ? "SHARDS" : "SLOTS"}), 1,
            settings_.pool.socket_timeout, [this, c, shards, &ok](upstream::command_result r) {
                const auto& reply = r.replies.front();
                if (!r.ec && shards && reply.type == resp::reply_type::error &&
                    reply.str.find("nknown") != std::string::npos) {
                    cluster_topology(c, false, ok);  // before Redis 7: CLUSTER SLOTS
                    return;
                }
                c->close();
                if (r.ec) {
                    add({"cluster", false, 0, r.ec.message(), "see the detail above"});
                    return;
                }
                if (reply.type == resp::reply_type::error) {
                    if (reply.str.find("cluster support disabled") != std::string::npos) {
                        // auto: nothing to say about a plain upstream.
                        ok = settings_.cluster.mode != "on";
                        if (!ok) {
                            add({"cluster", false, 0, "the upstream is not a cluster",
                                 "REDIS_SIDECAR_CLUSTER=on needs a cluster-mode upstream "
                                 "(ElastiCache cluster mode enabled, Serverless); use auto"});
                        }
                        return;
                    }
                    add({"cluster", false, 0, reply.str,
                         "the ACL user needs +cluster|shards +cluster|slots +cluster|nodes"});
                    return;
                }
                std::string error;
                const auto v = resp::to_value(reply);
                auto t =
                    shards ? cluster::topology_from_shards(v, settings_.upstream.tls.enabled, error)
                           : cluster::topology_from_slots(v, error);
                if (!t) {
                    add({"cluster", false, 0, error, "the topology reply was not understood"});
                    return;
                }
                const auto nodes = t->node_count();
                const bool covered = t->covers_all_slots();
                add({"cluster", covered, 0,
                     std::to_string(t->shards.size()) + " shards, " + std::to_string(nodes) +
                         " nodes, " + (covered ? "every slot served" : "some slots unserved"),
                     covered ? "" : "the cluster is not fully set up or is failing over"});
                std::vector<cluster::node> list;
                for (const auto& s : t->shards) {
                    for (const auto& n : s.nodes) list.push_back(n);
                }
                const auto range = config::parse_port_range(settings_.cluster.ports);
                const auto capacity = range ? range->second - range->first + 1u : 0u;
                if (list.size() > capacity) {
                    add({"ports", false, 0,
                         std::to_string(list.size()) + " nodes, " + std::to_string(capacity) +
                             " ports in " + settings_.cluster.ports,
                         "widen REDIS_SIDECAR_CLUSTER_PORTS to at least one port per node"});
                    return;
                }
                nodes_ = std::move(list);
                ok = covered;
                check_node(0, ok);
            });
    }

    // One TLS + AUTH + PING per node, each with its own settings (SNI = the node's name).
    void check_node(std::size_t i, bool& ok) {
        if (i >= nodes_.size()) return;
        const auto& n = nodes_[i];
        auto up = std::make_shared<config::upstream_settings>(settings_.upstream);
        up->host = n.host();
        up->port = n.port;
        up->tls.server_name = up->host;  // SNI and verification: the node's own name
        auto s = std::make_shared<config::settings>(settings_);
        s->upstream = *up;
        const auto name = "node " + n.address();
        const auto start = clock::now();
        auto resolve = upstream::make_resolver(io_->get_executor(), *up);
        resolve(up->host, up->port,
                [this, i, up, s, name, start, &ok](std::error_code ec,
                                                   std::vector<upstream::tcp::endpoint> eps) {
                    if (ec) {
                        add({name, false, ms_since(start), ec.message(),
                             hint_for("dns", error::dns_failure, *s)});
                        ok = false;
                        check_node(i + 1, ok);
                        return;
                    }
                    upstream::open_options o;
                    o.upstream = up.get();
                    o.timeout = settings_.pool.connection_timeout;
                    o.keepalive = settings_.pool.socket_keepalive;
                    o.client_name = client_name() + ":check";
                    upstream::async_open(
                        io_->get_executor(), tls_, 1, std::move(eps), o,
                        [this, i, up, s, name, start, &ok](std::error_code oec,
                                                           std::shared_ptr<upstream::connection> c,
                                                           const std::string& detail) {
                            if (oec) {
                                add({name, false, ms_since(start), detail,
                                     hint_for("connect", upstream::classify(oec), *s)});
                                ok = false;
                            } else {
                                const auto& role = c->info().role;
                                add({name, true, ms_since(start),
                                     (role.empty() ? std::string("connected") : role) +
                                         (settings_.upstream.tls.enabled ? ", TLS" : "") +
                                         ", handshake and PING answered",
                                     ""});
                                c->close();
                            }
                            check_node(i + 1, ok);
                        });
                });
    }

    config::settings settings_;  // a copy: IAM puts its token in as the password
    asio::io_context* io_ = nullptr;
    upstream::tls_client* tls_ = nullptr;
    std::vector<cluster::node> nodes_;
    std::vector<step> steps_;
    std::vector<upstream::open_step> trace_;
};

}  // namespace

int run_check(const config::settings& s, bool json_output) {
    checker c(s);
    const bool ok = c.run();
    if (json_output) {
        nlohmann::json j;
        j["ok"] = ok;
        j["upstream"] = config::join_host_port(s.upstream.host, s.upstream.port);
        j["steps"] = nlohmann::json::array();
        for (const auto& st : c.steps()) {
            nlohmann::json step_json = {
                {"name", st.name}, {"ok", st.ok}, {"ms", st.ms}, {"detail", st.detail}};
            if (!st.hint.empty()) step_json["hint"] = st.hint;
            j["steps"].push_back(std::move(step_json));
        }
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << "redis-sidecar check: "
                  << config::join_host_port(s.upstream.host, s.upstream.port) << "\n";
        for (const auto& st : c.steps()) {
            char timing[32] = "";
            if (st.ms > 0) std::snprintf(timing, sizeof timing, " (%.1f ms)", st.ms);
            std::cout << "  " << (st.ok ? "ok  " : "FAIL") << "  " << st.name;
            std::cout << std::string(st.name.size() < 8 ? 8 - st.name.size() : 1, ' ') << st.detail
                      << timing << "\n";
            if (!st.hint.empty()) std::cout << "        hint: " << st.hint << "\n";
        }
        std::cout << (ok ? "all checks passed" : "check failed") << "\n";
    }
    return ok ? 0 : 1;
}

}  // namespace redis_sidecar::app
