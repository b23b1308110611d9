#include "redis_sidecar/upstream/connection.hpp"

#include <gtest/gtest.h>

#include "io_fixture.hpp"
#include "redis_sidecar/upstream/error.hpp"
#include "redis_sidecar/upstream/pool.hpp"
#include "support/net.hpp"
#include "support/pki.hpp"
#include "support/redis_server.hpp"

namespace redis_sidecar::upstream {
namespace {

using namespace std::chrono_literals;
using testing::redis_server;
using testing::redis_server_options;
using testing::test_pki;
using testing::trim;

const std::string password = "upstream-test-password-0123";

config::upstream_settings settings_for(const std::string& host, std::uint16_t port, bool tls) {
    config::upstream_settings s;
    s.host = host;
    s.port = port;
    s.tls.enabled = tls;
    s.tls.server_name = host;
    s.tls.ca_file = test_pki::shared().ca_cert();
    return s;
}

class connection_test : public ::testing::Test, public io_fixture {
  protected:
    struct outcome {
        std::error_code ec;
        std::shared_ptr<connection> conn;
        std::vector<open_step> trace;
        std::string detail;  ///< what the open handler said on failure
    };

    outcome open(const config::upstream_settings& s, std::chrono::milliseconds timeout = 5s) {
        std::unique_ptr<tls_client> tls;
        if (s.tls.enabled) tls = std::make_unique<tls_client>(s.tls);
        return open_with(s, tls.get(), timeout);
    }

    outcome open_with(const config::upstream_settings& s, tls_client* tls,
                      std::chrono::milliseconds timeout = 5s) {
        outcome out;
        bool done = false;
        auto resolve = system_resolver(io_.get_executor());
        resolve(s.host, s.port, [&](std::error_code ec, std::vector<tcp::endpoint> eps) {
            if (ec) {
                out.ec = ec;
                done = true;
                return;
            }
            open_options o;
            o.upstream = &s;
            o.timeout = timeout;
            o.client_name = "redis-sidecar:test";
            o.trace = &out.trace;
            async_open(
                io_.get_executor(), tls, 1, std::move(eps), o,
                [&](std::error_code ec2, std::shared_ptr<connection> c, const std::string& detail) {
                    out.ec = ec2;
                    out.detail = detail;
                    out.conn = std::move(c);
                    done = true;
                });
        });
        EXPECT_TRUE(run_until([&] { return done; }, timeout + 5s)) << "async_open never completed";
        return out;
    }

