#pragma once

#include "support/pki.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redis_sidecar::testing {

/// How a redis_cluster is configured. Every field has a working default: 3 shards of one primary
/// and one replica each, TLS everywhere, host names announced. Set fields by name
/// (`options.shards = 2;`): GCC 12 with -Wextra -Werror rejects designated initializers that
/// leave fields out.
struct redis_cluster_options {
    /// Primaries made by start(), each with a share of the 16384 slots (redis-cli's split).
    std::size_t shards = 3;
    /// Replicas per primary made by start() (`redis-cli --cluster-replicas`).
    std::size_t replicas_per_shard = 1;
    /// Nodes not started by start() but given a name, an address and a place in the
    /// certificate and the hosts file, for add_node().
    std::size_t spare_nodes = 2;
    /// Client port, cluster bus (`tls-cluster yes`) and replication (`tls-replication yes`)
    /// all TLS only, with one certificate for every node (see redis_cluster).
    bool tls = true;
    /// `requirepass` on every node, and `masterauth` with it so replicas can sync. The
    /// fixture's own commands (cli(), MIGRATE ... AUTH) use it as the default user.
    std::optional<std::string> requirepass;
    /// Raw ACL lines added to every node, e.g. "user app on >app-secret-password ~* +@all".
    /// Leave the default user able to run CLUSTER, INFO, MIGRATE and DEBUG: the fixture uses it.
    std::vector<std::string> acl_users;
    /// Node i is called `node-<i>.<domain>`.
    std::string domain = "cluster.test";
    /// `cluster-announce-hostname node-<i>.<domain>` and `cluster-preferred-endpoint-type
    /// hostname`: CLUSTER SLOTS / SHARDS and MOVED / ASK then name nodes by host name, as
    /// ElastiCache (cluster mode, TLS) does. Without it they carry the node's IP.
    bool announce_hostnames = true;
    /// Node i binds (and announces) 127.0.0.(first_address + i); all of them must fit below
    /// 255. Two clusters in one test process need disjoint ranges.
    unsigned first_address = 20;
    /// `cluster-node-timeout`: how long a node must be unreachable before it is flagged as
    /// failing. kill() of a primary takes about 1.5 to 2 times this before a replica takes over.
    std::chrono::milliseconds node_timeout = std::chrono::milliseconds(2000);
    /// Bound on start() (everything) and on the wait of each operation.
    std::chrono::milliseconds settle_timeout = std::chrono::seconds(30);
    /// Appended verbatim to every node's config (after the fixture's cluster lines).
    std::vector<std::string> extra_config_lines;
    /// The server and client programs (Debian's redis-server/redis-tools by default).
    std::string server_binary = "/usr/bin/redis-server";
    std::string cli_binary = "/usr/bin/redis-cli";
};

/// A node's role as the cluster last agreed on it (see redis_cluster::wait_until_consistent).
enum class cluster_role {
    /// Not (yet) a member of the cluster: a spare node that add_node() has not added.
    none,
    /// A primary (`master`), with or without slots.
    primary,
    /// A replica of `cluster_node::primary`.
    replica,
};

/// "none", "primary", "replica".
const char* to_string(cluster_role role);

/// One node of a redis_cluster: fixed facts plus what the cluster last agreed on.
struct cluster_node {
    /// Its place in redis_cluster::nodes(): the i of `node-<i>` and of 127.0.0.(first + i).
    std::size_t index = 0;
    /// `node-<i>.<domain>`: what CLUSTER SLOTS, MOVED and ASK name it by (announce_hostnames),
    /// what the hosts file maps to `ip`, and one of the certificate's names.
    std::string host_name;
    /// 127.0.0.(first_address + i): where it listens, and the IP it announces.
    std::string ip;
    /// Its client port (the TLS port with tls). 0 until started.
    std::uint16_t port = 0;
    /// Its cluster bus port (`cluster-port`, chosen free, not port + 10000). 0 until started.
    std::uint16_t bus_port = 0;
    /// Its 40-hex-digit node id (CLUSTER MYID); empty until started. Kept across restart().
    std::string id;
    /// Whether it has joined the cluster (start() for the first nodes, add_node() for spares).
    bool member = false;
    /// Whether its process is up (false after kill(), until restart()).
    bool running = false;
    /// Its role when the cluster last agreed (updated by every wait of the fixture).
    cluster_role role = cluster_role::none;
    /// With role replica: the index of its primary.
    std::optional<std::size_t> primary;
    /// `host_name:port`, the form the cluster itself hands out.
    std::string address() const { return host_name + ":" + std::to_string(port); }
    /// `ip:port`, for clients that cannot resolve the host name (redis-cli).
    std::string ip_address() const { return ip + ":" + std::to_string(port); }
};

