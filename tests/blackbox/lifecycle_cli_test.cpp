// `redis-sidecar wait` and `redis-sidecar shutdown` as a black box, beside a real sidecar in
// front of a real TLS redis-server whose password comes from a secret file.

#include <gtest/gtest.h>
#include <signal.h>

#include "sidecar_binary.hpp"
#include "support/eventually.hpp"
#include "support/net.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

namespace redis_sidecar::testing {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

const std::string password = "lifecycle-test-password-0123";

/// A TLS redis-server with a password, not started yet, and the sidecar settings that reach it
/// (password from a file, as a mounted Secret gives it).
class lifecycle_cli : public ::testing::Test {
  protected:
    lifecycle_cli() : server_(tls_options()) {
        secrets_.write_file("password", password + "\n");
        http_ = free_tcp_port();
        listen_ = free_tcp_port();
    }

    static redis_server_options tls_options() {
        redis_server_options o;
        o.tls = true;
        o.requirepass = password;
        o.port = free_tcp_port();
        return o;
    }

    env_map sidecar_env() const {
        return {{"REDIS_ADDR", "localhost:" + std::to_string(*server_.options().port)},
                {"REDIS_TLS_ENABLED", "true"},
                {"REDIS_TLS_CA_FILE", test_pki::shared().ca_cert()},
                {"REDIS_PASSWORD_FILE", secrets_.path() + "/password"},
                {"REDIS_SIDECAR_LISTEN", "127.0.0.1:" + std::to_string(listen_)},
                {"REDIS_SIDECAR_HTTP_ADDR", http_addr()},
                {"REDIS_SIDECAR_LOG_FORMAT", "text"},
                {"REDIS_SIDECAR_MAX_DRAIN", "5s"}};
    }

    std::string http_addr() const { return "127.0.0.1:" + std::to_string(http_); }

    void start_sidecar() {
        auto env = base_env();
        for (const auto& [k, v] : sidecar_env()) env[k] = v;
        sidecar_.start({REDIS_SIDECAR_BINARY, "run"}, env);
        // Its admin server listens whether or not the upstream is there yet.
        ASSERT_TRUE(wait_for_tcp_port("127.0.0.1", http_, 10s)) << sidecar_.err();
        ASSERT_TRUE(sidecar_.running()) << sidecar_.err();
    }

    /// PING through the sidecar's local listener with plain redis-cli, as the application would.
    std::string ping() const {
        return trim(
            run_process({"redis-cli", "-p", std::to_string(listen_), "PING"}, base_env(), 10s).out);
    }

