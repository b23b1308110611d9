#include "cluster_bridge.hpp"

#include <algorithm>

#include "redis_sidecar/bridge/context.hpp"
#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/config/values.hpp"
#include "redis_sidecar/log/logger.hpp"
#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/upstream/connection.hpp"
#include "redis_sidecar/upstream/resolve.hpp"

namespace redis_sidecar::app {

namespace {

std::string listener_host(const config::settings& s) {
    if (!s.listen.tcp) return "127.0.0.1";
    try {
        return config::parse_address(*s.listen.tcp).host;
    } catch (const config::address_error&) {
        return "127.0.0.1";
    }
}

// Local clients are in the pod: a wildcard listener is reached at loopback.
std::string advertised(const std::string& bind_host) {
    if (bind_host == "0.0.0.0") return "127.0.0.1";
    if (bind_host == "::") return "::1";
    return bind_host;
}

// The settings were validated; the fallback is the default range.
std::pair<std::uint16_t, std::uint16_t> port_range(const config::settings& s) {
    return config::parse_port_range(s.cluster.ports)
        .value_or(std::pair<std::uint16_t, std::uint16_t>{7000, 7099});
}

}  // namespace

cluster_bridge::cluster_bridge(asio::any_io_executor ex, const config::settings& s,
                               upstream::tls_client* tls, upstream::pool_options options,
                               std::shared_ptr<upstream::pool> seed,
                               std::shared_ptr<bridge::session_context> seed_context)
    : ex_(ex),
      settings_(s),
      tls_(tls),
      options_(std::move(options)),
      seed_(std::move(seed)),
      seed_context_(std::move(seed_context)),
      bind_host_(listener_host(s)),
      advertised_host_(advertised(bind_host_)),
      map_(port_range(s).first, port_range(s).second),
      timer_(ex) {
    // The node ports share the listener's address: never the listener's or the admin port.
    for (const auto* host_port : {s.listen.tcp ? &*s.listen.tcp : nullptr, &s.http.addr}) {
        if (host_port == nullptr) continue;
        try {
            if (const auto port = config::parse_address(*host_port).port) map_.reserve(*port);
        } catch (const config::address_error&) {  // validated already
        }
    }
}

cluster_bridge::~cluster_bridge() {
    try {
        stop();
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing to do in a destructor
    }
}

void cluster_bridge::start() {
    if (settings_.cluster.mode == "off") {
        settled_ = true;
        return;
    }
    if (settings_.cluster.mode == "on") activate();
    refresh();
}

void cluster_bridge::activate() {
    if (active_) return;
    active_ = true;
    seed_context_->cluster = this;
    log::info("cluster mode on: every node gets a local port",
              {{"ports", settings_.cluster.ports}, {"address", advertised_host_}});
}

void cluster_bridge::stop_accepting() {
    for (auto& [port, n] : ports_) n.listener->stop_accepting();
}

void cluster_bridge::stop() {
    if (stopped_) return;
    stopped_ = true;
    timer_.cancel();
    for (auto* list : {&retired_}) {
        for (auto& n : *list) {
            n.listener->close_all();
            n.pool->stop();
        }
    }
    for (auto& [port, n] : ports_) {
        n.listener->close_all();
        n.pool->stop();
    }
}

std::size_t cluster_bridge::clients() const {
    std::size_t n = 0;
    for (const auto& [port, p] : ports_) n += p.listener->clients();
    for (const auto& p : retired_) n += p.listener->clients();
    return n;
}

void cluster_bridge::schedule(std::chrono::milliseconds after) {
    if (stopped_) return;
    timer_.expires_after(after);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) refresh();
    });
}

void cluster_bridge::redirected() {
    // A MOVED: the slot map changed. Soon, but not once per MOVED of a resharding.
    const auto since = std::chrono::steady_clock::now() - last_refresh_;
    if (refreshing_ || stopped_) return;
    const auto wait =
        since >= min_refresh_gap
            ? std::chrono::milliseconds(0)
            : std::chrono::duration_cast<std::chrono::milliseconds>(min_refresh_gap - since);
    schedule(wait);
}

