#include "support/redis_cluster.hpp"

#include "support/eventually.hpp"
#include "support/net.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace redis_sidecar::testing {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

constexpr int slot_count = 16384;
/// Printed by `ECHO` between the replies of one probe (see probe()).
constexpr const char* separator = "@@redis-cluster-probe@@";
/// Pause between two consistency probes of the whole cluster.
constexpr auto poll_step = 100ms;
/// Bound on one probe (one redis-cli run with four commands).
constexpr auto probe_timeout = 5s;
/// Bound on one command of describe().
constexpr auto describe_timeout = 2s;
/// `MIGRATE ... timeout` in ms: the bound on moving one batch of keys.
constexpr const char* migrate_timeout_ms = "5000";
/// How much of each node's log an exception carries.
constexpr std::size_t log_tail_limit = 3000;
/// Attempts at starting a node whose freshly chosen ports turn out to be taken.
constexpr int port_attempts = 3;

/// Lines of `text` without their "\r" (INFO replies end lines with "\r\n").
std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
    }
    return lines;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in(s);
    while (std::getline(in, part, sep)) parts.push_back(part);
    return parts;
}

/// The value of `name:value` in an INFO-style reply; nullopt if absent.
std::optional<std::string> info_field(const std::string& text, const std::string& name) {
    for (const auto& line : lines_of(text)) {
        if (line.rfind(name + ":", 0) == 0) return line.substr(name.size() + 1);
    }
    return std::nullopt;
}

std::chrono::milliseconds left(clock::time_point deadline) {
    return std::max(1ms, std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()));
}

std::string ms(std::chrono::milliseconds d) {
    return std::to_string(d.count()) + " ms";
}

/// One line of CLUSTER NODES:
/// `<id> <ip>:<port>@<bus-port>[,<hostname>] <flags> <primary|-> <ping> <pong> <epoch> <link>
/// <slot>...` where a slot is `N`, `A-B`, or (only on the node's own line) an open slot
/// `[N->-<id>]` / `[N-<-<id>]`.
struct node_entry {
    std::string id;
    std::string ip;
    std::uint16_t port = 0;
    std::string hostname;
    std::set<std::string> flags;
    std::string primary;  // empty for a primary
    std::string link;
    std::vector<std::pair<int, int>> slots;
    bool open_slots = false;

    bool has(const char* flag) const { return flags.count(flag) != 0; }
    bool is_primary() const { return has("master"); }
    bool is_replica() const { return has("slave"); }
    /// What every node must agree on.
    std::string canonical() const {
        std::string s = id +
                        (is_primary()   ? " primary"
                         : is_replica() ? " replica"
                                        : " ?") +
                        " of:" + (primary.empty() ? "-" : primary) + (has("fail") ? " fail" : "") +
                        " slots:";
        for (const auto& [a, b] : slots) {
            s += " " + std::to_string(a) + (a == b ? "" : "-" + std::to_string(b));
        }
        return s;
    }
};

/// Parses CLUSTER NODES; an error text instead if a line does not have the expected shape.
std::string parse_cluster_nodes(const std::string& text, std::vector<node_entry>& entries) {
    for (const auto& line : lines_of(text)) {
        if (line.empty()) continue;
        std::istringstream words(line);
        std::vector<std::string> w;
        for (std::string word; words >> word;) w.push_back(word);
        if (w.size() < 8) return "unexpected CLUSTER NODES line: " + line;
        node_entry e;
        e.id = w[0];
        // ip:port@bus-port[,hostname]
        std::string addr = w[1];
        if (auto comma = addr.find(','); comma != std::string::npos) {
            e.hostname = addr.substr(comma + 1);
            addr.resize(comma);
        }
        if (auto at = addr.find('@'); at != std::string::npos) addr.resize(at);
        const auto colon = addr.rfind(':');
        if (colon == std::string::npos) return "unexpected address in CLUSTER NODES: " + line;
        e.ip = addr.substr(0, colon);
        e.port = static_cast<std::uint16_t>(std::stoul("0" + addr.substr(colon + 1)));
        for (const auto& f : split(w[2], ',')) e.flags.insert(f);
        if (w[3] != "-") e.primary = w[3];
        e.link = w[7];
        for (std::size_t i = 8; i < w.size(); ++i) {
            if (w[i].front() == '[') {
                e.open_slots = true;
                continue;
            }
            const auto dash = w[i].find('-');
            const int a = std::stoi(w[i].substr(0, dash));
            const int b = dash == std::string::npos ? a : std::stoi(w[i].substr(dash + 1));
            e.slots.emplace_back(a, b);
        }
        std::sort(e.slots.begin(), e.slots.end());
        entries.push_back(std::move(e));
    }
    return {};
}