    std::vector<resp::reply> command(const std::shared_ptr<connection>& c, std::string formatted,
                                     std::size_t replies, std::error_code* ec_out = nullptr) {
        command_result result;
        bool done = false;
        async_command(c, std::move(formatted), replies, 2s, [&](command_result r) {
            result = std::move(r);
            done = true;
        });
        EXPECT_TRUE(run_until([&] { return done; }, 5s));
        if (ec_out != nullptr) *ec_out = result.ec;
        EXPECT_TRUE(ec_out != nullptr || !result.ec) << result.ec.message();
        return result.replies;
    }
};

TEST_F(connection_test, plain_server_without_password) {
    redis_server server;
    server.start();
    auto r = open(settings_for("127.0.0.1", server.port(), false));
    ASSERT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.conn->info().version, "7.0.15");
    EXPECT_EQ(r.conn->info().role, "master");
    const auto pong = command(r.conn, resp::format_command({"PING"}), 1);
    EXPECT_EQ(pong.at(0).str, "PONG");
}

TEST_F(connection_test, tls_with_password_sets_name_and_db) {
    redis_server_options o;
    o.tls = true;
    o.requirepass = password;
    redis_server server(o);
    server.start();
    auto s = settings_for("localhost", server.port(), true);
    s.password = config::secret(password);
    s.db = 3;
    auto r = open(s);
    ASSERT_FALSE(r.ec) << r.ec.message();
    command(r.conn, resp::format_command({"SET", "written-by-sidecar", "yes"}), 1);
    EXPECT_EQ(trim(server.cli({"-n", "3", "GET", "written-by-sidecar"}).out), "yes");
    EXPECT_NE(server.cli({"CLIENT", "LIST"}).out.find("name=redis-sidecar:test"),
              std::string::npos);
    ASSERT_GE(r.trace.size(), 3u);
    EXPECT_EQ(r.trace[1].name, "tls");
    EXPECT_NE(r.trace[1].detail.find("verified"), std::string::npos) << r.trace[1].detail;
}

TEST_F(connection_test, tls_session_is_resumed_on_reconnect) {
    redis_server_options o;
    o.tls = true;
    redis_server server(o);
    server.start();
    const auto s = settings_for("localhost", server.port(), true);
    tls_client tls(s.tls);
    auto first = open_with(s, &tls);
    ASSERT_FALSE(first.ec) << first.ec.message();
    auto second = open_with(s, &tls);
    ASSERT_FALSE(second.ec) << second.ec.message();
    EXPECT_NE(second.trace.at(1).detail.find("session resumed"), std::string::npos)
        << second.trace.at(1).detail;
    // Only the sidecar's own one-per-name map holds sessions: OpenSSL's internal store, which
    // nothing reads, would keep one per connection ever opened (memory growing with reconnects).
    for (int i = 0; i < 5; ++i) ASSERT_FALSE(open_with(s, &tls).ec);
    EXPECT_EQ(SSL_CTX_sess_number(tls.context().native_handle()), 0);
}

TEST_F(connection_test, acl_user_and_wrong_password) {
    redis_server_options o;
    o.tls = true;
    o.acl_users = {"user app on >app-password-0123456789 ~app:* +@read +@write +@connection"};
    redis_server server(o);
    server.start();
    auto s = settings_for("localhost", server.port(), true);
    s.username = "app";
    s.password = config::secret("app-password-0123456789");
    auto ok = open(s);
    ASSERT_FALSE(ok.ec) << ok.ec.message();

    s.password = config::secret("not-the-password-0123");
    auto bad = open(s);
    EXPECT_EQ(bad.ec, make_error_code(error::wrongpass)) << bad.ec.message();
    EXPECT_EQ(bad.conn, nullptr);
    ASSERT_FALSE(bad.trace.empty());
    EXPECT_EQ(bad.trace.back().name, "auth");
    EXPECT_NE(bad.trace.back().detail.find("WRONGPASS"), std::string::npos);
    // The server's words reach the handler (the pool puts them in /status and the log).
    EXPECT_EQ(bad.detail, bad.trace.back().detail);
    EXPECT_EQ(bad.detail.find("not-the-password"), std::string::npos);
}

TEST_F(connection_test, acl_user_without_ping_is_noperm) {
    redis_server_options o;
    o.acl_users = {"user limited on >limited-password-012345 ~* +@all -ping"};
    redis_server server(o);
    server.start();
    auto s = settings_for("127.0.0.1", server.port(), false);
    s.username = "limited";
    s.password = config::secret("limited-password-012345");
    auto r = open(s);
    EXPECT_EQ(r.ec, make_error_code(error::noperm)) << r.ec.message();
    EXPECT_EQ(r.trace.back().name, "ping");
}

TEST_F(connection_test, password_required_but_not_configured_is_noauth) {
    redis_server_options o;
    o.requirepass = password;
    redis_server server(o);
    server.start();
    auto r = open(settings_for("127.0.0.1", server.port(), false));
    EXPECT_EQ(r.ec, make_error_code(error::noauth)) << r.ec.message();
}

TEST_F(connection_test, certificate_for_another_host_fails_verification) {
    redis_server_options o;
    o.tls = true;
    o.cert_name = test_pki::wrong_server;
    redis_server server(o);
    server.start();
    auto s = settings_for("localhost", server.port(), true);
    auto r = open(s);
    EXPECT_EQ(r.ec, make_error_code(error::tls_certificate_verify_failed)) << r.ec.message();
    EXPECT_NE(r.trace.back().detail.find("hostname mismatch"), std::string::npos)
        << r.trace.back().detail;
    EXPECT_NE(r.detail.find("hostname mismatch"), std::string::npos) << r.detail;

    s.tls.verify = false;  // REDIS_TLS_SKIP_VERIFY: accepted, and said so
    auto unverified = open(s);
    ASSERT_FALSE(unverified.ec) << unverified.ec.message();
    EXPECT_NE(unverified.trace.at(1).detail.find("NOT verified"), std::string::npos);
}

TEST_F(connection_test, tls_client_against_plain_server_times_out_in_the_tls_step) {
    redis_server server;
    server.start();
    // Redis reads the ClientHello as the start of an inline command and waits for its newline.
    auto r = open(settings_for("localhost", server.port(), true), 500ms);
    EXPECT_EQ(r.ec, make_error_code(error::timeout)) << r.ec.message();
    ASSERT_FALSE(r.trace.empty());
    EXPECT_EQ(r.trace.back().name, "tls");
    EXPECT_FALSE(r.trace.back().ok);
}

TEST_F(connection_test, plain_client_against_tls_server_breaks) {
    redis_server_options o;
    o.tls = true;
    redis_server server(o);
    server.start();
    auto r = open(settings_for("127.0.0.1", server.port(), false), 2s);
    // Redis closes the connection when it sees RESP where a ClientHello belongs.
    EXPECT_EQ(r.ec, make_error_code(error::io_error)) << r.ec.message();
    EXPECT_EQ(r.trace.back().name, "auth");
}

TEST_F(connection_test, closed_port_is_refused) {
    auto r = open(settings_for("127.0.0.1", testing::closed_port(), false));
    EXPECT_EQ(r.ec, make_error_code(error::connection_refused)) << r.ec.message();
}

TEST_F(connection_test, silent_server_times_out_within_the_bound) {
    testing::silent_tcp_server silent;
    const auto start = std::chrono::steady_clock::now();
    auto r = open(settings_for("127.0.0.1", silent.port(), true), 300ms);
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.ec, make_error_code(error::timeout)) << r.ec.message();
    EXPECT_LT(took, 3s);  // a bound, not a benchmark: the timeout is 300 ms
}

TEST_F(connection_test, command_timeout_closes_the_connection) {
    redis_server server;
    server.start();
    auto r = open(settings_for("127.0.0.1", server.port(), false));
    ASSERT_FALSE(r.ec);
    command_result result;
    bool done = false;
    async_command(r.conn, resp::format_command({"DEBUG", "SLEEP", "2"}), 1, 200ms,
                  [&](command_result cr) {
                      result = std::move(cr);
                      done = true;
                  });
    ASSERT_TRUE(run_until([&] { return done; }, 5s));
    EXPECT_EQ(result.ec, make_error_code(error::timeout));
    EXPECT_TRUE(r.conn->broken());
}

}  // namespace
}  // namespace redis_sidecar::upstream