// Through the seed endpoint; when it cannot serve, through a node's pool that can.
void cluster_bridge::refresh() {
    if (refreshing_ || stopped_) return;
    reap_retired();
    if (!settled_ && settings_.cluster.mode == "auto") {
        // Whether this is a cluster: HELLO answered it on the pool's first connection. Waiting
        // for that (rather than queueing for a lease) costs the pool no extra connection.
        const auto& mode = seed_->stats().server_mode;
        if (mode == "standalone") {
            settled_ = true;
            log::info(
                "the upstream is not a cluster; cluster mode off (REDIS_SIDECAR_CLUSTER=auto)");
            return;
        }
        if (!seed_->healthy()) {
            schedule(std::chrono::milliseconds(100));
            return;
        }
    }
    auto via = seed_;
    if (!via->healthy()) {
        for (const auto& [port, n] : ports_) {
            if (n.pool->healthy()) {
                via = n.pool;
                break;
            }
        }
    }
    refreshing_ = true;
    last_refresh_ = std::chrono::steady_clock::now();
    const bool shards = !use_slots_;
    via->async_acquire(
        [this, via, shards](std::error_code ec, std::shared_ptr<upstream::connection> c) {
            if (stopped_) {
                if (c) via->release(std::move(c), !ec);
                return;
            }
            if (ec || !c) {
                refreshing_ = false;
                ++stats_.refresh_failures;
                last_error_ = "no upstream connection to read the topology with";
                schedule(settled_ ? std::chrono::milliseconds(refresh_interval)
                                  : std::chrono::milliseconds(1000));
                return;
            }
            upstream::async_command(
                c, resp::format_command({"CLUSTER", shards ? "SHARDS" : "SLOTS"}), 1,
                settings_.pool.socket_timeout, [this, via, c, shards](upstream::command_result r) {
                    via->release(c, !r.ec);
                    refreshing_ = false;
                    if (stopped_) return;
                    if (r.ec) {
                        ++stats_.refresh_failures;
                        last_error_ = "reading the topology failed: " + r.ec.message();
                        log::warn("cluster topology read failed", {{"error", r.ec.message()}});
                        schedule(std::chrono::milliseconds(1000));
                        return;
                    }
                    on_reply(resp::to_value(r.replies.front()), shards);
                });
        });
}