/// id -> health from CLUSTER SHARDS in redis-cli's raw output, where maps come out flattened,
/// one key or value per line: `... id\n<id>\n...\nhealth\n<health>\n ...`.
std::map<std::string, std::string> shard_health(const std::string& text) {
    std::map<std::string, std::string> health;
    const auto lines = lines_of(text);
    std::string id;
    for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
        if (lines[i] == "id") id = lines[i + 1];
        if (lines[i] == "health" && !id.empty()) health[id] = lines[i + 1];
    }
    return health;
}

std::uint16_t crc16_xmodem(std::string_view data) {
    std::uint16_t crc = 0;
    for (unsigned char c : data) {
        crc = static_cast<std::uint16_t>(crc ^ (c << 8));
        for (int bit = 0; bit < 8; ++bit) {
            crc = static_cast<std::uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
        }
    }
    return crc;
}

}  // namespace

/// What every running member reported, when they all agreed (see check_once()).
struct redis_cluster::agreed_view {
    /// The agreed CLUSTER NODES entries by node id.
    std::map<std::string, node_entry> entries;
    /// The id of the node serving each slot.
    std::vector<std::string> slot_owner = std::vector<std::string>(slot_count);
};

const char* to_string(cluster_role role) {
    switch (role) {
        case cluster_role::primary:
            return "primary";
        case cluster_role::replica:
            return "replica";
        case cluster_role::none:
            break;
    }
    return "none";
}

redis_cluster::redis_cluster(redis_cluster_options options, test_pki* pki)
    : options_(std::move(options)), pki_(pki), dir_("rs-cluster"), slot_owner_(slot_count, -1) {
    const std::size_t initial = options_.shards * (1 + options_.replicas_per_shard);
    const std::size_t total = initial + options_.spare_nodes;
    if (options_.shards == 0) throw std::invalid_argument("redis_cluster: shards must be >= 1");
    if (options_.first_address == 0 || options_.first_address + total > 255) {
        throw std::invalid_argument("redis_cluster: 127.0.0." +
                                    std::to_string(options_.first_address) + " + " +
                                    std::to_string(total) + " nodes does not fit in 127.0.0.1-254");
    }
    std::string hosts = "# redis_cluster: one line per node, spares included\n";
    std::vector<std::string> names{"localhost"};
    std::vector<std::string> ips{"127.0.0.1"};
    for (std::size_t i = 0; i < total; ++i) {
        cluster_node n;
        n.index = i;
        n.host_name = "node-" + std::to_string(i) + "." + options_.domain;
        n.ip = "127.0.0." + std::to_string(options_.first_address + i);
        hosts += n.ip + " " + n.host_name + "\n";
        names.push_back(n.host_name);
        ips.push_back(n.ip);
        nodes_.push_back(std::move(n));
    }
    servers_.resize(total);
    hosts_file_ = dir_.write_file("hosts", hosts, 0644);
    if (options_.tls) {
        // The name says what the SANs are: same name, same certificate (issue_server_cert
        // returns the one made first).
        cert_name_ = "cluster-" + options_.domain + "-" + std::to_string(options_.first_address) +
                     "-" + std::to_string(total);
        this->pki().issue_server_cert(cert_name_, names, ips);
    }
}

redis_cluster::~redis_cluster() {
    if (::testing::Test::HasFailure()) {
        std::cerr << "[support] redis_cluster (hosts file " << hosts_file_ << "):\n"
                  << describe() << "\n";
    }
    stop();
}

test_pki& redis_cluster::pki() const {
    if (pki_ == nullptr) pki_ = &test_pki::shared();
    return *pki_;
}

redis_server& redis_cluster::server(std::size_t index) const {
    const auto& s = servers_.at(index);
    if (!s)
        throw std::runtime_error("redis_cluster: " + nodes_.at(index).host_name +
                                 " was never started");
    return *s;
}

