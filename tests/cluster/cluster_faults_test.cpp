// Cluster mode against what goes wrong: topology replies that are malformed, enormous or list
// 10,000 nodes (from a scripted stand-in: no real server sends them), and the shapes a real
// cluster can take that a plain one does not (Serverless: a primary and its read replica behind
// one host name on two ports). Also `redis-sidecar check` in cluster mode.

#include "cluster_sidecar.hpp"
#include "scripted_upstream.hpp"

#include <sys/time.h>

#include <fstream>
#include <sstream>

namespace redis_sidecar::cluster_test {
namespace {

std::string bulk(const std::string& s) {
    return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}

/// The sidecar in front of a scripted upstream (no TLS), cluster mode on; not waiting for
/// readiness (a bad topology never makes it ready).
class scripted_cluster : public ::testing::Test {
  protected:
    void start(std::map<std::string, std::string> replies, std::size_t ports = 20) {
        upstream_ = std::make_unique<scripted_upstream>(std::move(replies));
        port_ = free_tcp_port();
        http_ = free_tcp_port();
        first_ = free_port_range(ports);
        env_map env = base_env();
        env["REDIS_ADDR"] = "127.0.0.1:" + std::to_string(upstream_->port());
        env["REDIS_SIDECAR_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
        env["REDIS_SIDECAR_HTTP_ADDR"] = "127.0.0.1:" + std::to_string(http_);
        env["REDIS_SIDECAR_CLUSTER"] = "on";
        env["REDIS_SIDECAR_CLUSTER_PORTS"] =
            std::to_string(first_) + "-" + std::to_string(first_ + ports - 1);
        env["REDIS_SIDECAR_LOG_FORMAT"] = "text";
        env["REDIS_MIN_IDLE_CONNECTIONS"] = "1";
        sidecar_.start({REDIS_SIDECAR_BINARY, "run"}, env);
        ASSERT_TRUE(wait_for_tcp_port("127.0.0.1", port_, 10s)) << sidecar_.err();
    }
    process_result cli(const std::vector<std::string>& args, const std::string& input = {}) {
        std::vector<std::string> argv = {"redis-cli", "-p", std::to_string(port_)};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, base_env(), 30s, input);
    }
    double metric(const std::string& name) {
        std::string body;
        http_status(http_, "/metrics", &body);
        return metric_sum(body, name);
    }
    nlohmann::json status() {
        std::string body;
        http_status(http_, "/status", &body);
        return nlohmann::json::parse(body, nullptr, false);
    }

