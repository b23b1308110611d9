#include "support/redis_cluster.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <iostream>
#include <set>
#include <string>
#include <vector>

namespace redis_sidecar::testing {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

/// Every test must leave no child behind: not running, not a zombie.
class redis_cluster_test : public ::testing::Test {
  protected:
    void TearDown() override { EXPECT_TRUE(no_child_processes()); }
};

long long ms_since(clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start).count();
}

/// One node as CLUSTER SLOTS names it: [endpoint, port, id, {metadata}].
struct slots_node {
    std::string endpoint;
    int port = 0;
    std::string id;
    std::string ip;  // metadata "ip", if any
};

/// One entry of CLUSTER SLOTS: [start, end, primary, replica...].
struct slots_range {
    int start = 0;
    int end = 0;
    std::vector<slots_node> nodes;
};

/// Reads exactly the JSON `redis-cli --json CLUSTER SLOTS` prints (no white space, strings
/// without escapes). No std::regex: GCC 12 with ASan warns inside <regex>.
class slots_json {
  public:
    explicit slots_json(const std::string& text) : s_(text) {}

    /// The ranges; empty if the text is not what was expected.
    std::vector<slots_range> parse() {
        std::vector<slots_range> out;
        if (!eat('[')) return {};
        while (!eat(']')) {
            if (!out.empty() && !eat(',')) return {};
            slots_range r;
            if (!eat('[') || !number(r.start) || !eat(',') || !number(r.end)) return {};
            while (eat(',')) {
                slots_node n;
                if (!eat('[') || !string(n.endpoint) || !eat(',') || !number(n.port) || !eat(',') ||
                    !string(n.id) || !eat(',') || !eat('{')) {
                    return {};
                }
                for (bool first = true; !eat('}'); first = false) {
                    std::string key, value;
                    if ((!first && !eat(',')) || !string(key) || !eat(':') || !string(value)) {
                        return {};
                    }
                    if (key == "ip") n.ip = value;
                }
                if (!eat(']')) return {};
                r.nodes.push_back(n);
            }
            if (!eat(']')) return {};
            out.push_back(r);
        }
        return out;
    }

  private:
    bool eat(char c) {
        if (i_ >= s_.size() || s_[i_] != c) return false;
        ++i_;
        return true;
    }
    bool number(int& n) {
        const std::size_t start = i_;
        while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])) != 0) ++i_;
        if (i_ == start) return false;
        n = std::stoi(s_.substr(start, i_ - start));
        return true;
    }
    bool string(std::string& out) {
        if (!eat('"')) return false;
        const std::size_t end = s_.find('"', i_);
        if (end == std::string::npos) return false;
        out = s_.substr(i_, end - i_);
        i_ = end + 1;
        return true;
    }

    const std::string& s_;
    std::size_t i_ = 0;
};

std::vector<slots_range> cluster_slots(const std::string& json) {
    return slots_json(json).parse();
}

/// Every node CLUSTER SLOTS lists, over all ranges.
std::vector<slots_node> cluster_slots_nodes(const std::string& json) {
    std::vector<slots_node> out;
    for (const auto& r : cluster_slots(json)) out.insert(out.end(), r.nodes.begin(), r.nodes.end());
    return out;
}