std::unique_ptr<redis_server> redis_cluster::make_server(std::size_t index) const {
    const cluster_node& n = nodes_.at(index);
    redis_server_options o;
    o.tls = options_.tls;
    o.requirepass = options_.requirepass;
    o.acl_users = options_.acl_users;
    if (options_.tls) o.cert_name = cert_name_;
    o.bind_address = n.ip;
    o.port = n.port;
    o.server_binary = options_.server_binary;
    o.cli_binary = options_.cli_binary;
    auto& c = o.extra_config_lines;
    c.push_back("cluster-enabled yes");
    c.push_back("cluster-config-file nodes.conf");  // in the server's dir
    c.push_back("cluster-node-timeout " + std::to_string(options_.node_timeout.count()));
    c.push_back("cluster-port " + std::to_string(n.bus_port));
    // Loopback connections come from 127.0.0.1 whatever address the peer listens on: without
    // this the bus learns 127.0.0.1 for every node and never joins. (Not `bind-source-addr`:
    // protected mode takes only 127.0.0.1 for local, so a password-less primary would refuse
    // its replicas' connections from 127.0.0.X.)
    c.push_back("cluster-announce-ip " + n.ip);
    // Roles change only when a test changes them.
    c.push_back("cluster-allow-replica-migration no");
    // A replica's first sync must not wait 5 s for others to join it (diskless, 7.0 default).
    c.push_back("repl-diskless-sync-delay 0");
    // A synced replica counts as "loading" (CLUSTER SHARDS) and is left out of CLUSTER SLOTS
    // while its replication offset is 0, i.e. until the primary's first PING to its replicas:
    // every 10 s by default.
    c.push_back("repl-ping-replica-period 1");
    // SIGTERM must not wait up to 10 s for lagging replicas.
    c.push_back("shutdown-timeout 0");
    if (options_.tls) {
        c.push_back("tls-cluster yes");
        c.push_back("tls-replication yes");
    }
    if (options_.requirepass)
        c.push_back("masterauth " + redis_config_quote(*options_.requirepass));
    if (options_.announce_hostnames) {
        c.push_back("cluster-announce-hostname " + n.host_name);
        c.push_back("cluster-preferred-endpoint-type hostname");
    }
    c.insert(c.end(), options_.extra_config_lines.begin(), options_.extra_config_lines.end());
    return std::make_unique<redis_server>(std::move(o), options_.tls ? &pki() : pki_);
}

void redis_cluster::start_node(std::size_t index) {
    cluster_node& n = nodes_.at(index);
    for (int attempt = 1;; ++attempt) {
        // Both ports explicit: the bus port is not port + 10000, and a retry takes new ones.
        n.port = free_tcp_port();
        do {
            n.bus_port = free_tcp_port();
        } while (n.bus_port == n.port);
        servers_[index] = make_server(index);
        try {
            servers_[index]->start();
            break;
        } catch (const std::runtime_error& e) {
            const bool taken = std::string(e.what()).find("in use") != std::string::npos;
            if (!taken || attempt == port_attempts) throw;
        }
    }
    n.running = true;
    n.id = expect_ok(index, {"CLUSTER", "MYID"}, "CLUSTER MYID");
}

std::vector<std::string> redis_cluster::tls_and_auth_args() const {
    std::vector<std::string> args;
    if (options_.tls) args.insert(args.end(), {"--tls", "--cacert", pki().ca_cert()});
    if (options_.requirepass) {
        args.insert(args.end(), {"--no-auth-warning", "-a", *options_.requirepass});
    }
    return args;
}

void redis_cluster::start() {
    const auto deadline = clock::now() + options_.settle_timeout;
    const std::size_t initial = options_.shards * (1 + options_.replicas_per_shard);
    for (std::size_t i = 0; i < initial; ++i) {
        if (servers_[i] && servers_[i]->running()) {
            throw std::runtime_error("redis_cluster: start() while running");
        }
    }
    for (std::size_t i = 0; i < initial; ++i) start_node(i);
    // redis-cli refuses to create a cluster of fewer than 3 primaries.
    if (options_.shards >= 3) {
        create_with_redis_cli(deadline);
    } else {
        create_by_hand(deadline);
    }
    wait_for("start", left(deadline));
}

void redis_cluster::create_with_redis_cli(clock::time_point deadline) {
    const std::size_t initial = options_.shards * (1 + options_.replicas_per_shard);
    std::vector<std::string> argv{options_.cli_binary, "--cluster", "create"};
    for (std::size_t i = 0; i < initial; ++i) argv.push_back(nodes_[i].ip_address());
    argv.insert(argv.end(), {"--cluster-replicas", std::to_string(options_.replicas_per_shard),
                             "--cluster-yes"});
    const auto extra = tls_and_auth_args();
    argv.insert(argv.end(), extra.begin(), extra.end());
    // It waits for the join forever: bounded here.
    const process_result r = run_process(argv, base_env(), left(deadline));
    if (!r.ok() || r.out.find("All 16384 slots covered") == std::string::npos) {
        fail("redis-cli --cluster create", r.describe());
    }
    for (std::size_t i = 0; i < initial; ++i) nodes_[i].member = true;
}