    std::unique_ptr<scripted_upstream> upstream_;
    child_process sidecar_{"redis-sidecar"};
    std::uint16_t port_ = 0;
    std::uint16_t http_ = 0;
    std::uint16_t first_ = 0;
};

TEST_F(scripted_cluster, a_malformed_topology_is_an_error_a_metric_and_not_ready_never_a_crash) {
    const std::string bad_shards = "*1\r\n*2\r\n$5\r\nslots\r\n:1\r\n";
    const std::string bad_slots = "*1\r\n*3\r\n:0\r\n:16383\r\n$10\r\nnot-a-node\r\n";
    start({{"CLUSTER SHARDS", bad_shards}, {"CLUSTER SLOTS", bad_slots}});
    ASSERT_TRUE(eventually(
        [&] {
            return metric("redis_sidecar_cluster_topology_refreshes_total{result=\"failed\"}") > 0;
        },
        10s))
        << sidecar_.err();
    std::string body;
    EXPECT_EQ(http_status(http_, "/readyz", &body), 503);
    EXPECT_NE(body.find("cluster"), std::string::npos) << body;
    const auto j = status();
    EXPECT_NE(j["cluster"]["last_error"].get<std::string>().find("CLUSTER SHARDS"),
              std::string::npos)
        << j.dump(2);
    EXPECT_NE(sidecar_.err().find("cluster topology reply not understood"), std::string::npos);
    // A client asking for the topology gets an error naming it, not the unreadable reply; the
    // same connection goes on.
    const auto r = cli({}, "CLUSTER SLOTS\nPING\n");
    EXPECT_NE(r.out.find("could not rewrite the node addresses of the upstream's CLUSTER SLOTS"),
              std::string::npos)
        << r;
    EXPECT_NE(r.out.find("PONG"), std::string::npos) << r;
    EXPECT_EQ(r.out.find("not-a-node"), std::string::npos) << r;
    EXPECT_GE(metric("redis_sidecar_cluster_rewrite_errors_total"), 1);
    EXPECT_TRUE(sidecar_.running());
}

TEST_F(scripted_cluster,
       an_enormous_topology_reply_is_dropped_as_it_arrives_and_answered_with_an_error) {
    // One range whose node id is 9 MiB: more than the 8 MiB a rewritten reply may hold.
    const std::string id(9 * 1024 * 1024, 'a');
    const std::string huge =
        "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n" + bulk("127.0.0.1") + ":1\r\n" + bulk(id);
    start({{"CLUSTER SLOTS", huge}, {"CLUSTER SHARDS", "-ERR unknown subcommand 'SHARDS'\r\n"}});
    const auto r = cli({}, "CLUSTER SLOTS\nPING\n");
    EXPECT_NE(r.out.find("larger than 8388608 bytes"), std::string::npos) << r.out.substr(0, 300);
    EXPECT_NE(r.out.find("PONG"), std::string::npos);
    EXPECT_LT(r.out.size(), 1000u);
    EXPECT_GE(metric("redis_sidecar_cluster_rewrite_errors_total"), 1);
    // The sidecar's own topology read went the same way (CLUSTER SLOTS after SHARDS was
    // unknown): a failure, counted; the process is fine.
    EXPECT_TRUE(eventually([&] { return upstream_->count("CLUSTER SLOTS") >= 2; }, 10s));
    EXPECT_TRUE(sidecar_.running()) << sidecar_.err();
}

TEST_F(scripted_cluster, ten_thousand_nodes_fill_the_range_clearly_and_the_sidecar_keeps_serving) {
    // 10,000 single-node shards on closed loopback ports.
    std::string shards = "*10000\r\n";
    for (int i = 0; i < 10000; ++i) {
        const auto slot = std::to_string(i);
        shards += "*4\r\n" + bulk("slots") + "*2\r\n:" + slot + "\r\n:" + slot + "\r\n" +
                  bulk("nodes") + "*1\r\n*12\r\n" + bulk("id") + bulk("id" + slot) + bulk("port") +
                  ":" + std::to_string(1 + i) + "\r\n" + bulk("ip") + bulk("127.0.0.1") +
                  bulk("endpoint") + bulk("127.0.0.1") + bulk("role") + bulk("master") +
                  bulk("health") + bulk("online");
    }
    start({{"CLUSTER SHARDS", shards}}, 20);
    ASSERT_TRUE(eventually([&] { return metric("redis_sidecar_cluster_nodes") == 20; }, 15s))
        << sidecar_.err();
    EXPECT_GE(metric("redis_sidecar_cluster_ports_exhausted_total"), 9980);
    EXPECT_NE(sidecar_.err().find("more cluster nodes than local ports"), std::string::npos);
    EXPECT_NE(status()["cluster"]["last_error"].get<std::string>().find("(10000)"),
              std::string::npos);
    // The main port serves; a client's CLUSTER SHARDS names only the nodes that have a port.
    const auto r = cli({"CLUSTER", "SHARDS"});
    ASSERT_TRUE(r.ok()) << r;
    std::size_t local = 0;
    std::istringstream lines(r.out);
    for (std::string l; std::getline(lines, l);) {
        if (l == "127.0.0.1") ++local;
    }
    EXPECT_EQ(local, 40u);  // ip and endpoint of 20 nodes
    EXPECT_EQ(trim(cli({"PING"}).out), "PONG");
    EXPECT_TRUE(sidecar_.running());
}

// ---- Real clusters

class cluster_shapes : public ::testing::Test {};

// ElastiCache Serverless: one endpoint name; port 6379 the primary, 6380 reads from a replica
// after READONLY. Here: a one-shard cluster whose replica announces the primary's host name,
// which resolves to both nodes' addresses.
TEST_F(cluster_shapes, serverless_shaped_one_name_two_ports_reads_from_the_replica_port) {
    auto options = cluster_options();
    options.shards = 1;
    options.replicas_per_shard = 1;
    redis_cluster cluster(options);
    cluster.start();
    const auto& primary = cluster.node(0);
    const auto& replica = cluster.node(1);
    ASSERT_EQ(replica.role, cluster_role::replica);
    const auto set =
        cluster.cli(1, {"CONFIG", "SET", "cluster-announce-hostname", primary.host_name});
    ASSERT_TRUE(set.ok()) << set;
    // Every node learns the replica's new name (gossip).
    ASSERT_TRUE(eventually(
        [&] {
            const auto s = cluster.cli(0, {"CLUSTER", "SLOTS"});
            std::size_t named = 0;
            std::istringstream in(s.out);
            for (std::string l; std::getline(in, l);) named += l == primary.host_name ? 1 : 0;
            return named == 2;
        },
        15s));
    temp_dir dir;
    const auto hosts = dir.path() + "/hosts";
    {
        std::ofstream f(hosts);
        f << primary.ip << " " << primary.host_name << "\n"
          << replica.ip << " " << primary.host_name << "\n";
    }
    const auto first = free_port_range(10);
    auto env = sidecar_env(cluster, first, 10);
    env["REDIS_SIDECAR_HOSTS_FILE"] = hosts;
    sidecar_process sidecar;
    sidecar.start(env);

    const auto j = status_of(sidecar);
    std::uint16_t primary_port = 0;
    std::uint16_t replica_port = 0;
    for (const auto& n : j["cluster"]["nodes"]) {
        const auto node = n["node"].get<std::string>();
        EXPECT_EQ(node.rfind(primary.host_name + ":", 0), 0u) << node;
        (n["role"] == "primary" ? primary_port : replica_port) =
            n["local_port"].get<std::uint16_t>();
    }
    ASSERT_NE(primary_port, 0) << j.dump(2);
    ASSERT_NE(replica_port, 0) << j.dump(2);

    auto cli = [&](std::uint16_t port, const std::string& input) {
        return run_process({"redis-cli", "-p", std::to_string(port)}, base_env(), 20s, input);
    };
    EXPECT_EQ(trim(cli(primary_port, "SET greeting hello\nWAIT 1 2000\n").out), "OK\n1");
    // Without READONLY the replica redirects to the primary's local port; with it, it reads.
    const auto moved = cli(replica_port, "GET greeting\n");
    EXPECT_NE(moved.out.find("MOVED"), std::string::npos) << moved;
    EXPECT_NE(moved.out.find("127.0.0.1:" + std::to_string(primary_port)), std::string::npos)
        << moved;
    EXPECT_EQ(trim(cli(replica_port, "READONLY\nGET greeting\n").out), "OK\nhello");
    // CLUSTER SLOTS through the sidecar names both local ports.
    const auto slots = cli(sidecar.port(), "CLUSTER SLOTS\n");
    EXPECT_NE(slots.out.find(std::to_string(primary_port)), std::string::npos) << slots.out;
    EXPECT_NE(slots.out.find(std::to_string(replica_port)), std::string::npos) << slots.out;
    EXPECT_EQ(slots.out.find(primary.host_name), std::string::npos) << slots.out;
}

// Every node's connection verifies that node's own name: a node announced under a name its
// certificate does not carry is refused, however the cluster vouches for it.
TEST_F(cluster_shapes, a_node_whose_certificate_does_not_name_it_is_refused) {
    redis_cluster cluster(cluster_options());
    cluster.start();
    const auto replica = cluster.replicas_of(cluster.primaries().front()).front();
    const std::string impostor = "impostor.other.test";
    ASSERT_TRUE(
        cluster.cli(replica, {"CONFIG", "SET", "cluster-announce-hostname", impostor}).ok());
    ASSERT_TRUE(eventually(
        [&] {
            return cluster.cli(0, {"CLUSTER", "SLOTS"}).out.find(impostor) != std::string::npos;
        },
        15s));
    temp_dir dir;
    const auto hosts = dir.path() + "/hosts";
    {
        std::ofstream f(hosts);
        f << read_file(cluster.hosts_file()) << cluster.node(replica).ip << " " << impostor << "\n";
    }
    const auto first = free_port_range(10);
    auto env = sidecar_env(cluster, first, 10);
    env["REDIS_SIDECAR_HOSTS_FILE"] = hosts;
    sidecar_process sidecar;
    sidecar.start(env);  // ready: every primary is fine
    std::uint16_t port = 0;
    std::string error;
    ASSERT_TRUE(eventually(
        [&] {
            const auto j = status_of(sidecar);
            for (const auto& n : j["cluster"]["nodes"]) {
                if (n["node"].get<std::string>().rfind(impostor, 0) != 0) continue;
                port = n["local_port"].get<std::uint16_t>();
                if (n.contains("last_error")) error = n["last_error"].get<std::string>();
            }
            return !error.empty();
        },
        20s))
        << status_of(sidecar).dump(2);
    EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;
    const auto r =
        run_process({"redis-cli", "-p", std::to_string(port), "READONLY"}, base_env(), 20s);
    EXPECT_NE(r.out.find("upstream unavailable"), std::string::npos) << r;
}

// ElastiCache RBAC: the sidecar authenticates as an ACL user on every node.
TEST_F(cluster_shapes, an_acl_user_is_the_identity_on_every_node) {
    auto options = cluster_options();
    options.acl_users = {"user app on >app-secret-password-0123 ~* &* +@all"};
    redis_cluster cluster(options);
    cluster.start();
    const auto first = free_port_range(10);
    auto env = sidecar_env(cluster, first, 10);
    env["REDIS_USERNAME"] = "app";
    env["REDIS_PASSWORD"] = "app-secret-password-0123";
    sidecar_process sidecar;
    sidecar.start(env);
    const auto j = status_of(sidecar);
    std::size_t nodes = 0;
    for (const auto& n : j["cluster"]["nodes"]) {
        const auto port = std::to_string(n["local_port"].get<int>());
        const auto r = run_process({"redis-cli", "-p", port, "ACL", "WHOAMI"}, base_env(), 20s);
        EXPECT_EQ(trim(r.out), "app") << "port " << port << ": " << r;
        ++nodes;
    }
    EXPECT_EQ(nodes, 6u);
    std::string sets;
    for (int i = 0; i < 200; ++i) sets += "SET acl:" + std::to_string(i) + " v\n";
    const auto w = run_process({"redis-cli", "-c", "-p", std::to_string(sidecar.port())},
                               base_env(), 60s, sets);
    std::size_t ok = 0;
    std::istringstream in(w.out);
    for (std::string l; std::getline(in, l);) ok += l == "OK" ? 1 : 0;
    EXPECT_EQ(ok, 200u) << w;
}

// A node that leaves the cluster: its port stops taking clients at the next topology read, a
// client still connected to it keeps its connection until it leaves, then the port is gone.
TEST_F(cluster_shapes, a_node_that_leaves_loses_its_port_after_its_clients_leave) {
    redis_cluster cluster(cluster_options());
    cluster.start();
    const auto spare = cluster.add_node(false);  // a replica of the lowest primary
    const auto first = free_port_range(10);
    sidecar_process sidecar;
    sidecar.start(sidecar_env(cluster, first, 10));
    const auto spare_name = cluster.node(spare).address();
    std::uint16_t port = 0;
    {
        const auto j = status_of(sidecar);
        for (const auto& n : j["cluster"]["nodes"]) {
            if (n["node"] == spare_name) port = n["local_port"].get<std::uint16_t>();
        }
        ASSERT_NE(port, 0) << j.dump(2);
    }
    // A client on the leaving node's port, idle.
    auto held = connect_tcp("127.0.0.1", port, 5s);
    ASSERT_TRUE(held);
    const std::string ping = "*1\r\n$4\r\nPING\r\n";
    ASSERT_EQ(::send(held.get(), ping.data(), ping.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(ping.size()));
    char buf[64];
    ASSERT_GT(::recv(held.get(), buf, sizeof buf, 0), 0);

    // Forget it everywhere, then reset it: it is no member any more.
    for (const auto& n : cluster.nodes()) {
        if (n.index == spare || !n.member || !n.running) continue;
        ASSERT_TRUE(cluster.cli(n.index, {"CLUSTER", "FORGET", cluster.node_id(spare)}).ok());
    }
    ASSERT_TRUE(cluster.cli(spare, {"CLUSTER", "RESET", "HARD"}).ok());
    ASSERT_TRUE(eventually(
        [&] { return sidecar.metric("redis_sidecar_cluster_nodes_removed_total") == 1; }, 25s))
        << status_of(sidecar).dump(2);
    EXPECT_EQ(sidecar.metric("redis_sidecar_cluster_nodes"), 6);
    EXPECT_FALSE(connect_tcp("127.0.0.1", port, 2s)) << "the port still accepts";
    // The client that was there is still served (by the node it came for).
    ASSERT_EQ(::send(held.get(), ping.data(), ping.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(ping.size()));
    timeval tv{5, 0};
    ::setsockopt(held.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const auto n = ::recv(held.get(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "+PONG\r\n");
    const auto j = status_of(sidecar);
    for (const auto& node : j["cluster"]["nodes"]) EXPECT_NE(node["node"], spare_name);
}

TEST_F(cluster_shapes, check_reads_the_topology_and_every_node) {
    redis_cluster cluster(cluster_options());
    cluster.start();
    const auto first = free_port_range(10);
    auto env = base_env();
    for (const auto& [k, v] : sidecar_env(cluster, first, 10)) env[k] = v;
    const auto r = run_process({REDIS_SIDECAR_BINARY, "check"}, env, 60s);
    ASSERT_TRUE(r.ok()) << r;
    EXPECT_NE(r.out.find("cluster 3 shards, 6 nodes, every slot served"), std::string::npos)
        << r.out;
    for (const auto& n : cluster.nodes()) {
        if (!n.member) continue;
        EXPECT_NE(r.out.find("ok    node " + n.address()), std::string::npos) << r.out;
    }
    // Too few ports: the check says so, with the setting to change.
    env["REDIS_SIDECAR_CLUSTER_PORTS"] = std::to_string(first) + "-" + std::to_string(first + 3);
    const auto few = run_process({REDIS_SIDECAR_BINARY, "check"}, env, 60s);
    EXPECT_EQ(few.exit_code, 1) << few;
    EXPECT_NE(few.out.find("REDIS_SIDECAR_CLUSTER_PORTS"), std::string::npos) << few.out;
    // A wrong password fails on the first node with the password hint.
    env["REDIS_SIDECAR_CLUSTER_PORTS"] = std::to_string(first) + "-" + std::to_string(first + 9);
    env["REDIS_PASSWORD"] = "wrong-password-0123456789";
    const auto bad = run_process({REDIS_SIDECAR_BINARY, "check"}, env, 60s);
    EXPECT_EQ(bad.exit_code, 1) << bad;
    EXPECT_NE(bad.out.find("password"), std::string::npos) << bad.out;
    EXPECT_EQ(bad.out.find("wrong-password-0123456789"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace redis_sidecar::cluster_test
