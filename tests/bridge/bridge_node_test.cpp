// Real client libraries (ioredis, node-redis v5; see node/package.json) through the bridge:
// SET/GET, pipelines, MULTI/EXEC, pub/sub, RESP3 and the unix socket, with local AUTH. The
// libraries come from the committed package-lock.json (node/setup.sh: npm ci); when npm or the
// registry cannot be reached this test fails, naming the cause: it never skips.

#include "bridge_fixture.hpp"

namespace redis_sidecar::bridge_test {
namespace {

class bridge_node : public bridge_fixture {};

TEST_F(bridge_node, ioredis_and_node_redis_through_the_bridge) {
    const std::string dir = std::string(REDIS_SIDECAR_SOURCE_DIR) + "/tests/bridge/node";
    const auto setup = run_process({"sh", dir + "/setup.sh"}, base_env(), 300s);
    ASSERT_TRUE(setup.ok()) << "installing the node client libraries failed (npm ci):\n" << setup;

    bridge_options options;
    options.env["REDIS_SIDECAR_CLIENT_PASSWORD"] = "node-client-password";
    ASSERT_NO_FATAL_FAILURE(start(options));

    env_map env = base_env();
    env["BRIDGE_PORT"] = std::to_string(port());
    env["BRIDGE_SOCKET"] = socket_path();
    env["BRIDGE_PASSWORD"] = "node-client-password";
    const auto r = run_process(
        {"node", "--test", "--test-reporter=spec", dir + "/bridge_clients.test.mjs"}, env, 90s);
    EXPECT_TRUE(r.ok()) << r;
    // Every test of the script ran and passed (node --test prints the totals).
    EXPECT_NE(r.out.find("ℹ pass 9"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ℹ fail 0"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace redis_sidecar::bridge_test
