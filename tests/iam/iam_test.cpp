// ElastiCache IAM authentication end to end: the sidecar obtains AWS credentials (IRSA's STS
// AssumeRoleWithWebIdentity over HTTPS, the EKS Pod Identity agent, or the environment), signs
// tokens, authenticates its pool with them, refreshes them ahead of expiry, re-authenticates idle
// connections before the server's age limit, and reacts to a refused token. The AWS side is
// tests/iam/node/fake_aws.mjs, which verifies every token with @smithy/signature-v4 (the AWS JS
// SDK's signer) as ElastiCache would and forwards authenticated connections to a real
// redis-server's ACL user.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include "faults/sidecar_process.hpp"
#include "support/pki.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

namespace redis_sidecar::iam_test {
namespace {

using namespace redis_sidecar::testing;
using namespace std::chrono_literals;
using faults_test::http_status;
using faults_test::sidecar_process;
using json = nlohmann::json;

const std::string node_dir = std::string(REDIS_SIDECAR_SOURCE_DIR) + "/tests/iam/node";
constexpr const char* role_arn = "arn:aws:iam::123456789012:role/app";
constexpr const char* static_key_id = "AKIAIOSFODNN7EXAMPLE";
constexpr const char* static_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

// One HTTP request on loopback with a JSON body; the status code (0: nothing answered).
int http_post(std::uint16_t port, const std::string& path, const std::string& body) {
    auto fd = connect_tcp("127.0.0.1", port, 2s);
    if (!fd) return 0;
    const std::string req = "POST " + path +
                            " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                            "Content-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
    if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) < 0) return 0;
    timeval tv{2, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    const auto n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 12) return 0;
    return std::stoi(std::string(buf + 9, 3));
}

/// A real redis-server behind fake_aws.mjs's TLS front, plus the token files a pod would have.
class iam : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto setup = run_process({"sh", node_dir + "/setup.sh"}, base_env(), 300s);
        ASSERT_TRUE(setup.ok()) << "installing fake_aws.mjs's packages failed (npm ci):\n" << setup;
        redis_server_options o;
        o.acl_users = {"user backend on >backend-password-0123 ~* &* +@all"};
        backend_ = std::make_unique<redis_server>(o);
        backend_->start();
        write("web-identity-token", "eyJ-web-identity-token-1\n");
        write("pod-identity-token", "pod-identity-token-1\n");
    }

    void TearDown() override {
        if (HasFailure()) {
            std::cerr << "--- fake_aws stderr (tail) ---\n"
                      << tail_of(fake_.err(), 6000) << "\n--- sidecar stderr (tail) ---\n"
                      << tail_of(sidecar_.process().err(), 6000) << "\n";
        }
    }

    std::string write(const std::string& name, const std::string& content) {
        return dir_.write_file(name, content);
    }
    std::string path(const std::string& name) const { return dir_.path() + "/" + name; }

    /// Starts fake_aws.mjs with these config fields over the defaults.
    void start_fake(const json& overrides = json::object()) {
        const auto& pki = test_pki::shared();
        const auto cert = pki.server_cert();
        json c = {{"tls_cert", cert.cert},
                  {"tls_key", cert.key},
                  {"backend_port", backend_->port()},
                  {"backend_user", "backend"},
                  {"backend_password", "backend-password-0123"},
                  {"region", "eu-west-1"},
                  {"cache_name", "orders"},
                  {"serverless", false},
                  {"iam_user", "app"},
                  {"role_arn", role_arn},
                  {"web_identity_token_file", path("web-identity-token")},
                  {"pod_identity_token_file", path("pod-identity-token")},
                  {"static_credentials",
                   {{"access_key_id", static_key_id}, {"secret_access_key", static_secret}}}};
        for (const auto& [k, v] : overrides.items()) c[k] = v;
        const auto config = write("fake_aws.json", c.dump());
        fake_.start({"node", node_dir + "/fake_aws.mjs", "--config", config}, base_env());
        ASSERT_TRUE(fake_.wait_for_output("\"redis\":", 20s)) << fake_.err();
        const auto line = fake_.out().substr(0, fake_.out().find('\n'));
        const auto ports = json::parse(line);
        sts_https_ = ports.at("sts_https").get<std::uint16_t>();
        http_ = ports.at("http").get<std::uint16_t>();
        redis_ = ports.at("redis").get<std::uint16_t>();
    }

    json fake_stats() const {
        std::string body;
        http_status(http_, "/_stats", &body);
        return json::parse(body, nullptr, false);
    }
    void control(const json& j) const { ASSERT_EQ(http_post(http_, "/_control", j.dump()), 200); }

    /// The sidecar's settings for the fake ElastiCache: TLS, the IAM user, the cache and region.
    env_map sidecar_env() const {
        env_map env;
        env["REDIS_ADDR"] = "localhost:" + std::to_string(redis_);
        env["REDIS_TLS_ENABLED"] = "true";
        env["REDIS_TLS_CA_FILE"] = test_pki::shared().ca_cert();
        env["REDIS_USERNAME"] = "app";
        env["REDIS_IAM_AUTH"] = "true";
        env["REDIS_IAM_CACHE_NAME"] = "orders";
        env["AWS_REGION"] = "eu-west-1";
        env["REDIS_SIDECAR_HEALTH_CHECK_INTERVAL"] = "1s";
        return env;
    }
    env_map web_identity_env() const {
        auto env = sidecar_env();
        env["AWS_ROLE_ARN"] = role_arn;
        env["AWS_WEB_IDENTITY_TOKEN_FILE"] = path("web-identity-token");
        env["AWS_ENDPOINT_URL_STS"] = "https://127.0.0.1:" + std::to_string(sts_https_);
        env["AWS_CA_BUNDLE"] = test_pki::shared().ca_cert();
        return env;
    }

    json status() const {
        std::string body;
        http_status(sidecar_.http_port(), "/status", &body);
        return json::parse(body, nullptr, false);
    }

    temp_dir dir_{"iam"};
    std::unique_ptr<redis_server> backend_;
    child_process fake_{"fake_aws"};
    sidecar_process sidecar_;
    std::uint16_t sts_https_ = 0;
    std::uint16_t http_ = 0;
    std::uint16_t redis_ = 0;
};

