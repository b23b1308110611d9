#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "redis_sidecar/cluster/port_map.hpp"
#include "redis_sidecar/cluster/rewrite.hpp"
#include "redis_sidecar/cluster/topology.hpp"
#include "redis_sidecar/resp/value.hpp"

using namespace redis_sidecar::cluster;
using redis_sidecar::resp::value;

namespace {

value bulk(std::string s) {
    value v;
    v.type = '$';
    v.text = std::move(s);
    return v;
}
value num(long long n) {
    value v;
    v.type = ':';
    v.text = std::to_string(n);
    return v;
}
value arr(std::vector<value> items, char type = '*') {
    value v;
    v.type = type;
    v.items = std::move(items);
    return v;
}
std::string bytes(const value& v) {
    return redis_sidecar::resp::serialize(v);
}
value parse(const std::string& b) {
    std::string error;
    auto v = redis_sidecar::resp::parse_value(b, error);
    EXPECT_TRUE(v.has_value()) << error;
    return v ? *v : value{};
}

// What Redis 7.0 says with cluster-preferred-endpoint-type hostname (as ElastiCache with TLS):
// the endpoint is the host name, the metadata the IP.
value slots_node(const std::string& host, int port, const std::string& id, const std::string& ip,
                 char map_type = '*') {
    return arr({bulk(host), num(port), bulk(id),
                arr({bulk("ip"), bulk(ip), bulk("hostname"), bulk(host)}, map_type)});
}

value slots_reply(char map_type = '*') {
    return arr({
        arr({num(0), num(8191), slots_node("node-0.c.test", 6379, "id0", "10.0.0.1", map_type),
             slots_node("node-3.c.test", 6379, "id3", "10.0.0.4", map_type)}),
        arr({num(8192), num(16383), slots_node("node-1.c.test", 6380, "id1", "10.0.0.2", map_type),
             slots_node("node-4.c.test", 6380, "id4", "10.0.0.5", map_type)}),
    });
}

value shards_node(const std::string& id, int port, const std::string& ip, const std::string& host,
                  const std::string& role, char map_type = '*') {
    return arr({bulk("id"), bulk(id), bulk("tls-port"), num(port), bulk("ip"), bulk(ip),
                bulk("endpoint"), bulk(host), bulk("hostname"), bulk(host), bulk("role"),
                bulk(role), bulk("replication-offset"), num(42), bulk("health"), bulk("online")},
               map_type);
}

value shards_reply(char map_type = '*') {
    return arr({
        arr({bulk("slots"), arr({num(0), num(100), num(200), num(8191)}), bulk("nodes"),
             arr({shards_node("id3", 6379, "10.0.0.4", "node-3.c.test", "replica", map_type),
                  shards_node("id0", 6379, "10.0.0.1", "node-0.c.test", "master", map_type)})},
            map_type),
        arr({bulk("slots"), arr({num(101), num(199), num(8192), num(16383)}), bulk("nodes"),
             arr({shards_node("id1", 6380, "10.0.0.2", "node-1.c.test", "master", map_type)})},
            map_type),
    });
}

using test_book = port_map_book;  // the rewriting's book, without listeners

void expect_no_upstream_address(const std::string& s) {
    for (const char* a : {"10.0.0.", "c.test", ":6379", ":6380"}) {
        EXPECT_EQ(s.find(a), std::string::npos) << a << " in " << s;
    }
}

}  // namespace

// ---- topology

TEST(cluster_topology, from_shards_takes_tls_ports_host_names_and_primaries_first) {
    for (char map_type : {'*', '%'}) {
        std::string error;
        const auto t = topology_from_shards(shards_reply(map_type), true, error);
        ASSERT_TRUE(t) << error;
        ASSERT_EQ(t->shards.size(), 2u);
        EXPECT_EQ(t->node_count(), 3u);
        const auto& s0 = t->shards[0];
        ASSERT_EQ(s0.slots.size(), 2u);
        EXPECT_EQ(s0.slots[1].first, 200);
        EXPECT_EQ(s0.slots[1].last, 8191);
        ASSERT_EQ(s0.nodes.size(), 2u);
        EXPECT_TRUE(s0.nodes[0].primary);
        EXPECT_EQ(s0.nodes[0].id, "id0");
        EXPECT_EQ(s0.nodes[0].address(), "node-0.c.test:6379");
        EXPECT_EQ(s0.nodes[0].ip, "10.0.0.1");
        EXPECT_FALSE(s0.nodes[1].primary);
        EXPECT_TRUE(t->covers_all_slots());
    }
}

