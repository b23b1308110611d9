// Cluster mode, black-box: the sidecar binary in front of a real TLS Redis Cluster whose nodes
// announce host names (as ElastiCache's do), driven by real clients (redis-cli -c,
// redis-benchmark --cluster). Every node address a client sees must be one of the sidecar's
// local ports, and every command must reach the node that serves it.

#include "cluster_sidecar.hpp"

#include <set>
#include <sstream>

namespace redis_sidecar::cluster_test {
namespace {

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

/// redis-cli's reply lines without its "-> Redirected to slot [..] located at .." notes.
std::vector<std::string> replies_of(const std::string& s) {
    std::vector<std::string> out;
    for (auto& l : lines_of(s)) {  // (an error reply is followed by an empty line)
        if (!l.empty() && l.rfind("-> Redirected", 0) != 0) out.push_back(std::move(l));
    }
    return out;
}

/// Nothing upstream-shaped: no node host name, no node IP, no node port.
void expect_only_local_addresses(const std::string& text, const redis_cluster& cluster,
                                 const std::string& what) {
    EXPECT_EQ(text.find(cluster.domain()), std::string::npos) << what << ":\n" << text;
    for (const auto& n : cluster.nodes()) {
        EXPECT_EQ(text.find(n.ip + ":"), std::string::npos) << what << ":\n" << text;
        EXPECT_EQ(text.find(n.ip + "\n"), std::string::npos) << what << ":\n" << text;
        if (n.port != 0) {
            EXPECT_EQ(text.find(std::to_string(n.port)), std::string::npos)
                << what << " names node port " << n.port << ":\n"
                << text;
        }
    }
}

class cluster_bridge : public ::testing::Test {
  protected:
    void start(redis_cluster_options options = cluster_options(), std::size_t ports = 20,
               env_map extra = {}) {
        cluster_ = std::make_unique<redis_cluster>(options);
        cluster_->start();
        first_port_ = free_port_range(ports);
        auto env = sidecar_env(*cluster_, first_port_, ports);
        for (const auto& [k, v] : extra) env[k] = v;
        sidecar_.start(env);
    }
    /// redis-cli against the sidecar's `port` (default: the main one), `-c` to follow MOVED.
    process_result cli(std::vector<std::string> args, std::uint16_t port = 0, bool follow = false,
                       const std::string& input = {}) {
        std::vector<std::string> argv = {"redis-cli", "-p",
                                         std::to_string(port == 0 ? sidecar_.port() : port)};
        if (follow) argv.push_back("-c");
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, base_env(), 120s, input);
    }
    /// The node ports the sidecar has open (from /status).
    std::vector<std::uint16_t> node_ports() {
        std::vector<std::uint16_t> out;
        const auto j = status_of(sidecar_);
        for (const auto& n : j["cluster"]["nodes"]) {
            if (n.contains("clients")) out.push_back(n["local_port"].get<std::uint16_t>());
        }
        return out;
    }