/// How failover() asks a replica to take over (the argument of CLUSTER FAILOVER).
enum class failover_mode {
    /// Plain CLUSTER FAILOVER: the primary stops writes, the replica catches up and takes over.
    /// Needs the primary up.
    coordinated,
    /// CLUSTER FAILOVER FORCE: no handshake with the primary, but an election among primaries.
    force,
    /// CLUSTER FAILOVER TAKEOVER: no handshake, no election.
    takeover,
};

/// A real Redis Cluster of redis_servers on 127.0.0.(first_address + i), shaped like an AWS
/// ElastiCache cluster-mode-enabled endpoint: TLS on the client port, the cluster bus and
/// replication; nodes announced by host name `node-<i>.<domain>`. Clients resolve those names
/// through hosts_file() (the sidecar: REDIS_SIDECAR_HOSTS_FILE). Not thread-safe; make it on the
/// test's own thread (its servers die with that thread, see child_process).
///
///     redis_cluster cluster;              // 3 primaries + 3 replicas, TLS, host names
///     cluster.start();                    // ~3-4 s; throws with every node's log
///     env["REDIS_ADDR"] = cluster.seed();                 // "node-0.cluster.test:PORT"
///     env["REDIS_SIDECAR_HOSTS_FILE"] = cluster.hosts_file();
///     env["REDIS_TLS_CA_FILE"] = cluster.pki().ca_cert();
///     cluster.failover(cluster.replicas_of(0).at(0));     // returns once all nodes agree
///
/// What Redis 7.0.15 reports with TLS (`port 0`, `tls-port N`) and announce_hostnames:
///   - CLUSTER SLOTS: per range `[start, end, primary, replica...]`, each node
///     `[hostname, tls-port, id, {"ip": ip}]`: the host name is the endpoint, the port is the
///     TLS port (to a TLS client), the IP is in the metadata map (RESP2: a flat array
///     `["ip", ip]`). Replicas appear only once they have synced and gossiped a non-zero
///     replication offset; a replica flagged failing is left out.
///   - CLUSTER SHARDS: per shard `{slots: [start, end, ...], nodes: [{id, tls-port, ip, endpoint,
///     hostname, role ("master"/"replica"), replication-offset, health}]}`: `tls-port` only (no
///     `port`, since the plain port is 0); `health` is "online", "loading" (a replica not yet
///     synced) or "failed". Primaries without slots are listed with `slots: []`.
///   - CLUSTER NODES: `<id> <ip>:<tls-port>@<bus-port>,<hostname> <flags> <primary-id|-> ...`:
///     IPs, with the host name after the comma.
///   - MOVED / ASK: `-MOVED <slot> <hostname>:<tls-port>`. Until a node's host name has reached
///     the node asked, it would say `?` instead: the fixture's waits make sure every node knows
///     every host name.
/// Without tls the same, with `port` in CLUSTER SHARDS. Without announce_hostnames CLUSTER
/// SLOTS, MOVED and ASK carry the IP, and SHARDS' `endpoint` is the IP.
///
/// Nodes are configured with `cluster-announce-ip` (the bus would otherwise learn 127.0.0.1, the
/// source address of loopback connections, and never join), `cluster-allow-replica-migration
/// no` (roles change only when a test makes them; so moving every slot off a primary leaves it
/// an empty primary), `repl-diskless-sync-delay 0` and `repl-ping-replica-period 1` (a new
/// replica is in CLUSTER SLOTS within a second or two, not 5-15 s) and `shutdown-timeout 0`.
/// The certificate (one for all nodes, serverAuth + clientAuth: it is also their client
/// certificate on the bus and for replication) names every node: DNS:node-<i>.<domain> for all
/// nodes including spares, DNS:localhost, IP:127.0.0.1 and every node's IP, so the sidecar (host
/// name + SNI + name check) and redis-cli (by IP) both accept it. Stopped (all nodes) by the
/// destructor; every node's CLUSTER NODES and log are printed if the test has failed.
class redis_cluster {
  public:
    /// Allocates names and addresses, issues the certificate (with tls) and writes the hosts
    /// file; starts nothing. `pki` must outlive the cluster; nullptr means test_pki::shared().
    /// Throws std::invalid_argument if shards is 0 or the addresses do not fit in 127.0.0.0/8.
    explicit redis_cluster(redis_cluster_options options = {}, test_pki* pki = nullptr);
    ~redis_cluster();