void cluster_bridge::on_reply(const resp::value& reply, bool shards) {
    if (reply.type == '-') {
        const auto& e = reply.text;
        if (e.find("cluster support disabled") != std::string::npos) {
            if (settings_.cluster.mode == "auto") {
                settled_ = true;
                log::info(
                    "the upstream is not a cluster; cluster mode off (REDIS_SIDECAR_CLUSTER=auto)");
                return;  // no more refreshes
            }
            last_error_ = "REDIS_SIDECAR_CLUSTER=on but the upstream is not a cluster";
        } else if (shards && (e.find("nknown subcommand") != std::string::npos ||
                              e.find("nknown command") != std::string::npos)) {
            use_slots_ = true;  // before Redis 7: CLUSTER SLOTS
            schedule(std::chrono::milliseconds(0));
            return;
        } else if (settings_.cluster.mode == "auto" && !active_) {
            // Cannot tell (an ACL user without CLUSTER, a server without HELLO): serve as a
            // plain server rather than never becoming ready.
            settled_ = true;
            log::warn(
                "cannot tell whether the upstream is a cluster; cluster mode off (set "
                "REDIS_SIDECAR_CLUSTER=on if it is one)",
                {{"error", e}});
            return;
        } else {
            last_error_ = "CLUSTER " + std::string(shards ? "SHARDS" : "SLOTS") + ": " + e;
        }
        ++stats_.refresh_failures;
        log::error("cluster topology read failed", {{"error", last_error_}});
        schedule(std::chrono::milliseconds(refresh_interval));
        return;
    }
    std::string error;
    auto t = shards ? cluster::topology_from_shards(reply, settings_.upstream.tls.enabled, error)
                    : cluster::topology_from_slots(reply, error);
    if (!t) {
        ++stats_.refresh_failures;
        last_error_ = error;
        log::error("cluster topology reply not understood", {{"error", error}});
        schedule(std::chrono::milliseconds(refresh_interval));
        return;
    }
    ++stats_.refreshes;
    activate();
    settled_ = true;
    last_error_.clear();
    const auto refused_before = map_.refused();
    const auto gone = map_.apply(*t);
    for (const auto& m : gone) {
        auto it = ports_.find(m.local_port);
        if (it == ports_.end()) continue;
        log::info("cluster node left the topology; its local port closes once its clients leave",
                  {{"node", it->second.address}, {"port", std::to_string(m.local_port)}});
        ++stats_.nodes_removed;
        --stats_.nodes;
        it->second.listener->stop_accepting();
        retired_.push_back(std::move(it->second));
        ports_.erase(it);
    }
    for (const auto& m : map_.nodes()) {
        if (ports_.count(m.local_port) == 0) open_port(m);
    }
    stats_.ports_exhausted = map_.refused();
    if (map_.refused() != refused_before) {
        log::error("more cluster nodes than local ports; some nodes are left out",
                   {{"ports", settings_.cluster.ports},
                    {"nodes", std::to_string(t->node_count())},
                    {"setting", "REDIS_SIDECAR_CLUSTER_PORTS"}});
        last_error_ = "more cluster nodes (" + std::to_string(t->node_count()) +
                      ") than REDIS_SIDECAR_CLUSTER_PORTS holds (" +
                      std::to_string(map_.capacity()) + ")";
    }
    topology_ = std::move(*t);
    schedule(std::chrono::milliseconds(refresh_interval));
}

std::optional<std::uint16_t> cluster_bridge::local_port(const cluster::node& n) {
    const auto* m = map_.ensure(n);
    stats_.ports_exhausted = map_.refused();
    if (m == nullptr) return std::nullopt;
    const auto port = m->local_port;
    if (ports_.count(port) == 0) open_port(*m);
    if (ports_.count(port) == 0) return std::nullopt;
    return port;
}

void cluster_bridge::open_port(const cluster::mapped_node& m) {
    if (stopped_) return;
    node_port n;
    n.address = config::join_host_port(m.host, m.port);
    auto up = settings_.upstream;
    up.host = m.host;
    up.port = m.port;
    up.tls.server_name = m.host;  // SNI and verification: the node's own name
    // The credentials in use now (rotated, or an IAM token), not those the sidecar started with.
    up.username = seed_->upstream().username;
    up.password = seed_->upstream().password;
    n.pool =
        std::make_shared<upstream::pool>(ex_, up, tls_, options_, upstream::make_resolver(ex_, up));
    n.context = std::make_shared<bridge::session_context>();
    n.context->pool = n.pool;
    n.context->stats = seed_context_->stats;
    n.context->client_password = seed_context_->client_password;
    n.context->passthrough_auth = seed_context_->passthrough_auth;
    n.context->write_timeout = seed_context_->write_timeout;
    n.context->cluster = this;
    n.context->reauth = [pool = n.pool.get()] { return pool->reauth(); };
    n.context->upstream_user = [pool = n.pool.get()] {
        return pool->upstream().username.value_or("default");
    };
    n.listener = std::make_unique<bridge::listener>(ex_, n.context, settings_.listen.max_clients);
    try {
        n.listener->listen_tcp(config::join_host_port(bind_host_, m.local_port));
    } catch (const std::exception& e) {
        ++stats_.bind_failures;
        log::error("cannot open a cluster node's local port",
                   {{"node", n.address}, {"error", e.what()}});
        return;
    }
    ++stats_.nodes_added;
    ++stats_.nodes;
    log::info("cluster node has a local port",
              {{"node", n.address}, {"port", std::to_string(m.local_port)}});
    // A node that cannot be reached may have left or failed over: ask for the topology soon.
    n.pool->on_connect_failure([this](std::error_code ec) {
        redirected();
        if (ec == upstream::error::wrongpass && on_auth_refused) on_auth_refused();
    });
    n.pool->start();
    ports_.emplace(m.local_port, std::move(n));
}