TEST(cluster_topology, from_slots_merges_ranges_of_one_primary) {
    auto reply = slots_reply();
    reply.items.push_back(arr({num(20000), num(20001), slots_node("x", 1, "id9", "10.0.0.9")}));
    std::string error;
    EXPECT_FALSE(topology_from_slots(reply, error));
    EXPECT_NE(error.find("slot range"), std::string::npos);

    reply = slots_reply();
    reply.items[0].items[1] = num(99);
    reply.items.push_back(
        arr({num(100), num(8191), slots_node("node-0.c.test", 6379, "id0", "10.0.0.1")}));
    const auto t = topology_from_slots(reply, error);
    ASSERT_TRUE(t) << error;
    ASSERT_EQ(t->shards.size(), 2u);
    EXPECT_EQ(t->shards[0].slots.size(), 2u);
    EXPECT_EQ(t->shards[0].nodes[0].hostname, "node-0.c.test");
    EXPECT_TRUE(t->covers_all_slots());
}

TEST(cluster_topology, a_gap_in_the_slots_is_not_coverage) {
    auto reply = slots_reply();
    reply.items[1].items[0] = num(8193);
    std::string error;
    const auto t = topology_from_slots(reply, error);
    ASSERT_TRUE(t);
    EXPECT_FALSE(t->covers_all_slots());
}

TEST(cluster_topology, nodes_lines_and_redirects_parse) {
    const auto n = node_from_line(
        "07c3 10.0.0.2:6380@16380,node-1.c.test myself,master - 0 0 1 connected 0-5460");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->id, "07c3");
    EXPECT_EQ(n->ip, "10.0.0.2");
    EXPECT_EQ(n->hostname, "node-1.c.test");
    EXPECT_EQ(n->port, 6380);
    EXPECT_TRUE(n->primary);
    EXPECT_FALSE(node_from_line("garbage"));
    EXPECT_FALSE(node_from_line("id 10.0.0.2:99999@1 master - 0"));

    const auto r = parse_redirect("MOVED 3999 node-1.c.test:6380");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, "MOVED");
    EXPECT_EQ(r->slot, "3999");
    EXPECT_EQ(r->host, "node-1.c.test");
    EXPECT_EQ(r->port, 6380);
    const auto v6 = parse_redirect("ASK 1 ::1:7000");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "::1");
    EXPECT_FALSE(parse_redirect("MOVEDX 1 a:1"));
    EXPECT_FALSE(parse_redirect("MOVED 1 nohostport"));
    EXPECT_FALSE(parse_redirect("ERR MOVED 1 a:1"));
}

// ---- port map

TEST(cluster_port_map, one_port_per_node_found_by_id_or_any_of_its_names) {
    port_map m(7000, 7002);
    node a;
    a.id = "id0";
    a.hostname = "node-0.c.test";
    a.ip = "10.0.0.1";
    a.port = 6379;
    const auto* pa = m.ensure(a);
    ASSERT_NE(pa, nullptr);
    EXPECT_EQ(pa->local_port, 7000);
    EXPECT_EQ(pa->host, "node-0.c.test");
    EXPECT_EQ(m.find("10.0.0.1", 6379)->local_port, 7000);
    EXPECT_EQ(m.find("node-0.c.test", 6379)->local_port, 7000);
    EXPECT_EQ(m.find("node-0.c.test", 6380), nullptr);

    // A MOVED names a node nobody listed yet: it gets a port; the topology later gives its id.
    node moved;
    moved.endpoint = "node-1.c.test";
    moved.port = 6379;
    EXPECT_EQ(m.ensure(moved)->local_port, 7001);
    node listed;
    listed.id = "id1";
    listed.hostname = "node-1.c.test";
    listed.ip = "10.0.0.2";
    listed.port = 6379;
    EXPECT_EQ(m.ensure(listed)->local_port, 7001);
    EXPECT_EQ(m.find("10.0.0.2", 6379)->local_port, 7001);

    // Same host name, another port (Serverless' 6379 and 6380): another node.
    node reader = listed;
    reader.id = "id2";
    reader.port = 6380;
    EXPECT_EQ(m.ensure(reader)->local_port, 7002);

    node full = a;
    full.id = "id3";
    full.port = 1;
    EXPECT_EQ(m.ensure(full), nullptr);
    EXPECT_EQ(m.refused(), 1u);
    node nowhere;
    nowhere.id = "id4";
    EXPECT_EQ(m.ensure(nowhere), nullptr);
}