    redis_cluster(const redis_cluster&) = delete;
    redis_cluster& operator=(const redis_cluster&) = delete;

    /// Starts shards * (1 + replicas_per_shard) nodes (node 0 upwards), creates the cluster
    /// with `redis-cli --cluster create <ip:port>... --cluster-replicas R --cluster-yes` and
    /// waits until it is consistent (see wait_until_consistent); all within settle_timeout.
    /// Which replica serves which primary is redis-cli's choice: ask replicas_of(). redis-cli
    /// refuses fewer than 3 primaries, so 1 or 2 shards are made by hand (ADDSLOTSRANGE, MEET,
    /// REPLICATE: node i < shards is a primary, node j >= shards replicates j % shards).
    /// Throws std::runtime_error with every node's CLUSTER NODES and log.
    void start();

    /// Stops every node (SIGTERM, then SIGKILL). No-op for nodes not running.
    void stop();

    /// Every node, spares included, by index. References stay valid for the cluster's life.
    const std::vector<cluster_node>& nodes() const { return nodes_; }
    /// nodes().at(index).
    const cluster_node& node(std::size_t index) const { return nodes_.at(index); }
    /// The redis_server behind node `index` (for cli_as(), log(), kill(SIGSTOP)...).
    redis_server& server(std::size_t index) const;
    /// The node id of node `index` (CLUSTER MYID); empty before it first started.
    const std::string& node_id(std::size_t index) const { return nodes_.at(index).id; }

    /// Indexes of the running primaries, with or without slots, ascending.
    std::vector<std::size_t> primaries() const;
    /// Indexes of the running replicas of `primary`, ascending.
    std::vector<std::size_t> replicas_of(std::size_t primary) const;
    /// The index of the node that serves `slot` (0..16383), as last agreed.
    std::size_t owner_of(int slot) const;
    /// Slots node `index` serves, as last agreed, ascending.
    std::vector<int> slots_of(std::size_t index) const;

    /// `node-<i>.<domain>:PORT` of the running primary with the lowest index: a seed address
    /// for a cluster client that resolves through hosts_file().
    std::string seed() const;
    /// The same node as `IP:PORT`.
    std::string seed_ip() const;

    /// A hosts(5) file: `127.0.0.X node-<i>.<domain>` for every node, spares included.
    const std::string& hosts_file() const { return hosts_file_; }
    /// options().domain.
    const std::string& domain() const { return options_.domain; }
    /// The PKI whose CA signed the nodes' certificate (pki().ca_cert() is what clients trust).
    test_pki& pki() const;
    /// The name of the nodes' certificate in pki() (pki().server_cert(cert_name())).
    const std::string& cert_name() const { return cert_name_; }
    const redis_cluster_options& options() const { return options_; }