void cluster_bridge::reap_retired() {
    auto done = std::remove_if(retired_.begin(), retired_.end(), [](node_port& n) {
        if (n.listener->clients() > 0) return false;
        n.pool->stop();
        return true;
    });
    retired_.erase(done, retired_.end());
}

void cluster_bridge::update_credentials(const std::optional<std::string>& username,
                                        const std::optional<config::secret>& password) {
    for (auto& [port, n] : ports_) n.pool->update_credentials(username, password);
}

void cluster_bridge::update_client_password(const std::optional<config::secret>& password) {
    for (auto& [port, n] : ports_) n.context->client_password = password;
}

std::string cluster_bridge::not_ready_reason() const {
    if (!settled_) return "cluster: asking the upstream whether it is a cluster";
    if (!active_) return "";
    if (!topology_)
        return "cluster: topology not known yet" +
               (last_error_.empty() ? "" : " (" + last_error_ + ")");
    if (!topology_->covers_all_slots()) return "cluster: not every slot has a primary";
    for (const auto& s : topology_->shards) {
        if (s.slots.empty() || s.nodes.empty() || !s.nodes.front().primary) continue;
        const auto& p = s.nodes.front();
        const auto* m = map_.find(p.host(), p.port);
        const auto it = m != nullptr ? ports_.find(m->local_port) : ports_.end();
        if (it == ports_.end()) return "cluster: primary " + p.address() + " has no local port";
        if (!it->second.pool->healthy()) {
            return "cluster: no healthy connection to primary " + p.address();
        }
    }
    return "";
}

const cluster::cluster_stats& cluster_bridge::stats() const {
    stats_.per_node.clear();
    for (const auto& [port, n] : ports_) {
        const auto& s = n.pool->stats();
        const auto* m = map_.find_port(port);
        stats_.per_node.push_back(
            {port, m != nullptr && m->primary, n.pool->healthy(), s.idle, s.leased});
    }
    return stats_;
}

upstream::pool_stats cluster_bridge::pool_totals() const {
    upstream::pool_stats t;
    for (const auto& [port, n] : ports_) {
        const auto& s = n.pool->stats();
        t.open += s.open;
        t.idle += s.idle;
        t.leased += s.leased;
        t.waiting += s.waiting;
        t.connects += s.connects;
    }
    return t;
}

nlohmann::json cluster_bridge::status() const {
    nlohmann::json j;
    j["mode"] = settings_.cluster.mode;
    j["active"] = active_;
    j["ports"] = settings_.cluster.ports;
    j["address"] = advertised_host_;
    j["refreshes"] = stats_.refreshes;
    if (!last_error_.empty()) j["last_error"] = last_error_;
    auto nodes = nlohmann::json::array();
    for (const auto& m : map_.nodes()) {
        nlohmann::json n{{"local_port", m.local_port},
                         {"node", config::join_host_port(m.host, m.port)},
                         {"id", m.id},
                         {"role", m.primary ? "primary" : "replica"},
                         {"in_topology", m.in_topology}};
        if (const auto it = ports_.find(m.local_port); it != ports_.end()) {
            const auto& s = it->second.pool->stats();
            n["clients"] = it->second.listener->clients();
            n["pool"] = {{"open", s.open}, {"idle", s.idle}, {"leased", s.leased}};
            if (!s.last_error.empty()) n["last_error"] = s.last_error_message;
        }
        nodes.push_back(std::move(n));
    }
    j["nodes"] = std::move(nodes);
    return j;
}

}  // namespace redis_sidecar::app
