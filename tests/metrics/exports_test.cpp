// The one list of exported families (src/app/exports.cpp and the admin server's probe
// families): conventions, the documentation's copy, and that each row exports its counter.

#include "exports.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "../support/metrics_text.hpp"
#include "text_format_parser.hpp"

namespace redis_sidecar::metrics {
namespace {

const family& find(std::string_view name) {
    for (const family* f : app::all_families()) {
        if (f->name == name) return *f;
    }
    ADD_FAILURE() << name << " is not declared";
    static const family none{"none", metric_type::gauge, "none."};
    return none;
}

// --- the declared list -------------------------------------------------------------------------

TEST(families, names_types_labels_follow_the_conventions) {
    std::set<std::string_view> names;
    for (const family* f : app::all_families()) {
        SCOPED_TRACE(std::string(f->name));
        EXPECT_TRUE(f->name.starts_with("redis_sidecar_"));
        EXPECT_TRUE(names.insert(f->name).second) << "declared twice";
        for (char c : f->name)
            EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_' || (c >= '0' && c <= '9'));
        EXPECT_EQ(f->name.ends_with("_total"), f->type == metric_type::counter);
        if (f->type == metric_type::histogram) {  // named by what it counts: a unit
            EXPECT_TRUE(f->name.ends_with("_seconds") || f->name.ends_with("_commands"));
        }
        EXPECT_FALSE(f->help.empty());
        EXPECT_TRUE(f->help.ends_with("."));
        for (std::size_t i = 0; i < f->label_count(); ++i) {
            EXPECT_NE(f->labels[i], "le");
            EXPECT_FALSE(f->labels[i].starts_with("__"));
        }
        for (std::size_t i = f->label_count(); i < max_labels; ++i)
            EXPECT_TRUE(f->labels[i].empty());
    }
    // A histogram's derived sample names must not collide with another family.
    for (const family* f : app::all_families()) {
        if (f->type != metric_type::histogram) continue;
        for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
            EXPECT_EQ(names.count(std::string(f->name) + std::string(suffix)), 0u);
        }
    }
}

TEST(families, issue_five_metrics_are_declared) {
    const std::set<std::string_view> required = {
        "redis_sidecar_pool_connections_open",
        "redis_sidecar_pool_connections_idle",
        "redis_sidecar_pool_connections_leased",
        "redis_sidecar_pool_waiters",
        "redis_sidecar_pool_connections_opening",
        "redis_sidecar_upstream_connects_total",
        "redis_sidecar_upstream_connect_failures_total",
        "redis_sidecar_upstream_handshake_duration_seconds",
        "redis_sidecar_clients",
        "redis_sidecar_clients_accepted_total",
        "redis_sidecar_clients_rejected_total",
        "redis_sidecar_commands_forwarded_total",
        "redis_sidecar_commands_intercepted_total",
        "redis_sidecar_client_received_bytes_total",
        "redis_sidecar_client_sent_bytes_total",
        "redis_sidecar_upstream_recycles_total",
        "redis_sidecar_upstream_recycle_discards_total",
        "redis_sidecar_client_protocol_errors_total",
        "redis_sidecar_readonly_replies_total",
        "redis_sidecar_loading_replies_total",
        "redis_sidecar_dns_lookups_total",
        "redis_sidecar_dns_changes_total",
        "redis_sidecar_pool_health_checks_total",
        "redis_sidecar_pool_acquire_timeouts_total",
        "redis_sidecar_probe_status",
        "redis_sidecar_probe_requests_total",
        "redis_sidecar_state",
        "redis_sidecar_upstream_up",
        "redis_sidecar_build_info",
        "redis_sidecar_process_start_time_seconds"};
    std::set<std::string_view> declared;
    for (const family* f : app::all_families()) declared.insert(f->name);
    for (auto n : required) EXPECT_EQ(declared.count(n), 1u) << n;
    EXPECT_EQ(find("redis_sidecar_upstream_connect_failures_total").labels[0], "class");
    EXPECT_EQ(find("redis_sidecar_upstream_recycles_total").labels[0], "kind");
    EXPECT_EQ(find("redis_sidecar_probe_requests_total").label_count(), 2u);
    EXPECT_EQ(find("redis_sidecar_state").labels[0], "state");
    EXPECT_EQ(find("redis_sidecar_build_info").labels[0], "version");
}

// docs/observability.md and README.md carry the same list between markers; on a mismatch the
// message is the table to paste there.
TEST(families, documentation_lists_every_family) {
    std::ostringstream table;
    table << "| name | type | labels | help |\n|---|---|---|---|\n";
    for (const family* f : app::all_families()) {
        std::string labels;
        for (std::size_t i = 0; i < f->label_count(); ++i) {
            labels += (i ? ", `" : "`") + std::string(f->labels[i]) + "`";
        }
        if (f->type == metric_type::histogram) labels += labels.empty() ? "`le`" : ", `le`";
        table << "| `" << f->name << "` | " << name(f->type) << " | " << labels << " | " << f->help
              << " |\n";
    }
    // The README documents them as a public API too.
    for (const char* file : {"/docs/observability.md", "/README.md"}) {
        std::ifstream in(std::string(REDIS_SIDECAR_SOURCE_DIR) + file);
        ASSERT_TRUE(in) << file << " is missing";
        const std::string doc((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
        const std::string begin = "<!-- metrics:begin -->\n";
        const std::string end = "<!-- metrics:end -->";
        const auto b = doc.find(begin);
        const auto e = doc.find(end);
        ASSERT_NE(b, std::string::npos) << file;
        ASSERT_NE(e, std::string::npos) << file;
        EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), table.str())
            << "paste this between the markers of " << file << ":\n"
            << table.str();
    }
}

// --- the rows -----------------------------------------------------------------------------------

TEST(exports, every_row_has_one_source_and_status_rows_a_value) {
    for (const auto& e : app::exports()) {
        SCOPED_TRACE(std::string(e.family.name));
        EXPECT_NE(e.value == nullptr, e.samples == nullptr) << "exactly one of value and samples";
        if (e.value != nullptr) {
            EXPECT_EQ(e.family.label_count(), 0u);
            EXPECT_NE(e.family.type, metric_type::histogram);
        }
        if (!e.status.empty()) {
            EXPECT_NE(e.value, nullptr) << "a status field shows a value";
        }
    }
}

TEST(exports, a_scrape_sets_every_app_family_without_misuse) {
    upstream::pool_stats pool;
    bridge::bridge_stats bridge;
    cluster::cluster_stats cluster;
    // The per-node families have one series per node port: none without cluster mode.
    cluster.per_node.push_back({7000, true, true, 1, 0});
    app::stats_view view{.pool = pool, .bridge = bridge, .cluster = cluster, .version = "1.2.3"};
    registry r(app::all_families());
    app::fill(r, view);
    EXPECT_EQ(r.misuses(), 0u) << r.last_misuse();
    const auto parsed = text_format::parse(r.render());
    ASSERT_TRUE(parsed.doc) << parsed.error;
    for (const auto& e : app::exports()) {
        EXPECT_NE(parsed.doc->find(std::string(e.family.name)), nullptr) << e.family.name;
    }
}

TEST(exports, rows_read_their_own_counters) {
    upstream::pool_stats pool;
    bridge::bridge_stats bridge;
    pool.open = 3;
    pool.failover_discards = 7;
    pool.resets = 11;
    pool.reset_failures = 2;
    pool.failures[static_cast<std::size_t>(upstream::error::wrongpass)] = 5;
    pool.role = "master";
    bridge.recycled_clean = 13;
    bridge.discarded = 4;
    bridge.client_write_timeouts = 1;
    bridge.upstream_write_timeouts = 9;
    bridge.clients = 17;
    bridge.cluster_redirects = 19;
    cluster::cluster_stats cluster;
    cluster.refresh_failures = 23;
    cluster.nodes = 6;
    cluster.per_node.push_back({7001, true, true, 2, 3});
    app::stats_view view{.pool = pool,
                         .bridge = bridge,
                         .cluster = cluster,
                         .upstream_up = true,
                         .state = health::state::ready,
                         .version = "1.2.3"};
    registry r(app::all_families());
    app::fill(r, view);
    const auto text = r.render();
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_pool_connections_open"), 3);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_pool_failover_discards_total"), 7);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_upstream_recycles_total{kind=\"reset\"}"),
              11);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_upstream_recycles_total{kind=\"clean\"}"),
              13);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_upstream_recycle_discards_total"), 4 + 2);
    EXPECT_EQ(testing::metric_sum(
                  text, "redis_sidecar_upstream_connect_failures_total{class=\"wrongpass\"}"),
              5);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_upstream_role{role=\"master\"}"), 1);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_write_timeouts_total{peer=\"client\"}"), 1);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_write_timeouts_total{peer=\"upstream\"}"),
              9);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_clients"), 17);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_cluster_rewrites_total{kind=\"redirect\"}"),
              19);
    EXPECT_EQ(testing::metric_sum(
                  text, "redis_sidecar_cluster_topology_refreshes_total{result=\"failed\"}"),
              23);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_cluster_nodes"), 6);
    EXPECT_EQ(
        testing::metric_sum(text, "redis_sidecar_cluster_node_up{port=\"7001\",role=\"primary\"}"),
        1);
    EXPECT_EQ(testing::metric_sum(
                  text, "redis_sidecar_cluster_node_connections{port=\"7001\",state=\"leased\"}"),
              3);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_upstream_up"), 1);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_state{state=\"ready\"}"), 1);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_state{state=\"starting\"}"), 0);
    EXPECT_EQ(testing::metric_sum(text, "redis_sidecar_build_info{version=\"1.2.3\"}"), 1);
}

}  // namespace
}  // namespace redis_sidecar::metrics
