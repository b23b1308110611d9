// The probes and /metrics of the real binary, as the kubelet and Prometheus see them.

#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "../bridge/bridge_fixture.hpp"
#include "sidecar_process.hpp"
#include "support/redis_server.hpp"

namespace redis_sidecar::faults_test {
namespace {

using bridge_test::resp_client;

TEST(probes, startup_waits_for_the_first_upstream_connection) {
    // The sidecar comes up before its cache.
    const auto port = free_tcp_port();
    redis_server_options o;
    o.port = port;
    redis_server late(o);
    const auto http = free_tcp_port();
    env_map env = base_env();
    env["REDIS_ADDR"] = "127.0.0.1:" + std::to_string(port);
    env["REDIS_SIDECAR_LISTEN"] = "127.0.0.1:" + std::to_string(free_tcp_port());
    env["REDIS_SIDECAR_HTTP_ADDR"] = "127.0.0.1:" + std::to_string(http);
    env["REDIS_SIDECAR_MAX_DRAIN"] = "5s";
    child_process sc("redis-sidecar");
    sc.start({REDIS_SIDECAR_BINARY, "run"}, env);
    ASSERT_TRUE(eventually([&] { return http_status(http, "/livez") == 200; }, 10s)) << sc.err();
    EXPECT_EQ(http_status(http, "/startupz"), 503);
    EXPECT_EQ(http_status(http, "/readyz"), 503);
    late.start();
    ASSERT_TRUE(eventually([&] { return http_status(http, "/startupz") == 200; }, 15s));
    EXPECT_TRUE(eventually([&] { return http_status(http, "/readyz") == 200; }, 5s));
    std::string body;
    EXPECT_EQ(http_status(http, "/configz", &body), 200);
    EXPECT_NE(body.find("\"upstream\""), std::string::npos) << body;
    EXPECT_EQ(http_status(http, "/nope"), 404);
    sc.send_signal(SIGTERM);
    EXPECT_EQ(sc.wait_exit(15s), 0);
}

TEST(probes, primary_policy_fails_after_replicaof) {
    redis_server other;
    other.start();
    redis_server server;
    server.start();
    sidecar_process sc;
    sc.start({{"REDIS_ADDR", server.address()},
              {"REDIS_SIDECAR_READINESS", "primary"},
              {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "200ms"}});
    EXPECT_EQ(sc.readyz(), 200);
    server.cli({"REPLICAOF", "127.0.0.1", std::to_string(other.port())});
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 503; }, 10s));
    EXPECT_EQ(sc.livez(), 200);
    std::string status;
    http_status(sc.http_port(), "/status", &status);
    const auto j = nlohmann::json::parse(status);
    EXPECT_EQ(j["role"], "replica") << status;
    EXPECT_EQ(j["status"], "degraded") << status;  // serving, but not what the policy wants
    server.cli({"REPLICAOF", "NO", "ONE"});
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 200; }, 10s));
    EXPECT_EQ(sc.terminate(), 0);
}

TEST(probes, sigterm_lets_an_in_flight_blpop_finish) {
    redis_server server;
    server.start();
    sidecar_process sc;
    sc.start({{"REDIS_ADDR", server.address()}, {"REDIS_SIDECAR_MAX_DRAIN", "10s"}});
    auto blocked = resp_client::tcp(sc.port());
    blocked.send({"BLPOP", "jobs", "0"});
    ASSERT_TRUE(eventually(
        [&] {
            return server.cli({"CLIENT", "LIST"}).out.find("cmd=blpop") != std::string::npos;
        },
        5s));
    sc.process().send_signal(SIGTERM);
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 503; }, 2s));  // at once
    EXPECT_EQ(sc.livez(), 200);
    server.cli({"LPUSH", "jobs", "job-1"});
    const auto reply = blocked.read(5s);
    EXPECT_EQ(reply.text(), "[\"jobs\", \"job-1\"]");
    blocked.close();
    const auto exited = clock::now();
    EXPECT_EQ(sc.process().wait_exit(10s), 0);
    EXPECT_LT(seconds_since(exited), 10);
}

TEST(probes, metrics_move_with_traffic) {
    redis_server server;
    server.start();
    sidecar_process sc;
    sc.start({{"REDIS_ADDR", server.address()}});
    const auto before = sc.metric("redis_sidecar_commands_forwarded_total");
    const auto accepted = sc.metric("redis_sidecar_clients_accepted_total");
    auto c = resp_client::tcp(sc.port());
    for (int i = 0; i < 10; ++i) ASSERT_EQ(c.call({"SET", "k", "v"}).text(), "OK");
    ASSERT_EQ(c.call({"AUTH", "whatever"}).text(), "OK");
    const auto text = sc.metrics();
    EXPECT_EQ(metric_sum(text, "redis_sidecar_commands_forwarded_total") - before, 10);
    EXPECT_EQ(metric_sum(text, "redis_sidecar_commands_intercepted_total"), 1);
    EXPECT_EQ(metric_sum(text, "redis_sidecar_clients_accepted_total") - accepted, 1);
    EXPECT_EQ(metric_sum(text, "redis_sidecar_clients"), 1);
    EXPECT_GE(metric_sum(text, "redis_sidecar_upstream_connects_total"), 1);
    EXPECT_NE(text.find("# TYPE redis_sidecar_upstream_handshake_duration_seconds histogram"),
              std::string::npos);
    EXPECT_NE(text.find("redis_sidecar_state{state=\"ready\"} 1"), std::string::npos);
    EXPECT_NE(text.find("redis_sidecar_probe_status{probe=\"readyz\"} 1"), std::string::npos)
        << text;
    c.close();
    EXPECT_EQ(sc.terminate(), 0);
}

}  // namespace
}  // namespace redis_sidecar::faults_test