void redis_cluster::create_by_hand(clock::time_point deadline) {
    const std::size_t shards = options_.shards;
    const std::size_t initial = shards * (1 + options_.replicas_per_shard);
    for (std::size_t s = 0; s < shards; ++s) {
        const std::size_t first = s * slot_count / shards;
        const std::size_t last = (s + 1) * slot_count / shards - 1;
        expect_ok(s, {"CLUSTER", "ADDSLOTSRANGE", std::to_string(first), std::to_string(last)},
                  "CLUSTER ADDSLOTSRANGE");
        expect_ok(s, {"CLUSTER", "SET-CONFIG-EPOCH", std::to_string(s + 1)},
                  "CLUSTER SET-CONFIG-EPOCH");
    }
    for (std::size_t i = 1; i < initial; ++i) {
        expect_ok(i,
                  {"CLUSTER", "MEET", nodes_[0].ip, std::to_string(nodes_[0].port),
                   std::to_string(nodes_[0].bus_port)},
                  "CLUSTER MEET");
    }
    for (std::size_t i = 0; i < initial; ++i) nodes_[i].member = true;
    // Replica r of shard s is node shards * (1 + r) + s. REPLICATE needs the primary known.
    for (std::size_t i = shards; i < initial; ++i) {
        const std::string& primary = nodes_[i % shards].id;
        process_result r;
        if (!eventually(
                [&] {
                    r = cli(i, {"CLUSTER", "REPLICATE", primary});
                    return r.ok();
                },
                left(deadline), poll_step)) {
            fail("CLUSTER REPLICATE on " + nodes_[i].host_name, r.describe());
        }
    }
}

void redis_cluster::stop() {
    for (auto& s : servers_) {
        if (s) s->stop();
    }
    for (auto& n : nodes_) n.running = false;
}

process_result redis_cluster::cli(std::size_t index, const std::vector<std::string>& args,
                                  std::chrono::milliseconds timeout) const {
    return server(index).cli(args, timeout);
}

std::string redis_cluster::expect_ok(std::size_t index, const std::vector<std::string>& args,
                                     const std::string& what) const {
    const process_result r = cli(index, args);
    if (!r.ok()) fail(what + " on " + nodes_.at(index).host_name, r.describe());
    return trim(r.out);
}

void redis_cluster::require_running_member(std::size_t index, const char* what) const {
    const cluster_node& n = nodes_.at(index);
    if (!n.member || !servers_[index] || !servers_[index]->running()) {
        throw std::runtime_error(std::string("redis_cluster: ") + what + ": " + n.host_name +
                                 " is not a running member of the cluster");
    }
}

std::optional<std::size_t> redis_cluster::index_of(const std::string& id) const {
    for (const auto& n : nodes_) {
        if (!id.empty() && n.id == id) return n.index;
    }
    return std::nullopt;
}

void redis_cluster::refresh_running() {
    for (auto& n : nodes_) n.running = servers_[n.index] && servers_[n.index]->running();
}

std::vector<std::size_t> redis_cluster::primaries() const {
    std::vector<std::size_t> out;
    for (const auto& n : nodes_) {
        if (n.member && n.running && n.role == cluster_role::primary) out.push_back(n.index);
    }
    return out;
}

std::vector<std::size_t> redis_cluster::replicas_of(std::size_t primary) const {
    std::vector<std::size_t> out;
    for (const auto& n : nodes_) {
        if (n.member && n.running && n.role == cluster_role::replica && n.primary == primary) {
            out.push_back(n.index);
        }
    }
    return out;
}

std::size_t redis_cluster::owner_of(int slot) const {
    if (slot < 0 || slot >= slot_count) throw std::out_of_range("redis_cluster: bad slot");
    const int owner = slot_owner_[static_cast<std::size_t>(slot)];
    if (owner < 0) throw std::runtime_error("redis_cluster: slot owners not known yet");
    return static_cast<std::size_t>(owner);
}

std::vector<int> redis_cluster::slots_of(std::size_t index) const {
    std::vector<int> out;
    for (int s = 0; s < slot_count; ++s) {
        if (slot_owner_[static_cast<std::size_t>(s)] == static_cast<int>(index)) out.push_back(s);
    }
    return out;
}