    std::unique_ptr<redis_cluster> cluster_;
    sidecar_process sidecar_;
    std::uint16_t first_port_ = 0;
};

TEST_F(cluster_bridge, redis_cli_follows_moved_to_local_ports_for_10000_keys) {
    start();
    std::string sets;
    std::string gets;
    for (int i = 0; i < 10000; ++i) {
        sets += "SET key:" + std::to_string(i) + " value-" + std::to_string(i) + "\n";
        gets += "GET key:" + std::to_string(i) + "\n";
    }
    const auto w = cli({}, 0, true, sets);
    ASSERT_TRUE(w.ok()) << w;
    const auto written = replies_of(w.out);
    ASSERT_EQ(written.size(), 10000u) << w.err;
    for (const auto& l : written) ASSERT_EQ(l, "OK");
    // Every redirect went to a local port.
    for (const auto& l : lines_of(w.out)) {
        if (l.rfind("-> Redirected", 0) != 0) continue;
        const auto port = std::stoi(l.substr(l.rfind(':') + 1));
        ASSERT_GE(port, first_port_) << l;
        ASSERT_LT(port, first_port_ + 20) << l;
    }
    const auto r = cli({}, 0, true, gets);
    ASSERT_TRUE(r.ok()) << r;
    const auto read = replies_of(r.out);
    ASSERT_EQ(read.size(), 10000u);
    for (int i = 0; i < 10000; ++i) ASSERT_EQ(read[i], "value-" + std::to_string(i));

    // The keys are where the cluster says, spread over every primary.
    long long total = 0;
    for (const auto p : cluster_->primaries()) {
        const auto n = cluster_->cli(p, {"DBSIZE"});
        ASSERT_TRUE(n.ok()) << n;
        EXPECT_GT(std::stoll(trim(n.out)), 3000) << "node " << p;
        total += std::stoll(trim(n.out));
    }
    EXPECT_EQ(total, 10000);
    EXPECT_GT(sidecar_.metric("redis_sidecar_cluster_rewrites_total{kind=\"redirect\"}"), 0);
    EXPECT_EQ(sidecar_.metric("redis_sidecar_cluster_rewrite_errors_total"), 0);
}

TEST_F(cluster_bridge, topology_replies_through_every_port_name_only_local_ports) {
    start();
    const auto ports = node_ports();
    ASSERT_EQ(ports.size(), 6u) << status_of(sidecar_).dump(2);
    std::vector<std::uint16_t> all = ports;
    all.push_back(sidecar_.port());
    for (const auto port : all) {
        for (const auto& sub : {"SLOTS", "SHARDS", "NODES"}) {
            const auto r = cli({"CLUSTER", sub}, port);
            ASSERT_TRUE(r.ok()) << r;
            expect_only_local_addresses(
                r.out, *cluster_, std::string("CLUSTER ") + sub + " via " + std::to_string(port));
            EXPECT_NE(r.out.find("127.0.0.1"), std::string::npos) << r.out;
        }
        // RESP3 too (maps in CLUSTER SHARDS and the metadata, a verbatim string for NODES).
        const auto r3 = cli({"-3", "CLUSTER", "SHARDS"}, port);
        ASSERT_TRUE(r3.ok()) << r3;
        expect_only_local_addresses(r3.out, *cluster_, "RESP3 CLUSTER SHARDS");
    }
    // CLUSTER REPLICAS of each primary, and the local ports in CLUSTER SLOTS are the open ones.
    const auto slots = cli({"CLUSTER", "SLOTS"});
    std::set<std::uint16_t> named;
    for (const auto& l : lines_of(slots.out)) {
        if (l.size() == 5 && std::all_of(l.begin(), l.end(), ::isdigit)) {
            const auto p = static_cast<std::uint16_t>(std::stoi(l));
            if (p >= first_port_ && p < first_port_ + 20) named.insert(p);
        }
    }
    EXPECT_EQ(named, std::set<std::uint16_t>(ports.begin(), ports.end())) << slots.out;
    for (const auto p : cluster_->primaries()) {
        const auto rep = cli({"CLUSTER", "REPLICAS", cluster_->node_id(p)});
        ASSERT_TRUE(rep.ok()) << rep;
        expect_only_local_addresses(rep.out, *cluster_, "CLUSTER REPLICAS");
        EXPECT_NE(rep.out.find("127.0.0.1:"), std::string::npos) << rep.out;
    }
    EXPECT_GE(sidecar_.metric("redis_sidecar_cluster_rewrites_total{kind=\"topology\"}"), 28);
    EXPECT_EQ(sidecar_.metric("redis_sidecar_cluster_nodes"), 6);
}

TEST_F(cluster_bridge, a_plain_client_on_the_main_port_gets_the_seed_nodes_keys_and_local_moved) {
    start();
    const auto seed_slot = cluster_->slots_of(cluster_->primaries().front()).front();
    const auto own = redis_cluster::key_for_slot(seed_slot, "own");
    const auto other_slot = cluster_->slots_of(cluster_->primaries().back()).front();
    const auto other = redis_cluster::key_for_slot(other_slot, "other");
    EXPECT_EQ(trim(cli({"SET", own, "1"}).out), "OK");
    EXPECT_EQ(trim(cli({"GET", own}).out), "1");
    const auto moved = cli({"SET", other, "1"});
    EXPECT_NE(moved.out.find("MOVED " + std::to_string(other_slot) + " 127.0.0.1:"),
              std::string::npos)
        << moved;
    expect_only_local_addresses(moved.out, *cluster_, "MOVED");
    // Pipelined: the MOVED in the middle is rewritten, the replies around it untouched.
    const auto piped = cli({}, 0, false, "PING\nGET " + other + "\nGET " + own + "\n");
    const auto lines = replies_of(piped.out);
    ASSERT_EQ(lines.size(), 3u) << piped;
    EXPECT_EQ(lines[0], "PONG");
    EXPECT_EQ(lines[1].rfind("MOVED " + std::to_string(other_slot) + " 127.0.0.1:", 0), 0u);
    EXPECT_EQ(lines[2], "1");
}

TEST_F(cluster_bridge, redis_benchmark_cluster_mode_runs_through_the_local_ports) {
    start();
    const auto r =
        run_process({"redis-benchmark", "--cluster", "-p", std::to_string(sidecar_.port()), "-t",
                     "set,get", "-n", "20000", "-c", "12", "-r", "100000", "-q"},
                    base_env(), 120s);
    ASSERT_TRUE(r.ok()) << r;
    EXPECT_NE(r.out.find("SET:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("GET:"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("rror"), std::string::npos) << r.out;
    // Traffic reached every primary's port.
    const auto j = status_of(sidecar_);
    std::size_t busy = 0;
    for (const auto& n : j["cluster"]["nodes"]) {
        if (n["role"] == "primary" && n.contains("pool") && n["pool"]["open"].get<int>() > 0)
            ++busy;
    }
    EXPECT_EQ(busy, 3u) << j.dump(2);
}

TEST_F(cluster_bridge, readiness_waits_for_every_primary_and_status_lists_the_nodes) {
    start();
    EXPECT_EQ(sidecar_.readyz(), 200);
    const auto j = status_of(sidecar_);
    ASSERT_TRUE(j["cluster"]["active"].get<bool>()) << j.dump(2);
    std::size_t primaries = 0;
    for (const auto& n : j["cluster"]["nodes"]) {
        EXPECT_TRUE(n["in_topology"].get<bool>());
        const auto port = n["local_port"].get<int>();
        EXPECT_GE(port, first_port_);
        EXPECT_LT(port, first_port_ + 20);
        EXPECT_NE(n["node"].get<std::string>().find(cluster_->domain()), std::string::npos);
        if (n["role"] == "primary") ++primaries;
    }
    EXPECT_EQ(primaries, 3u);
    EXPECT_EQ(sidecar_.metric("redis_sidecar_cluster_node_up"), 6);

    // A primary whose every connection fails: not ready until its replica took over.
    const auto victim = cluster_->primaries().back();
    cluster_->kill(victim, false);
    EXPECT_TRUE(eventually([&] { return sidecar_.readyz() == 503; }, 20s));
    std::string body;
    http_status(sidecar_.http_port(), "/readyz", &body);
    EXPECT_NE(body.find("cluster"), std::string::npos) << body;
    cluster_->wait_until_consistent();
    EXPECT_TRUE(eventually([&] { return sidecar_.readyz() == 200; }, 40s))
        << status_of(sidecar_).dump(2);
}

TEST_F(cluster_bridge, more_nodes_than_ports_is_an_error_and_a_metric_and_the_rest_serves) {
    // 6 nodes, 4 ports: every primary gets one (the topology lists primaries first), two
    // replicas are left out.
    start(cluster_options(), 4);
    EXPECT_EQ(sidecar_.metric("redis_sidecar_cluster_nodes"), 4);
    EXPECT_GT(sidecar_.metric("redis_sidecar_cluster_ports_exhausted_total"), 0);
    const auto j = status_of(sidecar_);
    EXPECT_NE(j["cluster"]["last_error"].get<std::string>().find("REDIS_SIDECAR_CLUSTER_PORTS"),
              std::string::npos)
        << j.dump(2);
    EXPECT_NE(sidecar_.process().err().find("more cluster nodes than local ports"),
              std::string::npos);
    // Still serving every slot.
    std::string sets;
    for (int i = 0; i < 300; ++i) sets += "SET k" + std::to_string(i) + " v\n";
    const auto w = cli({}, 0, true, sets);
    const auto written = replies_of(w.out);
    EXPECT_EQ(std::count(written.begin(), written.end(), "OK"), 300) << w;
    const auto slots = cli({"CLUSTER", "SLOTS"});
    expect_only_local_addresses(slots.out, *cluster_, "CLUSTER SLOTS with a full range");
}

}  // namespace
}  // namespace redis_sidecar::cluster_test
