// Behaviour under faults (README "Behaviour under faults"): every figure these tests measure is
// printed as a "[figure]" line, so a CI log shows recovery times, failed commands and memory.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <fstream>
#include <regex>
#include <thread>

#include "../bridge/bridge_fixture.hpp"
#include "sidecar_process.hpp"
#include "support/eventually.hpp"
#include "support/net.hpp"
#include "support/pki.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

namespace redis_sidecar::faults_test {
namespace {

using bridge_test::resp_client;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

const std::string password = "faults-test-password-0123";

env_map upstream_env(const redis_server& s) {
    return {{"REDIS_ADDR", s.address()},
            {"REDIS_PASSWORD", password},
            {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "200ms"},
            {"REDIS_SOCKET_TIMEOUT", "500ms"},
            {"REDIS_CONNECTION_TIMEOUT", "1s"}};
}

TEST(faults, upstream_killed_and_restarted) {
    redis_server_options o;
    o.requirepass = password;
    redis_server server(o);
    server.start();
    sidecar_process sc;
    sc.start(upstream_env(server));
    ASSERT_EQ(trim(sc.cli({"SET", "k", "v"}).out), "OK");

    server.kill(SIGKILL);
    const auto down = clock::now();
    // Clients get an error at once, never a hang.
    const auto t = clock::now();
    const auto r = sc.cli({"GET", "k"}, 10s);
    EXPECT_FALSE(r.timed_out);
    EXPECT_NE(r.output().find("upstream unavailable"), std::string::npos) << r;
    figure("error reply while the upstream is down", seconds_since(t) * 1000, "ms");
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 503; }, 5s));
    figure("readyz 503 after SIGKILL", seconds_since(down) * 1000, "ms");
    EXPECT_EQ(sc.livez(), 200);  // a broken cache must not restart the pod

    const auto connects_before = sc.metric("redis_sidecar_upstream_connect_failures_total");
    std::this_thread::sleep_for(2s);  // an outage of known length, to count reconnect attempts
    const auto attempts =
        sc.metric("redis_sidecar_upstream_connect_failures_total") - connects_before;
    figure("connect attempts during a 2 s outage", attempts, "");
    EXPECT_LE(attempts, 2 * 50 + 50);  // never more than the rate limit (50/s + burst)
    EXPECT_LE(attempts, 40);           // and the backoff keeps it far below

    server.start();  // same port
    const auto back = clock::now();
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 200; }, 15s));
    figure("readyz 200 after the upstream returned", seconds_since(back) * 1000, "ms");
    EXPECT_EQ(trim(sc.cli({"SET", "k2", "v2"}).out), "OK");
    EXPECT_EQ(sc.terminate(), 0);
}

TEST(faults, upstream_paused_then_resumed) {
    redis_server_options o;
    o.requirepass = password;
    redis_server server(o);
    server.start();
    sidecar_process sc;
    sc.start(upstream_env(server));

    server.kill(SIGSTOP);  // no RST, no FIN: only timeouts can tell
    const auto paused = clock::now();
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 503; }, 10s));
    figure("readyz 503 after SIGSTOP", seconds_since(paused) * 1000, "ms");
    EXPECT_EQ(sc.livez(), 200);
    server.kill(SIGCONT);
    const auto resumed = clock::now();
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 200; }, 15s));
    figure("readyz 200 after SIGCONT", seconds_since(resumed) * 1000, "ms");
    EXPECT_EQ(trim(sc.cli({"PING"}).out), "PONG");
    EXPECT_EQ(sc.terminate(), 0);
}