    /// redis_server::cli() on node `index`: `redis-cli -e` by IP, TLS and requirepass
    /// included, no `-c` (a MOVED comes back as an error on stderr, exit 1).
    process_result cli(std::size_t index, const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

    /// The hash slot of `key` (CRC16/XMODEM mod 16384 of the key, or of its `{hash tag}`),
    /// as CLUSTER KEYSLOT computes it.
    static int key_slot(std::string_view key);
    /// A key (`<prefix>:<n>`) whose slot is `slot`. More keys in that slot:
    /// "{" + key + "}" + anything.
    static std::string key_for_slot(int slot, std::string_view prefix = "key");

    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]` on replica `replica`, then waits until every
    /// running node agrees it is a primary (its old primary now its replica, if running) and
    /// the cluster is consistent. Throws std::runtime_error (not a running replica, refused,
    /// or not done within settle_timeout).
    void failover(std::size_t replica, failover_mode mode = failover_mode::coordinated);

    /// SIGKILL to node `index` (reaped: its ports are free on return). With `wait`, then waits
    /// until every other running node flags it `fail` and the cluster is consistent again: for a
    /// primary that means one of its replicas has been elected (about 2 * node_timeout), so
    /// killing a primary without a running replica throws; pass wait = false for that.
    void kill(std::size_t index, bool wait = true);

    /// Starts a killed (or stopped) node again on the same ports with its nodes.conf (same id,
    /// no data) and waits until it has rejoined and the cluster is consistent. A primary that
    /// was replaced comes back as a replica of its successor.
    void restart(std::size_t index);

    /// Starts the next spare node, `CLUSTER MEET`s it and, unless `as_primary`, makes it a
    /// replica (`CLUSTER REPLICATE`) of `replica_of` (default: the lowest running primary);
    /// waits until every node knows it and the cluster is consistent. A new primary has no
    /// slots: give it some with migrate_slot(). Returns its index. Throws std::runtime_error if
    /// no spare is left (see spare_nodes).
    std::size_t add_node(bool as_primary = true,
                         std::optional<std::size_t> replica_of = std::nullopt);

    /// A live reshard of one slot with the keys in it, the way redis-cli --cluster reshard
    /// does it: begin_slot_migration(), migrate_keys() until the slot is empty,
    /// finish_slot_migration(), then waits until every node agrees `to` serves it.
    void migrate_slot(int slot, std::size_t from, std::size_t to);
    /// migrate_slot() for the `count` lowest slots `from` serves, with one wait at the end.
    void move_slots(std::size_t from, std::size_t to, std::size_t count);

    /// The steps of migrate_slot(), for tests that stop half-way (ASK, TRYAGAIN):
    /// `CLUSTER SETSLOT slot IMPORTING <from>` on `to`, then `MIGRATING <to>` on `from`.
    /// From here `from` answers `-ASK slot <to's host name>:port` for keys it no longer has.
    void begin_slot_migration(int slot, std::size_t from, std::size_t to);
    /// Moves up to `max_keys` keys of `slot` from `from` to `to` (`CLUSTER GETKEYSINSLOT`,
    /// `MIGRATE ... [AUTH pw] KEYS ...`). Returns how many it moved (0: the slot is empty).
    /// Key names must not contain newlines (they are read from redis-cli's output).
    std::size_t migrate_keys(int slot, std::size_t from, std::size_t to, std::size_t max_keys);
    /// `CLUSTER SETSLOT slot NODE <to>` on `to`, `from`, then every other running primary.
    /// Does not wait; wait_until_consistent() does.
    void finish_slot_migration(int slot, std::size_t from, std::size_t to);

    /// Polls every running member (one redis-cli each, every 100 ms) until all of them report:
    /// `cluster_state:ok` with all 16384 slots assigned and ok; the same view in CLUSTER NODES
    /// (the same members, roles, primaries and slot ranges; no open slots; no `handshake`,
    /// `noaddr` or `fail?`; `fail` exactly on the members that are not running; every running
    /// node `connected` and, with announce_hostnames, known by its host name); every running
    /// replica `master_link_status:up`; and every running member `online` in CLUSTER SHARDS
    /// (which is also when CLUSTER SLOTS lists the replicas). Then updates nodes()' roles.
    /// Throws std::runtime_error with the last disagreement, every node's CLUSTER NODES and
    /// log tails if that takes longer than `timeout` (default settle_timeout).
    void wait_until_consistent(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

    /// Every running node's CLUSTER NODES, for assertion messages.
    std::string describe() const;

  private:
    struct agreed_view;
    void start_node(std::size_t index);
    std::unique_ptr<redis_server> make_server(std::size_t index) const;
    std::vector<std::string> tls_and_auth_args() const;
    void create_with_redis_cli(std::chrono::steady_clock::time_point deadline);
    void create_by_hand(std::chrono::steady_clock::time_point deadline);
    void wait_for(const std::string& what, std::chrono::milliseconds timeout,
                  const std::function<std::string(const agreed_view&)>& extra = {});
    std::string check_once(agreed_view& view) const;
    void apply(const agreed_view& view);
    void refresh_running();
    std::optional<std::size_t> index_of(const std::string& id) const;
    [[noreturn]] void fail(const std::string& what, const std::string& detail) const;
    std::string expect_ok(std::size_t index, const std::vector<std::string>& args,
                          const std::string& what) const;
    void require_running_member(std::size_t index, const char* what) const;

    redis_cluster_options options_;
    mutable test_pki* pki_;
    temp_dir dir_;
    std::string cert_name_;
    std::string hosts_file_;
    std::vector<cluster_node> nodes_;
    std::vector<std::unique_ptr<redis_server>> servers_;
    std::vector<int> slot_owner_;  // node index per slot, -1 unknown
};

}  // namespace redis_sidecar::testing