    temp_dir secrets_;
    std::uint16_t http_ = 0;
    std::uint16_t listen_ = 0;
    redis_server server_;
    child_process sidecar_{"redis-sidecar"};
};

TEST_F(lifecycle_cli, wait_returns_once_the_sidecar_has_started) {
    start_sidecar();  // before its cache: /startupz 503
    child_process waiter("wait");
    auto env = base_env();
    env["REDIS_SIDECAR_HTTP_ADDR"] = http_addr();
    waiter.start({REDIS_SIDECAR_BINARY, "wait", "--timeout", "30s"}, env);
    // Still waiting while the upstream is down (bounded look: it must not have exited).
    EXPECT_FALSE(waiter.wait_exit(1s).has_value()) << waiter.err();
    server_.start();
    const auto started = clock::now();
    ASSERT_EQ(waiter.wait_exit(20s), 0) << waiter.err() << sidecar_.err();
    EXPECT_LT(clock::now() - started, 15s);
    EXPECT_NE(
        waiter.out().find("redis-sidecar wait: the sidecar at " + http_addr() + " has started"),
        std::string::npos)
        << waiter.out();
    // Once wait said so, the sidecar serves: a client gets PONG through it.
    EXPECT_EQ(ping(), "PONG");
    EXPECT_EQ(sidecar_.stop(10s), 0);
}

TEST_F(lifecycle_cli, wait_times_out_with_the_last_answer) {
    start_sidecar();  // the cache never comes
    const auto begun = clock::now();
    const auto r = run_sidecar({"wait", "--timeout", "1500ms", "--http-addr", http_addr()}, {});
    const auto took = clock::now() - begun;
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_GE(took, 1500ms);
    EXPECT_LT(took, 5s);
    EXPECT_TRUE(r.out.empty()) << r;
    EXPECT_EQ(r.err,
              "redis-sidecar wait: the sidecar at " + http_addr() +
                  " did not start within 1500ms; last: /startupz answered 503 (not started)\n");
    EXPECT_EQ(sidecar_.stop(10s), 0);
}

TEST_F(lifecycle_cli, wait_without_a_sidecar_says_nothing_answered) {
    const auto port = closed_port();
    const auto r = run_sidecar({"wait", "--timeout", "300ms"},
                               {{"REDIS_SIDECAR_HTTP_ADDR", "127.0.0.1:" + std::to_string(port)}});
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_NE(r.err.find("did not start within 300ms; last: connection refused (is it running, "
                         "and is its admin address REDIS_SIDECAR_HTTP_ADDR / --http-addr?)"),
              std::string::npos)
        << r;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r;
}

TEST_F(lifecycle_cli, a_wildcard_admin_address_is_reached_on_loopback) {
    server_.start();
    start_sidecar();
    // The sidecar listens on 127.0.0.1; told 0.0.0.0 (the chart's default), wait asks loopback.
    const auto r =
        run_sidecar({"wait", "--timeout", "10s", "--http-addr", "0.0.0.0:" + std::to_string(http_)},
                    {{"REDIS_SIDECAR_HTTP_ADDR", "127.0.0.1:1"}});  // the flag wins
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_NE(r.out.find("127.0.0.1:" + std::to_string(http_)), std::string::npos) << r;
    EXPECT_EQ(sidecar_.stop(10s), 0);
}

TEST_F(lifecycle_cli, shutdown_drains_the_sidecar_which_exits_0) {
    server_.start();
    start_sidecar();
    ASSERT_EQ(run_sidecar({"wait", "--timeout", "10s"}, {{"REDIS_SIDECAR_HTTP_ADDR", http_addr()}})
                  .exit_code,
              0);
    EXPECT_EQ(ping(), "PONG");
    const auto r = run_sidecar({"shutdown"}, {{"REDIS_SIDECAR_HTTP_ADDR", http_addr()}});
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(r.out, "redis-sidecar shutdown: the sidecar at " + http_addr() + " is draining\n");
    const auto asked = clock::now();
    EXPECT_EQ(sidecar_.wait_exit(10s), 0) << sidecar_.err();
    EXPECT_LT(clock::now() - asked, 6s);  // REDIS_SIDECAR_MAX_DRAIN is 5s, and nothing is in flight
    EXPECT_NE(sidecar_.err().find("POST /quitquitquit"), std::string::npos) << sidecar_.err();
    EXPECT_EQ(sidecar_.err().find(password), std::string::npos);
    // Nobody left to ask.
    const auto again =
        run_sidecar({"shutdown", "--timeout", "1s"}, {{"REDIS_SIDECAR_HTTP_ADDR", http_addr()}});
    EXPECT_EQ(again.exit_code, 1) << again;
    EXPECT_EQ(again.err, "redis-sidecar shutdown: the sidecar at " + http_addr() +
                             " did not accept: connection refused\n");
}

TEST_F(lifecycle_cli, bad_flags_are_usage_errors) {
    const auto r = run_sidecar({"wait", "--timeout", "soon"}, {});
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_EQ(r.err,
              "redis-sidecar wait: --timeout: 'soon' is not a duration (250ms, 5s, 2m or a "
              "number of seconds)\n");
    const auto s = run_sidecar({"shutdown"}, {{"REDIS_SIDECAR_HTTP_ADDR", "nowhere"}});
    EXPECT_EQ(s.exit_code, 2) << s;
    EXPECT_NE(s.err.find("REDIS_SIDECAR_HTTP_ADDR"), std::string::npos) << s;
    for (const auto* sub : {"wait", "shutdown"}) {
        const auto h = run_sidecar({sub, "--help"}, {});
        EXPECT_EQ(h.exit_code, 0) << h;
        EXPECT_NE(h.out.find("--timeout"), std::string::npos) << h;
    }
}

}  // namespace
}  // namespace redis_sidecar::testing