// ElastiCache's ROTATE then SET, through a real ACL change, with redis-benchmark running.
TEST(faults, password_rotation_under_load_loses_nothing) {
    const std::string old_pw = "rotation-old-password-0123";
    const std::string new_pw = "rotation-new-password-4567";
    redis_server_options o;
    o.acl_users = {"user app on >" + old_pw + " ~* &* +@all"};
    redis_server server(o);
    server.start();
    temp_dir secrets;
    secrets.write_file("password", old_pw + "\n");
    sidecar_process sc;
    sc.start({{"REDIS_ADDR", server.address()},
              {"REDIS_USERNAME", "app"},
              {"REDIS_SIDECAR_SECRETS_DIR", secrets.path()},
              {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "200ms"}});

    // -k 0: a new local connection per request, so leases come and go during the rotation.
    child_process bench("redis-benchmark");
    bench.start({"/usr/bin/redis-benchmark", "-p", std::to_string(sc.port()), "-n", "30000", "-c",
                 "8", "-k", "0", "-t", "set", "-e", "--csv"},
                base_env());
    ASSERT_TRUE(eventually([&] { return server.cli({"DBSIZE"}).out != "0\n"; }, 10s));

    server.cli({"ACL", "SETUSER", "app", ">" + new_pw});  // ROTATE: both valid
    secrets.write_file("password.new", new_pw + "\n");    // the kubelet's swap
    ASSERT_EQ(::rename(secrets.file("password.new").c_str(), secrets.file("password").c_str()), 0);
    ASSERT_TRUE(sc.process().wait_for_output("secrets changed", 10s));
    ASSERT_TRUE(eventually([&] { return sc.metric("redis_sidecar_pool_reauths_total") >= 1; }, 5s));
    server.cli({"ACL", "SETUSER", "app", "<" + old_pw});  // SET: only the new one

    const auto status = bench.wait_exit(120s);
    ASSERT_EQ(status, 0) << bench.err();
    const auto out = bench.out();
    EXPECT_EQ(out.find("rror"), std::string::npos) << out;  // -e prints every error reply
    EXPECT_NE(out.find("\"SET\""), std::string::npos) << out;
    figure("failed commands during rotation", out.find("rror") == std::string::npos ? 0 : 1, "");
    EXPECT_EQ(trim(sc.cli({"SET", "after", "rotation"}).out), "OK");
    std::string metrics_text = sc.metrics();
    EXPECT_NE(
        metrics_text.find("redis_sidecar_upstream_connect_failures_total{class=\"wrongpass\"} 0"),
        std::string::npos);
    EXPECT_EQ(sc.metric("redis_sidecar_credential_rotations_total"), 1);
    EXPECT_EQ(sc.terminate(), 0);
    EXPECT_EQ(sc.process().out().find(new_pw), std::string::npos);
    EXPECT_EQ(sc.process().err().find(new_pw), std::string::npos);
}

// A failover: b is promoted, a demoted, the name moves from a's address to b's.
TEST(faults, failover_follows_the_name_and_writes_resume) {
    redis_server a;
    a.start();
    redis_server_options bo;
    bo.bind_address = "127.0.0.2";
    bo.port = a.port();
    bo.extra_config_lines = {"replicaof 127.0.0.1 " + std::to_string(a.port())};
    redis_server b(bo);
    b.start();
    temp_dir dir;
    const auto hosts = dir.write_file("hosts", "127.0.0.1 primary.cache.test\n");
    sidecar_process sc;
    sc.start({{"REDIS_ADDR", "primary.cache.test:" + std::to_string(a.port())},
              {"REDIS_SIDECAR_HOSTS_FILE", hosts},
              {"REDIS_SIDECAR_READINESS", "primary"},
              {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "200ms"}});

    std::vector<std::string> acked;
    const auto write = [&](int i) {
        const auto key = "k" + std::to_string(i);
        auto r = sc.cli({"SET", key, "v"}, 5s);
        if (trim(r.out) == "OK") acked.push_back(key);
        return trim(r.out) == "OK";
    };
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(write(i));
    // b has every acknowledged write (once its initial sync is done).
    ASSERT_TRUE(eventually([&] { return trim(a.cli({"WAIT", "1", "200"}).out) == "1"; }, 10s));

    EXPECT_EQ(trim(b.cli({"REPLICAOF", "NO", "ONE"}).out), "OK");
    EXPECT_EQ(trim(a.cli({"REPLICAOF", "127.0.0.2", std::to_string(a.port())}).out), "OK");
    dir.write_file("hosts", "127.0.0.2 primary.cache.test\n");
    const auto failover = clock::now();

    int i = 50;
    bool resumed = false;
    while (seconds_since(failover) < 20 && i < 2000) {
        if (write(i++)) {
            resumed = true;
            break;
        }
    }
    ASSERT_TRUE(resumed) << "writes never resumed";
    figure("writes resumed after the failover", seconds_since(failover) * 1000, "ms");
    for (int j = 0; j < 20; ++j) EXPECT_TRUE(write(i++));
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 200; }, 5s));
    // Every acknowledged write is on the new primary; the old one acknowledged none after.
    for (const auto& key : acked) {
        EXPECT_EQ(trim(b.cli({"EXISTS", key}).out), "1") << key;
    }
    EXPECT_GE(sc.metric("redis_sidecar_dns_changes_total"), 1);
    EXPECT_EQ(sc.terminate(), 0);
}