std::string redis_cluster::seed() const {
    const auto p = primaries();
    if (p.empty()) throw std::runtime_error("redis_cluster: no running primary");
    return nodes_[p.front()].address();
}

std::string redis_cluster::seed_ip() const {
    const auto p = primaries();
    if (p.empty()) throw std::runtime_error("redis_cluster: no running primary");
    return nodes_[p.front()].ip_address();
}

int redis_cluster::key_slot(std::string_view key) {
    if (auto open = key.find('{'); open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close != open + 1) {
            key = key.substr(open + 1, close - open - 1);
        }
    }
    return crc16_xmodem(key) & (slot_count - 1);
}

std::string redis_cluster::key_for_slot(int slot, std::string_view prefix) {
    // About 16384 tries on average; each is a CRC of a few bytes.
    for (unsigned n = 0; n < 10'000'000; ++n) {
        std::string key = std::string(prefix) + ":" + std::to_string(n);
        if (key_slot(key) == slot) return key;
    }
    throw std::invalid_argument("redis_cluster: no key for slot " + std::to_string(slot) +
                                " with prefix " + std::string(prefix));
}

void redis_cluster::failover(std::size_t replica, failover_mode mode) {
    require_running_member(replica, "failover");
    const cluster_node& n = nodes_[replica];
    if (n.role != cluster_role::replica || !n.primary) {
        throw std::runtime_error("redis_cluster: failover: " + n.host_name + " is not a replica");
    }
    const std::size_t old_primary = *n.primary;
    std::vector<std::string> args{"CLUSTER", "FAILOVER"};
    if (mode == failover_mode::force) args.push_back("FORCE");
    if (mode == failover_mode::takeover) args.push_back("TAKEOVER");
    expect_ok(replica, args, "CLUSTER FAILOVER");
    const std::string id = n.id;
    const std::string old_id = nodes_[old_primary].id;
    const bool old_running = servers_[old_primary]->running();
    wait_for("failover to " + n.host_name, options_.settle_timeout,
             [&](const agreed_view& v) -> std::string {
                 if (!v.entries.at(id).is_primary()) return n.host_name + " is not primary yet";
                 if (old_running && v.entries.at(old_id).primary != id) {
                     return nodes_[old_primary].host_name + " is not its replica yet";
                 }
                 return {};
             });
}

void redis_cluster::kill(std::size_t index, bool wait) {
    server(index).kill(SIGKILL);
    nodes_.at(index).running = false;
    if (wait && nodes_[index].member)
        wait_for("kill " + nodes_[index].host_name, options_.settle_timeout);
}

void redis_cluster::restart(std::size_t index) {
    redis_server& s = server(index);
    if (s.running()) {
        throw std::runtime_error("redis_cluster: restart: " + nodes_[index].host_name +
                                 " is running");
    }
    s.start();  // same ports, same dir: nodes.conf brings its id and its view back
    nodes_[index].running = true;
    const std::string id = expect_ok(index, {"CLUSTER", "MYID"}, "CLUSTER MYID");
    if (id != nodes_[index].id) {
        fail("restart " + nodes_[index].host_name,
             "came back as " + id + " instead of " + nodes_[index].id);
    }
    if (nodes_[index].member)
        wait_for("restart " + nodes_[index].host_name, options_.settle_timeout);
}