// IRSA: STS over HTTPS (the test CA via AWS_CA_BUNDLE), credentials that live 6 s (fetched again
// every ~3 s, the token file re-read each time), a server that closes connections not
// re-authenticated within 8 s: commands keep working, idle connections re-authenticate in time,
// and nothing secret reaches the logs.
TEST_F(iam, web_identity_credentials_refresh_and_idle_connections_reauthenticate) {
    ASSERT_NO_FATAL_FAILURE(
        start_fake({{"credential_lifetime_seconds", 6}, {"max_auth_age_seconds", 8}}));
    ASSERT_NO_FATAL_FAILURE(sidecar_.start(web_identity_env()));
    auto r = sidecar_.cli({"SET", "iam:key", "v1"});
    EXPECT_EQ(trim(r.out), "OK") << r;

    const auto started = std::chrono::steady_clock::now();
    int failures = 0;
    int commands = 0;
    bool rotated = false;
    // Bounded: 14 s of one command every 200 ms.
    while (std::chrono::steady_clock::now() - started < 14s && commands < 200) {
        if (!rotated && std::chrono::steady_clock::now() - started > 4s) {
            write("web-identity-token", "eyJ-web-identity-token-2\n");  // the kubelet rotates it
            rotated = true;
        }
        r = sidecar_.cli({"GET", "iam:key"});
        ++commands;
        if (trim(r.out) != "v1") ++failures;
        std::this_thread::sleep_for(200ms);
    }
    EXPECT_EQ(failures, 0) << "of " << commands << " commands";

    const auto s = fake_stats();
    EXPECT_GE(s.at("sts_ok").get<int>(), 4) << s;  // ~every 3 s over 14 s
    EXPECT_EQ(s.at("sts_errors"), json::object()) << s;
    EXPECT_EQ(s.at("last_web_identity_token"), "eyJ-web-identity-token-2") << s;
    EXPECT_EQ(s.at("auth_refused"), json::object()) << s;
    EXPECT_GE(s.at("reauth_ok").get<int>(), 2) << s;  // idle connections, in place
    EXPECT_EQ(s.at("closed_for_age").get<int>(), 0) << s;

    const auto st = status();
    ASSERT_TRUE(st.contains("iam")) << st;
    EXPECT_EQ(st["iam"]["credentials_source"], "web_identity") << st;
    EXPECT_EQ(st["iam"]["cache_name"], "orders") << st;
    EXPECT_EQ(st["iam"]["last_error"], nullptr) << st;
    EXPECT_GE(sidecar_.metric("redis_sidecar_iam_tokens_signed_total"), 4);
    EXPECT_GE(sidecar_.metric("redis_sidecar_iam_credential_fetches_total"), 4);
    EXPECT_EQ(sidecar_.metric("redis_sidecar_iam_credential_errors_total"), 0);
    EXPECT_GT(sidecar_.metric("redis_sidecar_iam_credentials_expiry_seconds"), 0);

    // Nothing secret in the logs or the status: no token, no signature, no web identity token.
    const auto logs =
        sidecar_.process().err() + sidecar_.process().out() + st.dump() + sidecar_.metrics();
    for (const auto* needle : {"X-Amz-Signature", "X-Amz-Security-Token", "Action=connect",
                               "eyJ-web-identity-token", "SecretAccessKey"}) {
        EXPECT_EQ(logs.find(needle), std::string::npos) << needle;
    }
}

