// Real client libraries (ioredis, node-redis v5; see node/package.json) through the bridge:
// SET/GET, pipelines, MULTI/EXEC, pub/sub, RESP3 and the unix socket, with local AUTH. The
// libraries come from the committed package-lock.json (node/setup.sh: npm ci); when npm or the
// registry cannot be reached this test fails, naming the cause: it never skips.

#include "bridge_fixture.hpp"

#include <cstdio>
#include <cstdlib>

namespace redis_sidecar::bridge_test {
namespace {

class bridge_node : public bridge_fixture {
  protected:
    /// Installs the libraries (npm ci), starts the sidecar with a client password and runs
    /// `node --test` on `script` (in tests/bridge/node) against it.
    process_result run_script(const std::string& script, std::chrono::milliseconds timeout) {
        const std::string dir = std::string(REDIS_SIDECAR_SOURCE_DIR) + "/tests/bridge/node";
        const auto setup = run_process({"sh", dir + "/setup.sh"}, base_env(), 300s);
        EXPECT_TRUE(setup.ok()) << "installing the node client libraries failed (npm ci):\n"
                                << setup;
        if (!setup.ok()) return setup;
        bridge_options options;
        options.env["REDIS_SIDECAR_CLIENT_PASSWORD"] = "node-client-password";
        start(options);
        if (HasFatalFailure()) return {};  // start() said why; exit_code -1 fails the test
        env_map env = base_env();
        env["BRIDGE_PORT"] = std::to_string(port());
        env["BRIDGE_SOCKET"] = socket_path();
        env["BRIDGE_PASSWORD"] = "node-client-password";
        return run_process({"node", "--test", "--test-reporter=spec", dir + "/" + script}, env,
                           timeout);
    }
};

TEST_F(bridge_node, ioredis_and_node_redis_through_the_bridge) {
    const auto r = run_script("bridge_clients.test.mjs", 90s);
    EXPECT_TRUE(r.ok()) << r;
    // Every test of the script ran and passed (node --test prints the totals).
    EXPECT_NE(r.out.find("ℹ pass 9"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ℹ fail 0"), std::string::npos) << r.out;
}

// 90 clients at once (ioredis auto-pipelining, node-redis RESP2 and RESP3, MULTI/EXEC and BLPOP
// loops), each with hundreds of commands in flight, unique keys and values, every reply checked
// by the script (bridge_load.test.mjs). With multiplexing on (the `mux:` run) the load must also
// have gone through the shared connections, on a few upstream connections.
TEST_F(bridge_node, many_clients_with_many_commands_in_flight_get_their_own_replies) {
    const auto r = run_script("bridge_load.test.mjs", 180s);
    ASSERT_TRUE(r.ok()) << r;
    EXPECT_NE(r.out.find("ℹ pass 1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ℹ fail 0"), std::string::npos) << r.out;

    // "load: <n> replies checked, <c> clients, <u> upstream connections"
    long long replies = 0;
    int clients = 0;
    int upstream = 0;
    const auto at = r.out.find("load: ");
    ASSERT_NE(at, std::string::npos) << r.out;
    ASSERT_EQ(std::sscanf(r.out.c_str() + at,
                          "load: %lld replies checked, %d clients, %d upstream connections",
                          &replies, &clients, &upstream),
              3)
        << r.out;
    std::printf("%s\n", r.out.substr(at, r.out.find('\n', at) - at).c_str());
    EXPECT_GE(replies, 80000);
    EXPECT_EQ(clients, 90);
    const std::string text = metrics();
    const double forwarded = metric_sum(text, "redis_sidecar_commands_forwarded_total");
    EXPECT_GE(forwarded, static_cast<double>(replies)) << text;
    const char* mux = std::getenv("RS_TEST_MULTIPLEX");
    if (mux != nullptr && std::string(mux) == "on") {
        // Everything but the 8 transaction and blocking clients' commands was shared; the
        // server saw the 2 shared connections of each protocol, those 8 and the idle ones.
        EXPECT_GE(metric_sum(text, "redis_sidecar_commands_shared_total"),
                  0.95 * static_cast<double>(replies))
            << text;
        EXPECT_LE(upstream, 20) << r.out;
        // What the libraries send when they connect (CLIENT SETINFO, node-redis' CLIENT
        // MAINT_NOTIFICATIONS, HELLO 3) pins no client: only MULTI and BLPOP do.
        const auto pins = [&](const std::string& reason) {
            const std::string series =
                "redis_sidecar_client_pins_total{reason=\"" + reason + "\"} ";
            const auto pos = text.find(series);
            return pos == std::string::npos ? -1.0 : std::stod(text.substr(pos + series.size()));
        };
        EXPECT_EQ(pins("connection_state"), 0) << text;
        EXPECT_EQ(pins("unknown"), 0) << text;
        EXPECT_EQ(pins("transaction"), 5) << text;
        EXPECT_EQ(pins("blocking"), 3) << text;
    } else {
        EXPECT_GE(upstream, 40) << r.out;  // one upstream connection per busy client
    }
}

}  // namespace
}  // namespace redis_sidecar::bridge_test