bool is_node_id(const std::string& id) {
    return id.size() == 40 && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string reply(const redis_cluster& cluster, std::size_t node,
                  const std::vector<std::string>& args) {
    const process_result r = cluster.cli(node, args);
    EXPECT_TRUE(r.ok()) << r;
    return trim(r.out);
}

// --- start, host names in every reply, certificate, hosts file -------------------------------

TEST_F(redis_cluster_test, starts_three_by_three_with_host_names_in_every_reply) {
    redis_cluster cluster;
    const auto start = clock::now();
    cluster.start();
    std::cout << "[cluster] 3+3 TLS start took " << ms_since(start) << " ms\n";

    // Topology: 3 primaries with one replica each; every node a running member.
    const auto primaries = cluster.primaries();
    ASSERT_EQ(primaries.size(), 3u) << cluster.describe();
    std::set<std::size_t> replicas;
    for (std::size_t p : primaries) {
        const auto r = cluster.replicas_of(p);
        ASSERT_EQ(r.size(), 1u) << cluster.describe();
        replicas.insert(r[0]);
        EXPECT_EQ(cluster.node(r[0]).role, cluster_role::replica);
        EXPECT_EQ(cluster.node(r[0]).primary, p);
    }
    EXPECT_EQ(replicas.size(), 3u);
    ASSERT_EQ(cluster.nodes().size(), 8u);  // 6 + 2 spares
    for (std::size_t i = 0; i < 6; ++i) {
        const cluster_node& n = cluster.node(i);
        EXPECT_TRUE(n.member && n.running) << n.host_name;
        EXPECT_EQ(n.host_name, "node-" + std::to_string(i) + ".cluster.test");
        EXPECT_EQ(n.ip, "127.0.0." + std::to_string(20 + i));
        EXPECT_TRUE(is_node_id(n.id)) << n.id;
        EXPECT_EQ(reply(cluster, i, {"CLUSTER", "MYID"}), n.id);
        EXPECT_NE(n.bus_port, 0);
    }
    for (std::size_t i = 6; i < 8; ++i) {
        EXPECT_FALSE(cluster.node(i).member);
        EXPECT_EQ(cluster.node(i).role, cluster_role::none);
    }
    std::size_t owned = 0;
    for (std::size_t p : primaries) owned += cluster.slots_of(p).size();
    EXPECT_EQ(owned, 16384u);
    EXPECT_EQ(cluster.seed(), "node-" + std::to_string(primaries[0]) + ".cluster.test:" +
                                  std::to_string(cluster.node(primaries[0]).port));
    EXPECT_EQ(cluster.seed_ip(), cluster.node(primaries[0]).ip_address());

    // CLUSTER SLOTS (asked of a replica): host names as endpoints, TLS ports, the IP as
    // metadata; every node listed, the primary first in its range.
    const std::string slots = reply(cluster, *replicas.begin(), {"--json", "CLUSTER", "SLOTS"});
    const auto listed = cluster_slots_nodes(slots);
    ASSERT_EQ(listed.size(), 6u) << slots;
    for (const auto& l : listed) {
        bool found = false;
        for (std::size_t i = 0; i < 6; ++i) {
            const cluster_node& n = cluster.node(i);
            if (n.id != l.id) continue;
            found = true;
            EXPECT_EQ(l.endpoint, n.host_name) << slots;
            EXPECT_EQ(l.port, n.port) << slots;
            EXPECT_EQ(l.ip, n.ip) << slots;
        }
        EXPECT_TRUE(found) << l.id;
    }
    EXPECT_EQ(slots.find("[\"127."), std::string::npos) << "an IP as endpoint: " << slots;

    // CLUSTER SHARDS: tls-port, no port; host name and endpoint; everyone online.
    const std::string shards = reply(cluster, 0, {"--json", "CLUSTER", "SHARDS"});
    for (std::size_t i = 0; i < 6; ++i) {
        const cluster_node& n = cluster.node(i);
        EXPECT_NE(shards.find("\"id\":\"" + n.id + "\",\"tls-port\":" + std::to_string(n.port) +
                              ",\"ip\":\"" + n.ip + "\",\"endpoint\":\"" + n.host_name +
                              "\",\"hostname\":\"" + n.host_name + "\""),
                  std::string::npos)
            << shards;
    }
    EXPECT_EQ(shards.find("\"port\""), std::string::npos) << shards;
    EXPECT_EQ(shards.find("\"health\":\"loading\""), std::string::npos) << shards;

    // CLUSTER NODES: ip:port@bus,hostname.
    const std::string nodes = reply(cluster, 0, {"CLUSTER", "NODES"});
    for (std::size_t i = 0; i < 6; ++i) {
        const cluster_node& n = cluster.node(i);
        EXPECT_NE(nodes.find(n.id + " " + n.ip_address() + "@" + std::to_string(n.bus_port) + "," +
                             n.host_name + " "),
                  std::string::npos)
            << nodes;
    }

    // MOVED for a key another primary owns names that primary by host name.
    const std::size_t asked = primaries[0];
    const std::size_t owner = primaries[1];
    const int slot = cluster.slots_of(owner).front();
    const std::string key = redis_cluster::key_for_slot(slot);
    EXPECT_EQ(cluster.owner_of(slot), owner);
    const process_result moved = cluster.cli(asked, {"GET", key});
    EXPECT_EQ(moved.exit_code, 1) << moved;
    EXPECT_EQ(trim(moved.err),
              "MOVED " + std::to_string(slot) + " " + cluster.node(owner).address())
        << moved;
    EXPECT_NE(trim(moved.err).find(".cluster.test:"), std::string::npos);

    // key_slot() is CLUSTER KEYSLOT.
    for (const std::string& k :
         std::vector<std::string>{"foo", "bar", "{user1000}.following", "{}x", "a{b}c", "{", "",
                                  "\xff\x01 binary", key}) {
        EXPECT_EQ(std::to_string(redis_cluster::key_slot(k)),
                  reply(cluster, asked, {"CLUSTER", "KEYSLOT", k}))
            << k;
    }

    // The hosts file maps every name, spares included, in the form the sidecar reads.
    std::string expected = "# redis_cluster: one line per node, spares included\n";
    for (const auto& n : cluster.nodes()) expected += n.ip + " " + n.host_name + "\n";
    EXPECT_EQ(read_file(cluster.hosts_file()), expected);

    // One certificate passes host-name verification for every name, spares included.
    for (const std::string& name :
         std::vector<std::string>{"node-1.cluster.test", "node-7.cluster.test", "localhost"}) {
        const process_result v =
            run_process({"openssl", "s_client", "-connect", cluster.node(1).ip_address(),
                         "-servername", name, "-verify_hostname", name, "-CAfile",
                         cluster.pki().ca_cert(), "-verify_return_error", "-brief"},
                        base_env(), 10s, "");
        EXPECT_TRUE(v.ok()) << name << "\n" << v;
        EXPECT_NE(v.output().find("Verification: OK"), std::string::npos) << name << "\n" << v;
    }
    const process_result wrong = run_process(
        {"openssl", "s_client", "-connect", cluster.node(1).ip_address(), "-verify_hostname",
         "node-1.other.test", "-CAfile", cluster.pki().ca_cert(), "-verify_return_error", "-brief"},
        base_env(), 10s, "");
    EXPECT_FALSE(wrong.ok()) << wrong;
}

// --- failover --------------------------------------------------------------------------------

TEST_F(redis_cluster_test, failover_swaps_primary_and_replica) {
    redis_cluster cluster;
    cluster.start();
    const std::size_t primary = cluster.primaries().at(0);
    const std::size_t replica = cluster.replicas_of(primary).at(0);
    const std::string key = redis_cluster::key_for_slot(cluster.slots_of(primary).front());
    EXPECT_EQ(reply(cluster, primary, {"SET", key, "before"}), "OK");
    EXPECT_EQ(reply(cluster, primary, {"WAIT", "1", "5000"}), "1");

    const auto start = clock::now();
    cluster.failover(replica);
    std::cout << "[cluster] failover took " << ms_since(start) << " ms\n";

    EXPECT_EQ(cluster.node(replica).role, cluster_role::primary);
    EXPECT_EQ(cluster.node(primary).role, cluster_role::replica);
    EXPECT_EQ(cluster.node(primary).primary, replica);
    EXPECT_EQ(cluster.replicas_of(replica), std::vector<std::size_t>{primary});
    EXPECT_EQ(cluster.owner_of(redis_cluster::key_slot(key)), replica);
    EXPECT_EQ(reply(cluster, replica, {"ROLE"}).substr(0, 6), "master");
    EXPECT_EQ(reply(cluster, primary, {"ROLE"}).substr(0, 5), "slave");
    EXPECT_EQ(reply(cluster, replica, {"GET", key}), "before");
    // The old primary now redirects to the new one, by name.
    const process_result moved = cluster.cli(primary, {"SET", key, "after"});
    EXPECT_EQ(trim(moved.err), "MOVED " + std::to_string(redis_cluster::key_slot(key)) + " " +
                                   cluster.node(replica).address())
        << moved;
    // And every node's CLUSTER SLOTS lists the new primary first for that range, by name.
    const int slot = redis_cluster::key_slot(key);
    for (std::size_t i = 0; i < 6; ++i) {
        const std::string json = reply(cluster, i, {"--json", "CLUSTER", "SLOTS"});
        const auto ranges = cluster_slots(json);
        ASSERT_EQ(ranges.size(), 3u) << json;
        int matched = 0;
        for (const auto& r : ranges) {
            if (r.start > slot || r.end < slot) continue;
            ++matched;
            ASSERT_EQ(r.nodes.size(), 2u) << json;
            EXPECT_EQ(r.nodes[0].endpoint, cluster.node(replica).host_name) << json;
            EXPECT_EQ(r.nodes[0].id, cluster.node_id(replica)) << json;
            EXPECT_EQ(r.nodes[1].endpoint, cluster.node(primary).host_name) << json;
        }
        EXPECT_EQ(matched, 1) << json;
    }
    // A replica that is not one cannot be failed over.
    EXPECT_THROW(cluster.failover(replica), std::runtime_error);
}

// --- live reshard ----------------------------------------------------------------------------

TEST_F(redis_cluster_test, migrate_slot_moves_keys_and_answers_ask_half_way) {
    redis_cluster_options options;
    options.requirepass = "cluster-secret";  // MIGRATE ... AUTH, masterauth
    redis_cluster cluster(options);
    cluster.start();
    const std::size_t from = cluster.primaries().at(0);
    const std::size_t to = cluster.primaries().at(1);
    const int slot = cluster.slots_of(from).at(7);
    const std::string tag = "{" + redis_cluster::key_for_slot(slot) + "}";
    const std::vector<std::string> keys{tag + "a", tag + "b", tag + "c"};
    for (const auto& k : keys) EXPECT_EQ(reply(cluster, from, {"SET", k, "v" + k}), "OK");

    // Half-way: one key moved, the source answers ASK (by host name) for it.
    cluster.begin_slot_migration(slot, from, to);
    EXPECT_EQ(cluster.migrate_keys(slot, from, to, 1), 1u);
    std::string gone;
    process_result ask;
    for (const auto& k : keys) {
        process_result r = cluster.cli(from, {"GET", k});
        if (r.ok()) {
            EXPECT_EQ(trim(r.out), "v" + k);  // still here: served by the source
        } else {
            EXPECT_TRUE(gone.empty()) << "two keys gone";
            gone = k;
            ask = r;
        }
    }
    ASSERT_FALSE(gone.empty());
    EXPECT_EQ(trim(ask.err), "ASK " + std::to_string(slot) + " " + cluster.node(to).address())
        << ask;
    // The target serves it only after ASKING (redis-cli sends stdin lines on one connection).
    std::vector<std::string> argv{"redis-cli"};
    const auto conn = cluster.server(to).connection_args();
    argv.insert(argv.end(), conn.begin(), conn.end());
    const process_result asking =
        run_process(argv, base_env(), 10s, "ASKING\nGET \"" + gone + "\"\n");
    EXPECT_EQ(trim(asking.out), "OK\nv" + gone) << asking;
    const process_result not_asking = cluster.cli(to, {"GET", gone});
    EXPECT_EQ(trim(not_asking.err),
              "MOVED " + std::to_string(slot) + " " + cluster.node(from).address())
        << not_asking;

    EXPECT_EQ(cluster.migrate_keys(slot, from, to, 100), 2u);
    EXPECT_EQ(cluster.migrate_keys(slot, from, to, 100), 0u);
    cluster.finish_slot_migration(slot, from, to);
    cluster.wait_until_consistent();
    EXPECT_EQ(cluster.owner_of(slot), to);
    for (const auto& k : keys) EXPECT_EQ(reply(cluster, to, {"GET", k}), "v" + k);
    const process_result moved = cluster.cli(from, {"GET", keys[0]});
    EXPECT_EQ(trim(moved.err), "MOVED " + std::to_string(slot) + " " + cluster.node(to).address())
        << moved;

    // And back in one call; the replica of the new owner follows.
    const auto start = clock::now();
    cluster.migrate_slot(slot, to, from);
    std::cout << "[cluster] migrate_slot with 3 keys took " << ms_since(start) << " ms\n";
    EXPECT_EQ(cluster.owner_of(slot), from);
    for (const auto& k : keys) EXPECT_EQ(reply(cluster, from, {"GET", k}), "v" + k);
    const std::size_t replica = cluster.replicas_of(from).at(0);
    EXPECT_EQ(reply(cluster, from, {"WAIT", "1", "5000"}), "1");
    const process_result readonly = cluster.cli(replica, {"DBSIZE"});
    EXPECT_EQ(trim(readonly.out), "3") << readonly;
    // Not the owner: refused before anything is touched.
    EXPECT_THROW(cluster.migrate_slot(slot, to, from), std::runtime_error);
}

// --- add_node --------------------------------------------------------------------------------

TEST_F(redis_cluster_test, add_node_joins_as_primary_then_as_its_replica) {
    redis_cluster cluster;
    cluster.start();
    const auto start = clock::now();
    const std::size_t added = cluster.add_node();
    std::cout << "[cluster] add_node took " << ms_since(start) << " ms\n";
    EXPECT_EQ(added, 6u);
    EXPECT_TRUE(cluster.node(added).member);
    EXPECT_EQ(cluster.node(added).role, cluster_role::primary);
    EXPECT_TRUE(cluster.slots_of(added).empty());
    for (std::size_t i = 0; i <= added; ++i) {
        const std::string info = reply(cluster, i, {"CLUSTER", "INFO"});
        EXPECT_NE(info.find("cluster_known_nodes:7"), std::string::npos) << i << ": " << info;
        EXPECT_NE(reply(cluster, i, {"CLUSTER", "NODES"})
                      .find(cluster.node_id(added) + " " + cluster.node(added).ip_address()),
                  std::string::npos);
    }

    // Slots for it, then a replica for it.
    const std::size_t donor = cluster.primaries().at(0);
    cluster.move_slots(donor, added, 3);
    EXPECT_EQ(cluster.slots_of(added).size(), 3u);
    const std::size_t replica = cluster.add_node(false, added);
    EXPECT_EQ(replica, 7u);
    EXPECT_EQ(cluster.node(replica).role, cluster_role::replica);
    EXPECT_EQ(cluster.replicas_of(added), std::vector<std::size_t>{replica});
    const auto listed = cluster_slots_nodes(reply(cluster, 0, {"--json", "CLUSTER", "SLOTS"}));
    std::set<std::string> endpoints;
    for (const auto& l : listed) endpoints.insert(l.endpoint);
    EXPECT_EQ(endpoints.count("node-6.cluster.test"), 1u);
    EXPECT_EQ(endpoints.count("node-7.cluster.test"), 1u);
    // No spare left.
    EXPECT_THROW(cluster.add_node(), std::runtime_error);
}

// --- kill and restart ------------------------------------------------------------------------

TEST_F(redis_cluster_test, kill_primary_promotes_its_replica_and_restart_rejoins_as_replica) {
    redis_cluster_options options;
    options.requirepass = "cluster-secret";
    redis_cluster cluster(options);
    cluster.start();
    const std::size_t primary = cluster.primaries().at(1);
    const std::size_t replica = cluster.replicas_of(primary).at(0);
    const int slot = cluster.slots_of(primary).front();

    auto start = clock::now();
    cluster.kill(primary);
    std::cout << "[cluster] kill of a primary until its replica took over: " << ms_since(start)
              << " ms\n";
    EXPECT_FALSE(cluster.node(primary).running);
    EXPECT_EQ(cluster.node(replica).role, cluster_role::primary);
    EXPECT_EQ(cluster.owner_of(slot), replica);
    EXPECT_EQ(cluster.primaries().size(), 3u);
    const process_result moved =
        cluster.cli(cluster.primaries().at(0), {"GET", redis_cluster::key_for_slot(slot)});
    EXPECT_EQ(trim(moved.err),
              "MOVED " + std::to_string(slot) + " " + cluster.node(replica).address())
        << moved;
    const std::string nodes = reply(cluster, replica, {"CLUSTER", "NODES"});
    EXPECT_NE(nodes.find(cluster.node_id(primary) + " " + cluster.node(primary).ip_address()),
              std::string::npos);
    EXPECT_NE(nodes.find("master,fail"), std::string::npos) << nodes;

    start = clock::now();
    cluster.restart(primary);
    std::cout << "[cluster] restart until rejoined took " << ms_since(start) << " ms\n";
    EXPECT_TRUE(cluster.node(primary).running);
    EXPECT_EQ(cluster.node(primary).role, cluster_role::replica);
    EXPECT_EQ(cluster.node(primary).primary, replica);
}

// --- by hand, plain, IPs; and a wait that cannot succeed -------------------------------------

TEST_F(redis_cluster_test, two_shards_without_tls_or_host_names_and_a_wait_that_fails) {
    redis_cluster_options options;
    options.shards = 2;  // fewer than redis-cli creates: made by hand
    options.replicas_per_shard = 1;
    options.spare_nodes = 0;
    options.tls = false;
    options.announce_hostnames = false;
    options.first_address = 40;  // another range: never meets the other tests' clusters
    options.node_timeout = 1000ms;
    redis_cluster cluster(options);
    const auto start = clock::now();
    cluster.start();
    std::cout << "[cluster] 2+2 plain start took " << ms_since(start) << " ms\n";
    EXPECT_EQ(cluster.primaries(), (std::vector<std::size_t>{0, 1}));
    EXPECT_EQ(cluster.replicas_of(0), std::vector<std::size_t>{2});
    EXPECT_EQ(cluster.replicas_of(1), std::vector<std::size_t>{3});
    EXPECT_EQ(cluster.slots_of(0).size(), 8192u);

    const int slot = cluster.slots_of(1).front();
    const process_result moved = cluster.cli(0, {"GET", redis_cluster::key_for_slot(slot)});
    EXPECT_EQ(trim(moved.err), "MOVED " + std::to_string(slot) + " " + cluster.node(1).ip_address())
        << moved;
    const std::string shards = reply(cluster, 0, {"--json", "CLUSTER", "SHARDS"});
    EXPECT_NE(shards.find("\"port\":" + std::to_string(cluster.node(1).port)), std::string::npos)
        << shards;
    EXPECT_EQ(shards.find("tls-port"), std::string::npos) << shards;
    EXPECT_EQ(shards.find("hostname"), std::string::npos) << shards;
    const std::string slots = reply(cluster, 0, {"--json", "CLUSTER", "SLOTS"});
    const auto ranges = cluster_slots(slots);
    ASSERT_EQ(ranges.size(), 2u) << slots;
    for (const auto& r : ranges) {
        ASSERT_EQ(r.nodes.size(), 2u) << slots;
        for (const auto& l : r.nodes) {
            const std::size_t i = l.id == cluster.node_id(0)   ? 0
                                  : l.id == cluster.node_id(1) ? 1
                                  : l.id == cluster.node_id(2) ? 2
                                                               : 3;
            EXPECT_EQ(l.id, cluster.node_id(i)) << slots;
            EXPECT_EQ(l.endpoint, cluster.node(i).ip) << slots;  // the IP is the endpoint
            EXPECT_EQ(l.port, cluster.node(i).port) << slots;
        }
    }

    // Both nodes of shard 1 down: nothing can serve its slots, and the wait says so.
    cluster.kill(3, false);
    cluster.kill(1, false);
    try {
        cluster.wait_until_consistent(2s);
        ADD_FAILURE() << "wait_until_consistent() returned with a shard down";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("did not settle within 2000 ms"), std::string::npos) << what;
        EXPECT_NE(what.find("last problem: "), std::string::npos) << what;
        EXPECT_NE(what.find("log ("), std::string::npos) << what;  // node logs attached
    }
}

}  // namespace
}  // namespace redis_sidecar::testing