std::size_t redis_cluster::add_node(bool as_primary, std::optional<std::size_t> replica_of) {
    const std::size_t initial = options_.shards * (1 + options_.replicas_per_shard);
    std::optional<std::size_t> spare;
    for (std::size_t i = initial; i < nodes_.size(); ++i) {
        if (nodes_[i].id.empty()) {
            spare = i;
            break;
        }
    }
    if (!spare) {
        throw std::runtime_error("redis_cluster: add_node: no spare node left (spare_nodes = " +
                                 std::to_string(options_.spare_nodes) + ")");
    }
    std::optional<std::size_t> primary;
    if (!as_primary) {
        const auto ps = primaries();
        primary = replica_of ? replica_of : (ps.empty() ? std::nullopt : std::optional(ps[0]));
        if (!primary) throw std::runtime_error("redis_cluster: add_node: no running primary");
        require_running_member(*primary, "add_node");
        if (nodes_[*primary].role != cluster_role::primary) {
            throw std::runtime_error("redis_cluster: add_node: " + nodes_[*primary].host_name +
                                     " is not a primary");
        }
    }
    std::optional<std::size_t> introducer;
    for (const auto& n : nodes_) {
        if (n.member && servers_[n.index] && servers_[n.index]->running()) {
            introducer = n.index;
            break;
        }
    }
    if (!introducer) throw std::runtime_error("redis_cluster: add_node: no running member");

    const std::size_t k = *spare;
    start_node(k);
    const cluster_node& n = nodes_[k];
    expect_ok(*introducer,
              {"CLUSTER", "MEET", n.ip, std::to_string(n.port), std::to_string(n.bus_port)},
              "CLUSTER MEET");
    nodes_[k].member = true;
    if (primary) {
        // REPLICATE needs the primary known to the new node: gossip brings it within a second.
        const std::string pid = nodes_[*primary].id;
        process_result r;
        if (!eventually(
                [&] {
                    r = cli(k, {"CLUSTER", "REPLICATE", pid});
                    return r.ok();
                },
                options_.settle_timeout, poll_step)) {
            fail("CLUSTER REPLICATE on " + n.host_name, r.describe());
        }
    }
    const std::string id = n.id;
    const std::string pid = primary ? nodes_[*primary].id : std::string();
    wait_for("add_node " + n.host_name, options_.settle_timeout,
             [&](const agreed_view& v) -> std::string {
                 const node_entry& e = v.entries.at(id);
                 if (pid.empty() ? !e.is_primary() : e.primary != pid) {
                     return n.host_name + " does not have its role yet";
                 }
                 return {};
             });
    return k;
}

