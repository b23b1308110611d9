// `redis-sidecar check` as a black box against real servers: each failure names its step and
// gives the hint a user needs.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sidecar_binary.hpp"
#include "support/net.hpp"
#include "support/pki.hpp"
#include "support/redis_server.hpp"

namespace redis_sidecar::testing {
namespace {

using json = nlohmann::json;
const std::string password = "check-test-password-0123";

env_map tls_env(const redis_server& s) {
    return {{"REDIS_ADDR", "localhost:" + std::to_string(s.port())},
            {"REDIS_TLS_ENABLED", "true"},
            {"REDIS_TLS_CA_FILE", test_pki::shared().ca_cert()},
            {"REDIS_PASSWORD", password}};
}

TEST(check_cli, all_steps_pass_against_tls_with_auth) {
    redis_server_options o;
    o.tls = true;
    o.requirepass = password;
    redis_server server(o);
    server.start();
    const auto r = run_sidecar({"check"}, tls_env(server));
    ASSERT_EQ(r.exit_code, 0) << r;
    for (const auto* step : {"dns", "tcp", "tls", "auth", "rtt", "role", "version"}) {
        EXPECT_NE(r.out.find(std::string("ok    ") + step), std::string::npos) << step << r;
    }
    EXPECT_NE(r.out.find("TLSv1.3"), std::string::npos);
    EXPECT_NE(r.out.find("master"), std::string::npos);
    EXPECT_NE(r.out.find("7.0.15"), std::string::npos);
    EXPECT_NE(r.out.find("all checks passed"), std::string::npos);
    EXPECT_EQ(r.output().find(password), std::string::npos);
}

TEST(check_cli, json_output) {
    redis_server server;
    server.start();
    const auto r = run_sidecar({"check", "--output", "json"}, {{"REDIS_ADDR", server.address()}});
    ASSERT_EQ(r.exit_code, 0) << r;
    const auto j = json::parse(r.out);
    EXPECT_EQ(j["ok"], true);
    std::vector<std::string> names;
    for (const auto& s : j["steps"]) names.push_back(s["name"]);
    EXPECT_EQ(names, (std::vector<std::string>{"config", "dns", "tcp", "auth", "ping", "rtt",
                                               "role", "version"}));
}

struct failure_case {
    const char* name;
    const char* failed_step;
    const char* hint;
};

void PrintTo(const failure_case& c, std::ostream* os) {
    *os << c.name;
}

class check_cli_failure : public ::testing::TestWithParam<failure_case> {};

// Each case sets up what a user gets wrong and checks exit 1, the failed step and the hint.
TEST_P(check_cli_failure, names_the_step_and_the_likely_cause) {
    const std::string name = GetParam().name;
    redis_server_options o;
    o.tls = name != "tls_against_plain";
    o.requirepass = password;
    if (name == "wrong_certificate_name") o.cert_name = test_pki::wrong_server;
    redis_server server(o);
    std::unique_ptr<silent_tcp_server> silent;
    env_map env;
    if (name == "closed_port" || name == "silent_port") {
        std::uint16_t port = closed_port();
        if (name == "silent_port") {
            silent = std::make_unique<silent_tcp_server>();
            port = silent->port();
        }
        env = {{"REDIS_ADDR", "127.0.0.1:" + std::to_string(port)},
               {"REDIS_CONNECTION_TIMEOUT", "500ms"}};
    } else {
        server.start();
        env = tls_env(server);
        if (name == "wrong_password") env["REDIS_PASSWORD"] = "wrong-password-0123456789";
        if (name == "no_password") env.erase("REDIS_PASSWORD");
        if (name == "plain_against_tls") env.erase("REDIS_TLS_ENABLED");
        if (name == "tls_against_plain") env["REDIS_CONNECTION_TIMEOUT"] = "500ms";
    }
    const auto r = run_sidecar({"check", "--output", "json"}, env);
    EXPECT_EQ(r.exit_code, 1) << r;
    const auto j = json::parse(r.out);
    EXPECT_EQ(j["ok"], false);
    const auto& last = j["steps"].back();
    EXPECT_EQ(last["name"], GetParam().failed_step) << r;
    EXPECT_EQ(last["ok"], false);
    EXPECT_NE(last.value("hint", "").find(GetParam().hint), std::string::npos) << r;
    EXPECT_EQ(r.output().find(password), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    cases, check_cli_failure,
    ::testing::Values(failure_case{"wrong_password", "auth", "password or user name is wrong"},
                      failure_case{"no_password", "auth", "requires a password and none is set"},
                      failure_case{"plain_against_tls", "auth", "set REDIS_TLS_ENABLED=true"},
                      failure_case{"tls_against_plain", "tls", "check that this port speaks TLS"},
                      failure_case{"wrong_certificate_name", "tls", "certificate names localhost"},
                      failure_case{"closed_port", "tcp", "nothing listens on port"},
                      failure_case{"silent_port", "auth", "set REDIS_TLS_ENABLED=true"}));

}  // namespace
}  // namespace redis_sidecar::testing