TEST(cluster_port_map, a_range_too_small_serves_every_primary_first) {
    port_map m(7000, 7001);
    std::string error;
    auto t = topology_from_shards(shards_reply(), true, error);
    ASSERT_TRUE(t);
    m.apply(*t);
    ASSERT_EQ(m.nodes().size(), 2u);
    EXPECT_TRUE(m.nodes()[0].primary);
    EXPECT_TRUE(m.nodes()[1].primary);
    EXPECT_EQ(m.find("node-3.c.test", 6379), nullptr);  // the replica
    EXPECT_EQ(m.refused(), 1u);
}

TEST(cluster_port_map, reserved_ports_are_never_handed_out) {
    port_map m(7000, 7002);
    m.reserve(7000);
    m.reserve(7002);
    m.reserve(9090);  // outside: no effect
    node a;
    a.id = "a";
    a.ip = "10.0.0.1";
    a.port = 6379;
    EXPECT_EQ(m.ensure(a)->local_port, 7001);
    node b = a;
    b.id = "b";
    b.port = 6380;
    EXPECT_EQ(m.ensure(b), nullptr);
    EXPECT_EQ(m.refused(), 1u);
}

TEST(cluster_port_map, a_topology_keeps_ports_retires_the_missing_and_reuses_ports_last) {
    port_map m(7000, 7003);
    std::string error;
    auto t = topology_from_shards(shards_reply(), true, error);
    ASSERT_TRUE(t);
    EXPECT_TRUE(m.apply(*t).empty());
    ASSERT_EQ(m.nodes().size(), 3u);
    const auto port_of = [&](const char* host, std::uint16_t port) {
        const auto* n = m.find(host, port);
        return n != nullptr ? n->local_port : 0;
    };
    const auto p1 = port_of("node-1.c.test", 6380);
    EXPECT_NE(p1, 0);
    EXPECT_TRUE(m.find_port(p1)->primary);

    // id3 (a replica) leaves.
    auto& nodes = t->shards[0].nodes;
    nodes.erase(nodes.begin() + 1);
    const auto gone = m.apply(*t);
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_EQ(gone[0].id, "id3");
    EXPECT_EQ(m.find("node-3.c.test", 6379), nullptr);
    EXPECT_EQ(port_of("node-1.c.test", 6380), p1);

    // New nodes take never-used ports first, then the freed one.
    node n5;
    n5.id = "id5";
    n5.hostname = "node-5.c.test";
    n5.port = 6379;
    EXPECT_EQ(m.ensure(n5)->local_port, 7003);
    node n6 = n5;
    n6.id = "id6";
    n6.hostname = "node-6.c.test";
    EXPECT_EQ(m.ensure(n6)->local_port, gone[0].local_port);
}

// ---- rewriting