// EKS Pod Identity: the agent's URL and token file. Its first two answers are errors: the
// sidecar retries with backoff (1 s, 2 s), counts them, and becomes ready.
TEST_F(iam, pod_identity_with_retries) {
    ASSERT_NO_FATAL_FAILURE(start_fake());
    control({{"pod_fail", 2}});
    auto env = sidecar_env();
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] =
        "http://127.0.0.1:" + std::to_string(http_) + "/v1/credentials";
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = path("pod-identity-token");
    ASSERT_NO_FATAL_FAILURE(sidecar_.start(env));
    const auto r = sidecar_.cli({"SET", "iam:pod", "yes"});
    EXPECT_EQ(trim(r.out), "OK") << r;
    const auto s = fake_stats();
    EXPECT_EQ(s.at("pod_ok").get<int>(), 1) << s;
    EXPECT_EQ(s.at("pod_errors").get<int>(), 2) << s;
    EXPECT_EQ(sidecar_.metric("redis_sidecar_iam_credential_errors_total"), 2);
    EXPECT_EQ(status()["iam"]["credentials_source"], "container");
}

// A refused token (the user not IAM-enabled, no elasticache:Connect, ...): the sidecar fetches
// credentials again once, counts it, says what to check, and recovers when the cause is fixed.
TEST_F(iam, refused_token_is_counted_explained_and_recovered_from) {
    ASSERT_NO_FATAL_FAILURE(start_fake());
    auto env = sidecar_env();
    env["AWS_ACCESS_KEY_ID"] = static_key_id;
    env["AWS_SECRET_ACCESS_KEY"] = static_secret;
    ASSERT_NO_FATAL_FAILURE(sidecar_.start(env));
    EXPECT_EQ(trim(sidecar_.cli({"SET", "iam:r", "1"}).out), "OK");

    control({{"refuse", "all"}});
    // Every connection is dropped (as in a node replacement): new ones must AUTH again.
    backend_->cli({"CLIENT", "KILL", "USER", "backend"});
    EXPECT_TRUE(eventually(
        [&] { return sidecar_.metric("redis_sidecar_iam_tokens_refused_total") >= 1; }, 15s));
    EXPECT_TRUE(sidecar_.process().wait_for_output("ElastiCache refused the IAM token", 5s));
    EXPECT_TRUE(eventually(
        [&] {
            const auto e = status()["last_error"];
            return e.is_object() && e.value("class", "") == "wrongpass";
        },
        10s))
        << status().dump();
    EXPECT_GE(fake_stats().at("auth_refused").value("forced", 0), 1);

    control({{"refuse", "none"}});
    EXPECT_TRUE(eventually(
        [&] {
            return trim(sidecar_.cli({"GET", "iam:r"}).out) == "1";
        },
        20s, 500ms));
}