TEST(faults, abusive_clients_do_not_hurt_others) {
    redis_server server;
    server.start();
    sidecar_process sc;
    sc.start({{"REDIS_ADDR", server.address()},
              {"REDIS_MAX_CONNECTIONS", "64"},
              {"REDIS_SIDECAR_MAX_CLIENTS", "15000"}});
    {
        auto setter = resp_client::tcp(sc.port());
        ASSERT_EQ(setter.call({"SET", "big", std::string(1 << 20, 'x')}).text(), "OK");
    }
    const auto pid = sc.process().pid();
    const long rss_start = rss_kb(pid);

    // A 600 MB bulk header: refused before any payload.
    auto huge = resp_client::tcp(sc.port());
    huge.send_raw("*2\r\n$3\r\nSET\r\n$600000000\r\n");
    std::string rest;
    EXPECT_TRUE(huge.wait_closed(5s, &rest));
    EXPECT_NE(rest.find("Protocol error"), std::string::npos) << rest;

    // A client that never reads: 200 GETs of 1 MiB. The sidecar stops reading its replies
    // (bounded buffers), so memory stays flat.
    auto deaf = resp_client::tcp(sc.port());
    std::string pipeline;
    for (int i = 0; i < 200; ++i) pipeline += "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n";
    deaf.send_raw(pipeline);
    std::this_thread::sleep_for(1s);  // give it the chance to misbehave
    const long rss_deaf = rss_kb(pid);
    figure("sidecar RSS growth with a client that never reads 200 MiB of replies",
           static_cast<double>(rss_deaf - rss_start), "KB");
    EXPECT_LT(rss_deaf - rss_start, sanitized ? 64 * 1024 : 16 * 1024);
    EXPECT_EQ(trim(sc.cli({"PING"}).out), "PONG");

    // A client that opens connections as fast as it can (bounded: 2,000).
    const auto t = clock::now();
    for (int i = 0; i < 2000; ++i) {
        auto fd = connect_tcp("127.0.0.1", sc.port(), 2s);
    }
    figure("2,000 connects by one client", seconds_since(t) * 1000, "ms");
    EXPECT_EQ(trim(sc.cli({"PING"}).out), "PONG");

    // 10,000 idle clients: connected, silent. They hold no upstream connection.
    const int idle_clients = sanitized ? 3000 : 10000;
    const long rss_before_idle = rss_kb(pid);
    std::vector<unique_fd> idle;
    idle.reserve(idle_clients);
    for (int i = 0; i < idle_clients; ++i) idle.push_back(connect_tcp("127.0.0.1", sc.port(), 2s));
    ASSERT_TRUE(
        eventually([&] { return sc.metric("redis_sidecar_clients") >= idle_clients; }, 20s));
    const long rss_idle = rss_kb(pid);
    const double per_client = static_cast<double>(rss_idle - rss_before_idle) * 1024 / idle_clients;
    figure("RSS per idle local client", per_client, "bytes");
    if (!sanitized) {
        EXPECT_LT(per_client, 16 * 1024);
    }
    EXPECT_EQ(trim(sc.cli({"PING"}).out), "PONG");
    EXPECT_LE(sc.metric("redis_sidecar_pool_connections_open"), 64);
    idle.clear();
    deaf.close();
    EXPECT_EQ(sc.terminate(), 0);
}