void redis_cluster::begin_slot_migration(int slot, std::size_t from, std::size_t to) {
    require_running_member(from, "slot migration");
    require_running_member(to, "slot migration");
    const std::string s = std::to_string(slot);
    expect_ok(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", nodes_[from].id}, "SETSLOT IMPORTING");
    expect_ok(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", nodes_[to].id}, "SETSLOT MIGRATING");
}

std::size_t redis_cluster::migrate_keys(int slot, std::size_t from, std::size_t to,
                                        std::size_t max_keys) {
    const std::string listed = expect_ok(
        from, {"CLUSTER", "GETKEYSINSLOT", std::to_string(slot), std::to_string(max_keys)},
        "CLUSTER GETKEYSINSLOT");
    std::vector<std::string> keys;
    for (const auto& line : lines_of(listed)) {
        if (!line.empty()) keys.push_back(line);
    }
    if (keys.empty()) return 0;
    std::vector<std::string> args{"MIGRATE", nodes_[to].ip, std::to_string(nodes_[to].port),
                                  "",        "0",           migrate_timeout_ms};
    if (options_.requirepass) args.insert(args.end(), {"AUTH", *options_.requirepass});
    args.push_back("KEYS");
    args.insert(args.end(), keys.begin(), keys.end());
    expect_ok(from, args, "MIGRATE");
    return keys.size();
}

void redis_cluster::finish_slot_migration(int slot, std::size_t from, std::size_t to) {
    const std::string s = std::to_string(slot);
    const std::vector<std::string> args{"CLUSTER", "SETSLOT", s, "NODE", nodes_[to].id};
    // The importing side first (it bumps its epoch), then the source, then everyone else so
    // nobody waits for gossip.
    expect_ok(to, args, "SETSLOT NODE");
    expect_ok(from, args, "SETSLOT NODE");
    for (std::size_t p : primaries()) {
        if (p != from && p != to) expect_ok(p, args, "SETSLOT NODE");
    }
}

void redis_cluster::migrate_slot(int slot, std::size_t from, std::size_t to) {
    if (from == to) throw std::invalid_argument("redis_cluster: migrate_slot: from == to");
    if (owner_of(slot) != from) {
        throw std::runtime_error("redis_cluster: migrate_slot: slot " + std::to_string(slot) +
                                 " is served by " + nodes_[owner_of(slot)].host_name + ", not " +
                                 nodes_.at(from).host_name);
    }
    begin_slot_migration(slot, from, to);
    while (migrate_keys(slot, from, to, 100) > 0) {
    }
    finish_slot_migration(slot, from, to);
    const std::string to_id = nodes_[to].id;
    wait_for("migrate slot " + std::to_string(slot) + " to " + nodes_[to].host_name,
             options_.settle_timeout, [&](const agreed_view& v) -> std::string {
                 if (v.slot_owner[static_cast<std::size_t>(slot)] != to_id) {
                     return "slot " + std::to_string(slot) + " not moved yet";
                 }
                 return {};
             });
}

void redis_cluster::move_slots(std::size_t from, std::size_t to, std::size_t count) {
    if (from == to) throw std::invalid_argument("redis_cluster: move_slots: from == to");
    std::vector<int> slots = slots_of(from);
    if (slots.size() < count) {
        throw std::runtime_error("redis_cluster: move_slots: " + nodes_.at(from).host_name +
                                 " serves only " + std::to_string(slots.size()) + " slots");
    }
    slots.resize(count);
    for (int slot : slots) {
        begin_slot_migration(slot, from, to);
        while (migrate_keys(slot, from, to, 100) > 0) {
        }
        finish_slot_migration(slot, from, to);
    }
    const std::string to_id = nodes_[to].id;
    wait_for("move " + std::to_string(count) + " slots to " + nodes_[to].host_name,
             options_.settle_timeout, [&](const agreed_view& v) -> std::string {
                 for (int slot : slots) {
                     if (v.slot_owner[static_cast<std::size_t>(slot)] != to_id) {
                         return "slot " + std::to_string(slot) + " not moved yet";
                     }
                 }
                 return {};
             });
}

void redis_cluster::wait_until_consistent(std::optional<std::chrono::milliseconds> timeout) {
    wait_for("wait_until_consistent", timeout.value_or(options_.settle_timeout));
}

void redis_cluster::wait_for(const std::string& what, std::chrono::milliseconds timeout,
                             const std::function<std::string(const agreed_view&)>& extra) {
    refresh_running();
    std::string problem;
    agreed_view view;
    const auto started = clock::now();
    const bool ok = eventually(
        [&] {
            view = agreed_view{};
            problem = check_once(view);
            if (problem.empty() && extra) problem = extra(view);
            return problem.empty();
        },
        timeout, poll_step);
    if (!ok) {
        fail(what,
             "the cluster did not settle within " + ms(timeout) + " (waited " +
                 ms(std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started)) +
                 "); last problem: " + problem);
    }
    apply(view);
}

std::string redis_cluster::check_once(agreed_view& view) const {
    std::set<std::string> member_ids;
    std::vector<std::size_t> running;
    for (const auto& n : nodes_) {
        if (!n.member) continue;
        member_ids.insert(n.id);
        if (n.running) running.push_back(n.index);
    }
    if (running.empty()) return "no running member";
    std::string reference;
    std::string reference_node;
    for (std::size_t i : running) {
        const cluster_node& n = nodes_[i];
        const std::string who = n.host_name + ": ";
        // One redis-cli, four commands, replies told apart by ECHOed separators.
        std::vector<std::string> argv{options_.cli_binary};
        const auto conn = servers_[i]->connection_args();
        argv.insert(argv.end(), conn.begin(), conn.end());
        const std::string sep = std::string("ECHO ") + separator + "\n";
        const process_result r = run_process(argv, base_env(), probe_timeout,
                                             "CLUSTER INFO\n" + sep + "CLUSTER NODES\n" + sep +
                                                 "INFO replication\n" + sep + "CLUSTER SHARDS\n");
        if (!r.ok()) return who + "redis-cli failed: " + r.describe();
        std::vector<std::string> parts(1);
        for (const auto& line : lines_of(r.out)) {
            if (line == separator) {
                parts.emplace_back();
            } else {
                parts.back() += line + "\n";
            }
        }
        if (parts.size() != 4) return who + "unexpected probe output: " + r.out;
        const std::string& info = parts[0];
        const std::string& nodes_text = parts[1];
        const std::string& replication = parts[2];
        const std::string& shards = parts[3];

        // CLUSTER INFO
        if (info_field(info, "cluster_state") != "ok") return who + "cluster_state is not ok";
        for (const char* field : {"cluster_slots_assigned", "cluster_slots_ok"}) {
            if (info_field(info, field) != std::to_string(slot_count)) {
                return who + field + " is " + info_field(info, field).value_or("?");
            }
        }
        const auto known = info_field(info, "cluster_known_nodes");
        if (known != std::to_string(member_ids.size())) {
            return who + "cluster_known_nodes is " + known.value_or("?") + ", not " +
                   std::to_string(member_ids.size());
        }

        // CLUSTER NODES
        std::vector<node_entry> entries;
        if (auto error = parse_cluster_nodes(nodes_text, entries); !error.empty()) {
            return who + error;
        }
        std::set<std::string> seen;
        std::string canonical;
        std::sort(entries.begin(), entries.end(),
                  [](const node_entry& a, const node_entry& b) { return a.id < b.id; });
        for (const auto& e : entries) {
            seen.insert(e.id);
            const auto index = index_of(e.id);
            if (!index || !nodes_[*index].member) return who + "knows a stranger " + e.id;
            const cluster_node& other = nodes_[*index];
            for (const char* bad : {"handshake", "noaddr", "fail?"}) {
                if (e.has(bad)) return who + other.host_name + " is flagged " + bad;
            }
            if (e.has("fail") == other.running) {
                return who + other.host_name + (other.running ? " is" : " is not") +
                       " flagged fail";
            }
            if (other.running && !e.has("myself") && e.link != "connected") {
                return who + "link to " + other.host_name + " is " + e.link;
            }
            if (other.running && options_.announce_hostnames && e.hostname != other.host_name) {
                return who + "knows " + other.host_name + " as '" + e.hostname + "'";
            }
            if (e.open_slots) return who + "has open (migrating/importing) slots";
            if (e.has("myself") && e.id != n.id) return who + "is " + e.id + ", not " + n.id;
            canonical += e.canonical() + "\n";
        }
        if (seen != member_ids) return who + "does not know every member yet";
        if (reference.empty()) {
            reference = canonical;
            reference_node = n.host_name;
            for (auto& e : entries) view.entries.emplace(e.id, e);
        } else if (canonical != reference) {
            return who + "disagrees with " + reference_node + ":\n" + canonical + "versus\n" +
                   reference;
        }

        // INFO replication
        const node_entry& me = view.entries.at(n.id);
        if (me.is_replica() && info_field(replication, "master_link_status") != "up") {
            return who + "master_link_status is " +
                   info_field(replication, "master_link_status").value_or("?");
        }

        // CLUSTER SHARDS
        const auto health = shard_health(shards);
        for (std::size_t j : running) {
            const auto it = health.find(nodes_[j].id);
            const std::string h = it == health.end() ? "missing" : it->second;
            if (h != "online") return who + "CLUSTER SHARDS has " + nodes_[j].host_name + " " + h;
        }
    }
    for (const auto& [id, e] : view.entries) {
        for (const auto& [a, b] : e.slots) {
            for (int s = a; s <= b; ++s) {
                auto& owner = view.slot_owner[static_cast<std::size_t>(s)];
                if (!owner.empty()) return "slot " + std::to_string(s) + " has two owners";
                owner = id;
            }
        }
    }
    for (int s = 0; s < slot_count; ++s) {
        const auto& owner = view.slot_owner[static_cast<std::size_t>(s)];
        if (owner.empty()) return "slot " + std::to_string(s) + " has no owner";
        const auto index = index_of(owner);
        if (!index || !nodes_[*index].running) {
            return "slot " + std::to_string(s) + " is served by a node that is down";
        }
    }
    return {};
}

void redis_cluster::apply(const agreed_view& view) {
    for (auto& n : nodes_) {
        n.role = cluster_role::none;
        n.primary.reset();
        if (!n.member) continue;
        const auto it = view.entries.find(n.id);
        if (it == view.entries.end()) continue;
        n.role = it->second.is_primary() ? cluster_role::primary : cluster_role::replica;
        if (n.role == cluster_role::replica) n.primary = index_of(it->second.primary);
    }
    for (int s = 0; s < slot_count; ++s) {
        const auto index = index_of(view.slot_owner[static_cast<std::size_t>(s)]);
        slot_owner_[static_cast<std::size_t>(s)] = index ? static_cast<int>(*index) : -1;
    }
}

std::string redis_cluster::describe() const {
    std::string out;
    for (const auto& n : nodes_) {
        if (!servers_[n.index]) continue;
        out += n.host_name + " " + n.ip_address() + " bus " + std::to_string(n.bus_port) + " id " +
               n.id + (n.member ? "" : " (not a member)");
        if (!servers_[n.index]->running()) {
            out += " DOWN\n";
            continue;
        }
        const process_result r = cli(n.index, {"CLUSTER", "NODES"}, describe_timeout);
        out += ", CLUSTER NODES:\n" + (r.ok() ? r.out : r.describe()) + "\n";
    }
    return out;
}

void redis_cluster::fail(const std::string& what, const std::string& detail) const {
    std::string logs;
    for (const auto& n : nodes_) {
        if (!servers_[n.index]) continue;
        logs += "--- " + n.host_name + " log (" + servers_[n.index]->log_path() + "):\n" +
                tail_of(servers_[n.index]->log(), log_tail_limit) + "\n";
    }
    throw std::runtime_error("redis_cluster: " + what + ": " + detail + "\n" + describe() + logs);
}

}  // namespace redis_sidecar::testing