TEST(cluster_rewrite, slots_reply_gets_local_addresses_in_resp2_and_resp3) {
    for (char map_type : {'*', '%'}) {
        test_book book;
        const auto r = rewrite_reply(reply_kind::slots, bytes(slots_reply(map_type)), book);
        ASSERT_TRUE(r.error.empty()) << r.error;
        EXPECT_TRUE(r.rewritten);
        expect_no_upstream_address(r.bytes);
        const auto v = parse(r.bytes);
        ASSERT_EQ(v.items.size(), 2u);
        const auto& primary = v.items[0].items[2];
        EXPECT_EQ(primary.items[0].text, "127.0.0.1");
        EXPECT_EQ(primary.items[1].text, "7000");
        EXPECT_EQ(primary.items[2].text, "id0");
        EXPECT_EQ(primary.items[3].type, map_type);
        EXPECT_EQ(primary.items[3].items.size(), 2u);  // ip kept (local), hostname gone
        EXPECT_EQ(v.items[0].items[3].items[1].text, "7001");
        EXPECT_EQ(v.items[1].items[2].items[1].text, "7002");
        EXPECT_EQ(book.map().find("node-4.c.test", 6380)->local_port, 7003);
        EXPECT_EQ(book.map().find("10.0.0.4", 6379)->local_port, 7001);
    }
}

TEST(cluster_rewrite, shards_reply_gets_local_addresses_and_plain_ports) {
    for (char map_type : {'*', '%'}) {
        test_book book;
        const auto r = rewrite_reply(reply_kind::shards, bytes(shards_reply(map_type)), book);
        ASSERT_TRUE(r.error.empty()) << r.error;
        expect_no_upstream_address(r.bytes);
        EXPECT_EQ(r.bytes.find("tls-port"), std::string::npos);
        EXPECT_EQ(r.bytes.find("hostname"), std::string::npos);
        std::string error;
        const auto t = topology_from_shards(parse(r.bytes), false, error);
        ASSERT_TRUE(t) << error;
        EXPECT_EQ(t->shards[0].nodes[0].address(), "127.0.0.1:7001");  // id0, the primary
        EXPECT_EQ(t->shards[0].nodes[1].address(), "127.0.0.1:7000");  // id3, listed first
        EXPECT_EQ(t->shards[0].nodes[0].id, "id0");
        EXPECT_EQ(t->shards[1].nodes[0].address(), "127.0.0.1:7002");
        EXPECT_TRUE(t->covers_all_slots());
    }
}

TEST(cluster_rewrite, nodes_and_replicas_lines_get_local_addresses) {
    const std::string nodes =
        "id0 10.0.0.1:6379@16379,node-0.c.test myself,master - 0 0 1 connected 0-8191\n"
        "id3 10.0.0.4:6379@16379,node-3.c.test slave id0 0 1700000000000 1 connected\n"
        "id9 :0@0 noaddr,handshake - 0 0 0 disconnected\n";
    test_book book;
    auto r = rewrite_reply(reply_kind::nodes, bytes(bulk(nodes)), book);
    ASSERT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(parse(r.bytes).text,
              "id0 127.0.0.1:7000@0 myself,master - 0 0 1 connected 0-8191\n"
              "id3 127.0.0.1:7001@0 slave id0 0 1700000000000 1 connected\n"
              "id9 :0@0 noaddr,handshake - 0 0 0 disconnected\n");

    value verbatim;
    verbatim.type = '=';
    verbatim.text = "txt:" + nodes;
    r = rewrite_reply(reply_kind::nodes, bytes(verbatim), book);
    ASSERT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(parse(r.bytes).text.substr(0, 42), "txt:id0 127.0.0.1:7000@0 myself,master - 0");

    r = rewrite_reply(reply_kind::replicas,
                      bytes(arr({bulk("id3 10.0.0.4:6379@16379,node-3.c.test slave id0 0 1 1 "
                                      "connected")})),
                      book);
    ASSERT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(parse(r.bytes).items[0].text, "id3 127.0.0.1:7001@0 slave id0 0 1 1 connected");
}

