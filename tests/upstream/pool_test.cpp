#include "redis_sidecar/upstream/pool.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "io_fixture.hpp"
#include "redis_sidecar/upstream/error.hpp"
#include "support/net.hpp"
#include "support/pki.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

namespace redis_sidecar::upstream {
namespace {

using namespace std::chrono_literals;
using testing::redis_server;
using testing::redis_server_options;
using testing::test_pki;
using testing::trim;

class pool_test : public ::testing::Test, public io_fixture {
  protected:
    std::shared_ptr<pool> make_pool(const config::upstream_settings& s, pool_options o,
                                    resolver_fn resolver = {}) {
        if (s.tls.enabled) tls_ = std::make_unique<tls_client>(s.tls);
        if (!resolver) resolver = system_resolver(io_.get_executor());
        auto p = std::make_shared<pool>(io_.get_executor(), s, tls_.get(), o, std::move(resolver));
        p->start();
        return p;
    }

    static config::upstream_settings plain(std::uint16_t port) {
        config::upstream_settings s;
        s.host = "127.0.0.1";
        s.port = port;
        s.tls.server_name = s.host;
        return s;
    }

    struct lease {
        std::error_code ec;
        std::shared_ptr<connection> conn;
        bool done = false;
    };

    std::shared_ptr<lease> acquire(pool& p) {
        auto l = std::make_shared<lease>();
        p.async_acquire([l](std::error_code ec, std::shared_ptr<connection> c) {
            l->ec = ec;
            l->conn = std::move(c);
            l->done = true;
        });
        return l;
    }