// The write deadline (REDIS_SOCKET_TIMEOUT): a client that stops reading, or an upstream that
// stops taking bytes, ends that client's session instead of holding it and its upstream
// connection forever; nobody else notices.
TEST(faults, writes_that_stall_end_at_the_socket_timeout) {
    redis_server_options o;
    o.requirepass = password;
    redis_server server(o);
    server.start();
    sidecar_process sc;
    auto env = upstream_env(server);  // REDIS_SOCKET_TIMEOUT=500ms
    // The deadline on a client's own connection. Multiplexed, the 32 MiB SET below would pin
    // and wait for a new connection to the stopped server (REDIS_CONNECTION_TIMEOUT) instead.
    // A shared connection's read deadline is tested by network_faults' mux: run; its write
    // deadline by no test yet.
    env["REDIS_SIDECAR_MULTIPLEX"] = "off";
    sc.start(env);
    {
        auto setter = resp_client::tcp(sc.port());
        ASSERT_EQ(setter.call({"SET", "big", std::string(1 << 20, 'x')}).text(), "OK");
    }
    const std::string client_timeouts = "redis_sidecar_write_timeouts_total{peer=\"client\"}";
    const std::string upstream_timeouts = "redis_sidecar_write_timeouts_total{peer=\"upstream\"}";
    EXPECT_EQ(sc.metric(client_timeouts), 0);

    // A client that stops reading: 64 replies of 1 MiB fill its socket buffers.
    auto deaf = connect_tcp("127.0.0.1", sc.port(), 2s);
    ASSERT_TRUE(deaf);
    int small = 4096;
    ::setsockopt(deaf.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    std::string pipeline;
    for (int i = 0; i < 64; ++i) pipeline += "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n";
    ASSERT_EQ(::send(deaf.get(), pipeline.data(), pipeline.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(pipeline.size()));
    auto stalled = clock::now();
    ASSERT_TRUE(eventually([&] { return sc.metric(client_timeouts) == 1; }, 10s)) << sc.metrics();
    figure("a client that stops reading is closed after", seconds_since(stalled) * 1000, "ms");
    EXPECT_GE(seconds_since(stalled), 0.5);
    // Reset, not closed gracefully: the kernel does not go on trickling megabytes of queued
    // replies into a client that stopped reading. Reading meets the reset at once (bounded).
    timeval tv{5, 0};
    ::setsockopt(deaf.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[65536];
    ssize_t n = 0;
    const auto draining = clock::now();
    while (seconds_since(draining) < 5 && (n = ::recv(deaf.get(), buf, sizeof buf, 0)) > 0) {
    }
    EXPECT_EQ(n, -1);
    EXPECT_EQ(errno, ECONNRESET) << "the sidecar did not reset the client";
    EXPECT_EQ(trim(sc.cli({"PING"}).out), "PONG");

    // An upstream that stops taking bytes: a client holding a lease (its PING answered), then
    // SIGSTOP, then a 32 MiB SET from that client.
    auto writer = connect_tcp("127.0.0.1", sc.port(), 2s);
    ASSERT_TRUE(writer);
    const std::string ping = "*1\r\n$4\r\nPING\r\n";
    ASSERT_EQ(::send(writer.get(), ping.data(), ping.size(), MSG_NOSIGNAL), 14);
    char pong[7] = {};
    ASSERT_EQ(::recv(writer.get(), pong, sizeof pong, MSG_WAITALL), 7);
    ASSERT_EQ(std::string(pong, 7), "+PONG\r\n");
    server.kill(SIGSTOP);
    const std::string value(32 << 20, 'y');
    stalled = clock::now();
    const std::string set = "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$" + std::to_string(value.size()) +
                            "\r\n" + value + "\r\n";
    // Sent without blocking, for at most 5 s: the sidecar must close the client long before.
    std::size_t sent = 0;
    int send_error = 0;
    while (sent < set.size() && seconds_since(stalled) < 5) {
        const auto n =
            ::send(writer.get(), set.data() + sent, set.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            std::this_thread::sleep_for(10ms);
        } else {
            send_error = errno;
            break;
        }
    }
    figure("an upstream that stops reading: its client is closed after",
           seconds_since(stalled) * 1000, "ms");
    EXPECT_NE(send_error, 0) << "the sidecar kept the client open; sent " << sent;
    ASSERT_TRUE(eventually([&] { return sc.metric(upstream_timeouts) == 1; }, 10s)) << sc.metrics();
    server.kill(SIGCONT);
    EXPECT_EQ(sc.metric(client_timeouts), 1);
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 200; }, 15s));
    EXPECT_EQ(trim(sc.cli({"PING"}).out), "PONG");
    EXPECT_EQ(sc.terminate(), 0);
}

TEST(faults, sigterm_under_load_delivers_every_owed_reply) {
    redis_server server;
    server.start();
    sidecar_process sc;
    sc.start({{"REDIS_ADDR", server.address()}});
    auto c = resp_client::tcp(sc.port());
    const int n = 20000;
    std::string pipeline;
    for (int i = 0; i < n; ++i) pipeline += "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n";
    c.send_raw(pipeline);
    sc.process().send_signal(SIGTERM);
    EXPECT_TRUE(eventually([&] { return sc.readyz() != 200; }, 2s));  // readiness fails at once
    for (int i = 1; i <= n; ++i) {
        const auto r = c.read(10s);
        ASSERT_EQ(r.integer, i) << r.text();
    }
    c.close();
    EXPECT_EQ(sc.process().wait_exit(15s), 0);
    EXPECT_EQ(trim(server.cli({"GET", "n"}).out), std::to_string(n));
}

}  // namespace
}  // namespace redis_sidecar::faults_test