TEST(cluster_rewrite, moved_and_ask_point_at_local_ports_and_moved_asks_for_a_refresh) {
    test_book book;
    auto r = rewrite_reply(reply_kind::none, "-MOVED 3999 node-1.c.test:6380\r\n", book);
    EXPECT_EQ(r.bytes, "-MOVED 3999 127.0.0.1:7000\r\n");
    EXPECT_EQ(book.redirects(), 1u);
    r = rewrite_reply(reply_kind::none, "-ASK 3999 node-1.c.test:6380\r\n", book);
    EXPECT_EQ(r.bytes, "-ASK 3999 127.0.0.1:7000\r\n");
    EXPECT_EQ(book.redirects(), 1u);
    r = rewrite_reply(reply_kind::none, "-ERR wrong number of arguments\r\n", book);
    EXPECT_EQ(r.bytes, "-ERR wrong number of arguments\r\n");
    EXPECT_FALSE(r.rewritten);
    // The IP form of the same node finds the same port once the topology named both.
    r = rewrite_reply(reply_kind::slots, bytes(slots_reply()), book);
    EXPECT_TRUE(r.error.empty());
    EXPECT_EQ(*rewrite_redirect("MOVED 1 10.0.0.2:6380", book)->bytes.rbegin(), '\n');
    EXPECT_EQ(rewrite_redirect("MOVED 1 10.0.0.2:6380", book)->bytes,
              "-MOVED 1 127.0.0.1:7000\r\n");
}

TEST(cluster_rewrite, a_full_port_range_leaves_nodes_out_and_redirects_fail_clearly) {
    test_book book(7000, 7000);
    auto r = rewrite_reply(reply_kind::slots, bytes(slots_reply()), book);
    ASSERT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(r.unmapped, 3u);
    const auto v = parse(r.bytes);
    ASSERT_EQ(v.items.size(), 1u);           // the second range's primary has no port
    EXPECT_EQ(v.items[0].items.size(), 3u);  // the first range without its replica
    expect_no_upstream_address(r.bytes);

    r = rewrite_reply(reply_kind::none, "-MOVED 1 other.c.test:6379\r\n", book);
    EXPECT_EQ(r.unmapped, 1u);
    EXPECT_EQ(r.bytes.rfind("-CLUSTERDOWN ", 0), 0u);
    expect_no_upstream_address(r.bytes);
}

TEST(cluster_rewrite, a_reply_of_the_wrong_shape_becomes_an_error_never_passes_through) {
    test_book book;
    const std::vector<std::pair<reply_kind, std::string>> cases = {
        {reply_kind::slots, "*1\r\n$13\r\nnode-0.c.test\r\n"},
        {reply_kind::slots, "*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$13\r\nnode-0.c.test\r\n"},
        {reply_kind::shards, "*1\r\n*1\r\n$13\r\nnode-0.c.test\r\n"},
        {reply_kind::nodes, "$13\r\nnode-0.c.test\r\n"},
        {reply_kind::replicas, "*1\r\n:6379\r\n"},
        {reply_kind::slots, "*2\r\n$13\r\nnode-0.c.test"},
    };
    for (const auto& [kind, reply] : cases) {
        const auto r = rewrite_reply(kind, reply, book);
        EXPECT_FALSE(r.error.empty()) << reply;
        EXPECT_EQ(r.bytes.rfind("-ERR redis-sidecar: could not rewrite", 0), 0u) << r.bytes;
        expect_no_upstream_address(r.bytes);
    }
    // A server error to the command (not a cluster) passes as it is.
    const auto r = rewrite_reply(reply_kind::slots,
                                 "-ERR This instance has cluster support disabled\r\n", book);
    EXPECT_EQ(r.bytes, "-ERR This instance has cluster support disabled\r\n");
}

TEST(cluster_rewrite, kind_of_knows_the_topology_commands_in_any_case) {
    EXPECT_EQ(kind_of("cluster", "slots"), reply_kind::slots);
    EXPECT_EQ(kind_of("CLUSTER", "Shards"), reply_kind::shards);
    EXPECT_EQ(kind_of("Cluster", "NODES"), reply_kind::nodes);
    EXPECT_EQ(kind_of("CLUSTER", "slaves"), reply_kind::replicas);
    EXPECT_EQ(kind_of("CLUSTER", "replicas"), reply_kind::replicas);
    EXPECT_EQ(kind_of("CLUSTER", "info"), reply_kind::none);
    EXPECT_EQ(kind_of("GET", "slots"), reply_kind::none);
}