    std::unique_ptr<tls_client> tls_;
};

TEST_F(pool_test, keeps_min_idle_ready_over_tls) {
    redis_server_options so;
    so.tls = true;
    so.requirepass = "pool-test-password-0123";
    redis_server server(so);
    server.start();
    config::upstream_settings s;
    s.host = "localhost";
    s.port = server.port();
    s.tls.enabled = true;
    s.tls.server_name = "localhost";
    s.tls.ca_file = test_pki::shared().ca_cert();
    s.password = config::secret("pool-test-password-0123");
    pool_options o;
    o.min_idle = 3;
    auto p = make_pool(s, o);
    ASSERT_TRUE(run_until([&] { return p->stats().idle == 3; }, 5s));
    EXPECT_EQ(p->stats().connects, 3u);
    EXPECT_EQ(p->stats().role, "master");
    EXPECT_EQ(p->stats().server_version, "7.0.15");
    EXPECT_EQ(p->stats().handshake_latency.count, 3u);

    auto l = acquire(*p);
    ASSERT_TRUE(run_until([&] { return l->done; }, 2s));
    ASSERT_FALSE(l->ec);
    EXPECT_EQ(p->stats().leased, 1u);
    // One went out: the pool opens another to stay at min_idle.
    ASSERT_TRUE(run_until([&] { return p->stats().idle == 3; }, 5s));
    p->release(l->conn, true);
    EXPECT_EQ(p->stats().leased, 0u);
    EXPECT_EQ(p->stats().idle, 4u);
    EXPECT_EQ(p->stats().reuses, 1u);
    p->stop();
}

TEST_F(pool_test, refills_after_client_kill) {
    redis_server server;
    server.start();
    pool_options o;
    o.min_idle = 2;
    auto p = make_pool(plain(server.port()), o);
    ASSERT_TRUE(run_until([&] { return p->stats().idle == 2; }, 5s));
    const auto killed = trim(server.cli({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"}).out);
    EXPECT_EQ(killed, "2");
    // The idle watch sees the EOFs at once; no health interval has to pass.
    ASSERT_TRUE(run_until([&] { return p->stats().discards == 2 && p->stats().idle == 2; }, 5s))
        << "discards " << p->stats().discards << " idle " << p->stats().idle;
    EXPECT_EQ(p->stats().connects, 4u);
    p->stop();
}

TEST_F(pool_test, the_servers_words_reach_last_error_without_the_password) {
    redis_server_options so;
    so.requirepass = "pool-test-password-0123";
    redis_server server(so);
    server.start();
    auto s = plain(server.port());
    s.password = config::secret("not-the-password-4567");
    pool_options o;
    o.min_idle = 1;
    auto p = make_pool(s, o);
    ASSERT_TRUE(run_until([&] { return !p->stats().last_error.empty(); }, 5s));
    EXPECT_EQ(p->stats().last_error, "wrongpass");
    EXPECT_NE(p->stats().last_error_message.find("WRONGPASS invalid username-password pair"),
              std::string::npos)
        << p->stats().last_error_message;
    EXPECT_EQ(p->stats().last_error_message.find("not-the-password"), std::string::npos);
    p->stop();
}

// After a burst the pool shrinks back to min_idle: idle connections above it close once unused
// for idle_timeout (at a health round); with idle_timeout 0 they stay.
TEST_F(pool_test, idle_connections_above_the_minimum_close_after_the_idle_timeout) {
    redis_server server;
    server.start();
    for (const auto timeout : {200ms, 0ms}) {
        SCOPED_TRACE("idle_timeout " + std::to_string(timeout.count()) + "ms");
        pool_options o;
        o.min_idle = 1;
        o.idle_timeout = timeout;
        o.health_interval = 100ms;
        auto p = make_pool(plain(server.port()), o);
        std::vector<std::shared_ptr<lease>> burst;
        for (int i = 0; i < 5; ++i) burst.push_back(acquire(*p));
        ASSERT_TRUE(run_until(
            [&] {
                return std::all_of(burst.begin(), burst.end(), [](auto& l) { return l->done; });
            },
            5s));
        for (auto& l : burst) {
            ASSERT_FALSE(l->ec) << l->ec.message();
            p->release(l->conn, true);
        }
        EXPECT_GE(p->stats().idle, 5u);
        run_for(800ms);  // several health rounds past the timeout
        // open, not idle: a connection being health-checked is open but not idle.
        if (timeout.count() > 0) {
            EXPECT_EQ(p->stats().open, 1u);
            EXPECT_GE(p->stats().idle_closes, 4u);
            // And the server agrees: one connection of the pool's name is left.
            const auto list = server.cli({"CLIENT", "LIST"}).out;
            std::size_t named = 0;
            for (auto at = list.find("name=redis-sidecar "); at != std::string::npos;
                 at = list.find("name=redis-sidecar ", at + 1)) {
                ++named;
            }
            EXPECT_EQ(named, 1u) << list;
        } else {
            EXPECT_GE(p->stats().open, 5u);
            EXPECT_EQ(p->stats().idle_closes, 0u);
        }
        p->stop();
    }
}

// Cluster mode: REDIS_MAX_CONNECTIONS bounds all pools together, and a pool gets what another
// lets go.
TEST_F(pool_test, a_shared_budget_bounds_pools_together) {
    redis_server a;
    a.start();
    redis_server b;
    b.start();
    pool_options o;
    o.min_idle = 0;
    o.max_connections = 4;  // each pool alone could open 4
    o.budget = std::make_shared<connection_budget>();
    o.budget->max = 5;  // together 5
    auto pa = make_pool(plain(a.port()), o);
    auto pb = make_pool(plain(b.port()), o);
    std::vector<std::shared_ptr<lease>> la;
    std::vector<std::shared_ptr<lease>> lb;
    for (int i = 0; i < 4; ++i) la.push_back(acquire(*pa));
    ASSERT_TRUE(run_until([&] { return la.back()->done; }, 5s));
    for (int i = 0; i < 3; ++i) lb.push_back(acquire(*pb));
    run_for(300ms);
    EXPECT_EQ(o.budget->used, 5u);
    EXPECT_EQ(pa->stats().open + pb->stats().open, 5u);
    EXPECT_EQ(std::count_if(lb.begin(), lb.end(), [](auto& l) { return l->done; }), 1);
    // Pool a lets two go: b's waiters get connections.
    pa->release(la[0]->conn, false);
    pa->release(la[1]->conn, false);
    ASSERT_TRUE(run_until(
        [&] { return std::all_of(lb.begin(), lb.end(), [](auto& l) { return l->done; }); }, 5s));
    for (auto& l : lb) EXPECT_FALSE(l->ec) << l->ec.message();
    EXPECT_LE(o.budget->used, 5u);
    pa->stop();
    pb->stop();
}

TEST_F(pool_test, recovers_after_restart_without_a_connect_storm) {
    redis_server server;
    server.start();
    pool_options o;
    o.min_idle = 2;
    o.backoff_base = 50ms;
    o.backoff_max = 400ms;
    o.max_connects_per_second = 20;
    auto p = make_pool(plain(server.port()), o);
    ASSERT_TRUE(run_until([&] { return p->stats().idle == 2; }, 5s));

    server.kill(SIGKILL);
    const auto down_since = std::chrono::steady_clock::now();
    run_for(1500ms);
    const auto& st = p->stats();
    std::uint64_t failures = 0;
    for (auto f : st.failures) failures += f;
    EXPECT_EQ(st.idle, 0u);
    EXPECT_GE(failures, 2u);
    // Rate limit: at most 20/s (+ the initial burst of 20 tokens); backoff keeps it far lower.
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - down_since).count();
    EXPECT_LE(static_cast<double>(failures), 20 + 20 * seconds);
    EXPECT_EQ(st.last_error, "connection_refused");

    server.start();  // same port
    const auto connects_before = st.connects;
    ASSERT_TRUE(run_until([&] { return p->stats().idle == 2; }, 5s));
    EXPECT_EQ(p->stats().connects - connects_before, 2u);  // exactly what min_idle needs
    p->stop();
}

TEST_F(pool_test, waiter_gets_pool_timeout_when_the_pool_is_full) {
    redis_server server;
    server.start();
    pool_options o;
    o.min_idle = 0;
    o.max_connections = 1;
    o.acquire_timeout = 200ms;
    auto p = make_pool(plain(server.port()), o);
    auto first = acquire(*p);
    ASSERT_TRUE(run_until([&] { return first->done; }, 5s));
    ASSERT_FALSE(first->ec);
    auto second = acquire(*p);
    ASSERT_TRUE(run_until([&] { return second->done; }, 3s));
    EXPECT_EQ(second->ec, make_error_code(error::pool_timeout));
    EXPECT_EQ(p->stats().acquire_timeouts, 1u);
    // Given back, the connection serves the next waiter.
    auto third = acquire(*p);
    p->release(first->conn, true);
    ASSERT_TRUE(run_until([&] { return third->done; }, 2s));
    EXPECT_FALSE(third->ec);
    p->stop();
}

TEST_F(pool_test, waiters_fail_fast_when_the_upstream_is_down) {
    pool_options o;
    o.min_idle = 0;
    o.acquire_timeout = 10s;
    auto p = make_pool(plain(testing::closed_port()), o);
    auto l = acquire(*p);
    ASSERT_TRUE(run_until([&] { return l->done; }, 3s)) << "waited for the acquire timeout";
    EXPECT_EQ(l->ec, make_error_code(error::connection_refused));
    p->stop();
}

TEST_F(pool_test, unusable_connection_is_discarded_on_release) {
    redis_server server;
    server.start();
    pool_options o;
    o.min_idle = 1;
    auto p = make_pool(plain(server.port()), o);
    auto l = acquire(*p);
    ASSERT_TRUE(run_until([&] { return l->done; }, 5s));
    ASSERT_FALSE(l->ec);
    p->release(l->conn, false);
    EXPECT_EQ(p->stats().discards, 1u);
    EXPECT_TRUE(l->conn->broken());
    p->stop();
}

TEST_F(pool_test, learns_a_replica_role) {
    redis_server primary;
    primary.start();
    redis_server_options ro;
    ro.extra_config_lines = {"replicaof 127.0.0.1 " + std::to_string(primary.port())};
    redis_server replica(ro);
    replica.start();
    pool_options o;
    o.min_idle = 1;
    auto p = make_pool(plain(replica.port()), o);
    ASSERT_TRUE(run_until([&] { return p->stats().idle == 1; }, 5s));
    EXPECT_EQ(p->stats().role, "replica");
    p->stop();
}

TEST_F(pool_test, health_check_notices_a_demotion) {
    redis_server other;
    other.start();
    redis_server server;
    server.start();
    pool_options o;
    o.min_idle = 1;
    o.health_interval = 100ms;
    auto p = make_pool(plain(server.port()), o);
    ASSERT_TRUE(run_until([&] { return p->stats().role == "master"; }, 5s));
    server.cli({"REPLICAOF", "127.0.0.1", std::to_string(other.port())});
    ASSERT_TRUE(
        run_until([&] { return p->stats().role == "slave" || p->stats().role == "replica"; }, 5s))
        << p->stats().role;
    EXPECT_GE(p->stats().health_checks, 1u);
    p->stop();
}

TEST_F(pool_test, hosts_file_moves_the_name_and_the_change_is_counted) {
    redis_server a;
    a.start();
    testing::temp_dir dir;
    const auto hosts = dir.write_file("hosts", "127.0.0.1 cache.test\n");
    config::upstream_settings s = plain(a.port());
    s.host = "cache.test";
    pool_options o;
    o.min_idle = 1;
    auto p = make_pool(s, o, hosts_file_resolver(hosts, system_resolver(io_.get_executor())));
    ASSERT_TRUE(run_until([&] { return p->stats().idle == 1; }, 5s));
    EXPECT_EQ(p->stats().dns_changes, 0u);
    // Move the name to another loopback address (nothing listens there on a's port), and kill
    // the pooled connection: the refill must look the name up again and go to the new address.
    dir.write_file("hosts", "127.0.0.2 cache.test\n");
    a.cli({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
    ASSERT_TRUE(run_until([&] { return p->stats().dns_changes == 1; }, 5s));
    ASSERT_TRUE(run_until(
        [&] { return p->stats().failures[static_cast<int>(error::connection_refused)] >= 1; }, 5s));
    p->stop();
}

}  // namespace
}  // namespace redis_sidecar::upstream

namespace redis_sidecar::upstream {
namespace {

// ElastiCache's ROTATE then SET, with a real ACL user: the Secret changes first, then the cache.
TEST_F(pool_test, password_rotation_falls_back_then_reauthenticates) {
    const std::string old_pw = "rotation-old-password-0123";
    const std::string new_pw = "rotation-new-password-4567";
    redis_server_options so;
    so.acl_users = {"user app on >" + old_pw + " ~* &* +@all"};
    redis_server server(so);
    server.start();
    auto s = plain(server.port());
    s.username = "app";
    s.password = config::secret(old_pw);
    pool_options o;
    o.min_idle = 2;
    o.health_interval = 100ms;
    auto p = make_pool(s, o);
    ASSERT_TRUE(run_until([&] { return p->stats().idle == 2; }, 5s));

    // The Secret is updated before the cache: new connections fall back to the old password.
    p->update_credentials("app", config::secret(new_pw));
    EXPECT_EQ(p->stats().credential_rotations, 1u);
    auto l = acquire(*p);
    auto l2 = acquire(*p);
    ASSERT_TRUE(run_until([&] { return l->done && l2->done && p->stats().idle == 2; }, 5s));
    ASSERT_FALSE(l->ec);
    ASSERT_FALSE(l2->ec);
    ASSERT_TRUE(run_until([&] { return p->stats().auth_fallbacks >= 1; }, 5s));
    EXPECT_EQ(p->stats().reauths, 0u);  // the cache refuses the new password still

    // ROTATE: both valid. Idle connections re-authenticate in place at the next health round.
    server.cli({"ACL", "SETUSER", "app", ">" + new_pw});
    ASSERT_TRUE(run_until([&] { return p->stats().reauths >= 1; }, 5s));
    // SET: only the new one. Leased connections were never dropped, and still work.
    server.cli({"ACL", "SETUSER", "app", "<" + old_pw});
    p->release(l->conn, true);
    p->release(l2->conn, true);
    const auto fallbacks = p->stats().auth_fallbacks;
    const auto connects = p->stats().connects;
    server.cli({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
    ASSERT_TRUE(
        run_until([&] { return p->stats().connects >= connects + 2 && p->stats().idle == 2; }, 5s));
    EXPECT_EQ(p->stats().auth_fallbacks, fallbacks);  // the new password works on its own now
    EXPECT_EQ(p->stats().failures[static_cast<int>(error::wrongpass)], 0u);
    p->stop();
}

TEST_F(pool_test, readonly_drops_idle_connections) {
    redis_server server;
    server.start();
    pool_options o;
    o.min_idle = 3;
    auto p = make_pool(plain(server.port()), o);
    ASSERT_TRUE(run_until([&] { return p->stats().idle == 3; }, 5s));
    p->note_readonly();
    EXPECT_EQ(p->stats().failover_discards, 3u);
    ASSERT_TRUE(run_until([&] { return p->stats().idle == 3; }, 5s));
    EXPECT_EQ(p->stats().connects, 6u);
    p->stop();
}

}  // namespace
}  // namespace redis_sidecar::upstream

namespace redis_sidecar::upstream {
namespace {

// ElastiCache failover: the replica is promoted, the old primary demoted, and the endpoint's
// name moves. The pool notices the demotion at its next health round, drops its idle
// connections, resolves the name again and ends up on the new primary.
TEST_F(pool_test, follows_a_failover_to_the_new_primary) {
    redis_server_options ao;
    redis_server a(ao);
    a.start();
    redis_server_options bo;
    bo.bind_address = "127.0.0.2";
    bo.port = a.port();
    bo.extra_config_lines = {"replicaof 127.0.0.1 " + std::to_string(a.port())};
    redis_server b(bo);
    b.start();

    testing::temp_dir dir;
    const auto hosts = dir.write_file("hosts", "127.0.0.1 primary.cache.test\n");
    auto s = plain(a.port());
    s.host = "primary.cache.test";
    pool_options o;
    o.min_idle = 2;
    o.health_interval = 100ms;
    auto p = make_pool(s, o, hosts_file_resolver(hosts, system_resolver(io_.get_executor())));
    ASSERT_TRUE(run_until([&] { return p->stats().idle == 2 && p->stats().role == "master"; }, 5s));

    // Promote b, demote a, move the name.
    EXPECT_EQ(trim(b.cli({"REPLICAOF", "NO", "ONE"}).out), "OK");
    EXPECT_EQ(trim(a.cli({"REPLICAOF", "127.0.0.2", std::to_string(a.port())}).out), "OK");
    dir.write_file("hosts", "127.0.0.2 primary.cache.test\n");

    ASSERT_TRUE(run_until([&] { return p->stats().demotions == 1; }, 5s));
    ASSERT_TRUE(run_until(
        [&] {
            return p->stats().dns_changes == 1 && p->stats().role == "master" &&
                   p->stats().idle == 2;
        },
        5s))
        << "role " << p->stats().role << " idle " << p->stats().idle;

    auto l = acquire(*p);
    ASSERT_TRUE(run_until([&] { return l->done; }, 5s));
    ASSERT_FALSE(l->ec);
    EXPECT_EQ(l->conn->peer().address().to_string(), "127.0.0.2");
    p->release(l->conn, true);
    p->stop();
}

}  // namespace
}  // namespace redis_sidecar::upstream