// `redis-sidecar iam-token` prints a token a user can try with redis-cli; Serverless signs
// ResourceType=ServerlessCache, and a token without it is refused by a Serverless cache.
TEST_F(iam, iam_token_subcommand_and_serverless) {
    ASSERT_NO_FATAL_FAILURE(start_fake({{"serverless", true}}));
    auto env = base_env();
    for (const auto& [k, v] : sidecar_env()) env[k] = v;
    env["AWS_ACCESS_KEY_ID"] = static_key_id;
    env["AWS_SECRET_ACCESS_KEY"] = static_secret;
    const auto try_token = [&](const std::string& token) {
        return run_process({"redis-cli", "--tls", "--cacert", test_pki::shared().ca_cert(), "-h",
                            "127.0.0.1", "-p", std::to_string(redis_), "--user", "app", "--pass",
                            token, "--no-auth-warning", "PING"},
                           base_env(), 10s);
    };

    env["REDIS_IAM_SERVERLESS"] = "true";
    auto t = run_process({REDIS_SIDECAR_BINARY, "iam-token"}, env, 20s);
    ASSERT_TRUE(t.ok()) << t;
    const auto token = trim(t.out);
    EXPECT_EQ(token.rfind("orders/?Action=connect&ResourceType=ServerlessCache&User=app&", 0), 0U)
        << token;
    auto r = try_token(token);
    EXPECT_EQ(trim(r.out), "PONG") << r;

    env["REDIS_IAM_SERVERLESS"] = "false";
    t = run_process({REDIS_SIDECAR_BINARY, "iam-token"}, env, 20s);
    ASSERT_TRUE(t.ok()) << t;
    r = try_token(trim(t.out));
    EXPECT_NE(r.out + r.err, "PONG");
    EXPECT_NE((r.out + r.err).find("WRONGPASS"), std::string::npos) << r;
    EXPECT_EQ(fake_stats().at("auth_refused").value("resource_type", 0), 1) << fake_stats();

    // Bad settings end with one message naming the variable, exit 2.
    env.erase("AWS_SECRET_ACCESS_KEY");
    t = run_process({REDIS_SIDECAR_BINARY, "iam-token"}, env, 20s);
    EXPECT_EQ(t.exit_code, 2) << t;
    EXPECT_NE(t.err.find("AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY"),
              std::string::npos)
        << t;
}

// `check` with IAM: the credentials and the token first, then TLS, AUTH with the token, PING; a
// refused token ends with the IAM hint, and unreachable STS with its own.
TEST_F(iam, check_reports_credentials_token_and_refusal_hints) {
    ASSERT_NO_FATAL_FAILURE(start_fake());
    auto env = base_env();
    for (const auto& [k, v] : web_identity_env()) env[k] = v;
    env["REDIS_SIDECAR_CLUSTER"] = "off";
    auto r = run_process({REDIS_SIDECAR_BINARY, "check"}, env, 30s);
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_NE(r.out.find("aws credentials"), std::string::npos) << r;
    EXPECT_NE(r.out.find("web identity (role " + std::string(role_arn)), std::string::npos) << r;
    EXPECT_NE(r.out.find("iam token"), std::string::npos) << r;
    EXPECT_EQ(r.out.find("X-Amz-Signature"), std::string::npos) << r;

    control({{"refuse", "all"}});
    r = run_process({REDIS_SIDECAR_BINARY, "check"}, env, 30s);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_NE(r.out.find("is IAM-enabled"), std::string::npos) << r;
    EXPECT_NE(r.out.find("replicationgroup/orders"), std::string::npos) << r;

    env["AWS_ENDPOINT_URL_STS"] = "https://127.0.0.1:" + std::to_string(closed_port());
    r = run_process({REDIS_SIDECAR_BINARY, "check"}, env, 30s);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_NE(r.out.find("STS or the credentials agent cannot be reached"), std::string::npos) << r;
}

}  // namespace
}  // namespace redis_sidecar::iam_test
