// Multiplexing (issue 16), through the real binary with REDIS_SIDECAR_MULTIPLEX=on in front of a
// real TLS redis-server: many clients on few upstream connections, clients pinned by commands
// that need a connection of their own, a blocking client beside shared ones, and a shared
// connection that breaks under a client. Figures are printed as "[figure]" lines.

#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>
#include <thread>

#include "../bridge/bridge_fixture.hpp"
#include "sidecar_process.hpp"
#include "support/eventually.hpp"
#include "support/pki.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace redis_sidecar::faults_test {
namespace {

using bridge_test::resp_client;

const std::string password = "multiplex-test-password-0123";

/// The value of one sample (`name{labels}` exactly) in /metrics text; -1 when absent.
double sample(const std::string& text, const std::string& series) {
    const auto at = text.find("\n" + series + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
}

/// Commands encoded one after the other: a pipeline sent in one write.
std::string encode_all(const std::vector<std::vector<std::string>>& commands) {
    std::string out;
    for (const auto& cmd : commands) out += bridge_test::encode_command(cmd);
    return out;
}

class multiplex : public ::testing::Test {
  protected:
    void SetUp() override {
        redis_server_options o;
        o.tls = true;
        o.requirepass = password;
        server_ = std::make_unique<redis_server>(o);
        server_->start();
    }

    void start_sidecar(const std::string& mode, env_map extra = {}) {
        env_map env = {{"REDIS_ADDR", server_->address()},
                       {"REDIS_PASSWORD", password},
                       {"REDIS_TLS_ENABLED", "true"},
                       {"REDIS_TLS_CA_FILE", test_pki::shared().ca_cert()},
                       {"REDIS_MIN_IDLE_CONNECTIONS", "1"},
                       {"REDIS_SIDECAR_MULTIPLEX", mode},
                       {"REDIS_SIDECAR_SHARED_CONNECTIONS", "2"}};
        for (const auto& [k, v] : extra) env[k] = v;
        sc_.start(env);
    }

    /// connected_clients on the server, minus the redis-cli asking.
    long upstream_connections() {
        const auto r = server_->cli({"INFO", "clients"});
        std::istringstream in(r.out);
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("connected_clients:", 0) == 0) return std::stol(line.substr(18)) - 1;
        }
        return -1;
    }

    std::unique_ptr<redis_server> server_;
    sidecar_process sc_;
};

// 300 clients (more than REDIS_MAX_CONNECTIONS' default 128) all complete, on the shared
// connections plus the idle minimum; with multiplexing off the same run needs one upstream
// connection per client.
TEST_F(multiplex, many_clients_share_few_upstream_connections) {
    start_sidecar("on");
    const auto r = run_process({"redis-benchmark", "-p", std::to_string(sc_.port()), "-c", "300",
                                "-n", "30000", "-t", "set,get", "-q"},
                               base_env(), 120s);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.out.find("ERR"), std::string::npos) << r.out;
    const long conns = upstream_connections();
    figure("upstream connections after 300 clients (multiplex on)", static_cast<double>(conns), "");
    EXPECT_LE(conns, 4) << "2 shared + the idle minimum";
    EXPECT_GE(sc_.metric("redis_sidecar_commands_shared_total"), 60000);
    EXPECT_EQ(sc_.metric("redis_sidecar_shared_connections"), 2);
    // The batch-size histogram: 300 clients each waiting for one reply write many commands
    // per turn of the loop, so some writes carry more than one command.
    const double batches = sc_.metric("redis_sidecar_shared_batch_commands_count");
    ASSERT_GT(batches, 0);
    const double commands = sc_.metric("redis_sidecar_shared_batch_commands_sum");
    EXPECT_GE(commands, 60000) << "every shared command is in one write";
    figure("commands per shared write", commands / batches, "");
    const std::string text = sc_.metrics();
    const double writes_of_one =
        sample(text, "redis_sidecar_shared_batch_commands_bucket{le=\"1\"}");
    EXPECT_GE(writes_of_one, 0) << text;
    EXPECT_LT(writes_of_one, batches) << "no write carried more than one command";
    EXPECT_EQ(sample(text, "redis_sidecar_shared_batch_commands_bucket{le=\"+Inf\"}"), batches)
        << "cumulative buckets";
}

// A client's shared commands, then a transaction and SELECT (pinned: transaction), keep their
// order and their state, pipelined in one write.
TEST_F(multiplex, pinned_client_keeps_order_and_state) {
    start_sidecar("on");
    auto c = resp_client::tcp(sc_.port());
    c.send_raw(encode_all({{"SET", "k", "1"},
                           {"INCR", "k"},
                           {"MULTI"},
                           {"INCR", "k"},
                           {"EXEC"},
                           {"SELECT", "1"},
                           {"GET", "k"},
                           {"SELECT", "0"},
                           {"GET", "k"}}));
    std::vector<std::string> got;
    for (int i = 0; i < 9; ++i) got.push_back(c.read().text());
    EXPECT_EQ(got, (std::vector<std::string>{"OK", "2", "OK", "QUEUED", "[3]", "OK", "(nil)", "OK",
                                             "\"3\""}));
    EXPECT_EQ(sc_.metric("redis_sidecar_client_pins_total{reason=\"transaction\"}"), 1)
        << sc_.nonzero_samples("redis_sidecar_client_pins_total");
    // Another client is still shared, and sees db 0.
    auto d = resp_client::tcp(sc_.port());
    EXPECT_EQ(d.call({"GET", "k"}).text(), "\"3\"");
}

// A client that reads a large value moves to a connection of its own once that reply has
// arrived: each of its values would otherwise hold every command queued behind it on the
// shared connection. A client reading values below lane::large_reply_bytes stays shared.
TEST_F(multiplex, a_client_reading_a_large_value_moves_to_its_own_connection) {
    start_sidecar("on");
    constexpr std::size_t big = std::size_t{1} << 20;
    constexpr std::size_t small = 64 * 1024;
    ASSERT_TRUE(server_->cli({"SETRANGE", "big", std::to_string(big - 1), "x"}).ok());
    ASSERT_TRUE(server_->cli({"SETRANGE", "small", std::to_string(small - 1), "x"}).ok());
    const auto shared = [&] { return sc_.metric("redis_sidecar_commands_shared_total"); };
    const std::string large_reply = "redis_sidecar_client_pins_total{reason=\"large_reply\"}";

    auto s = resp_client::tcp(sc_.port());
    for (int i = 0; i < 3; ++i) ASSERT_EQ(s.call({"GET", "small"}).str.size(), small);
    EXPECT_EQ(sc_.metric(large_reply), 0) << "64 KiB values are not large";

    auto b = resp_client::tcp(sc_.port());
    const double before = shared();
    ASSERT_EQ(b.call({"GET", "big"}, 10s).str.size(), big);
    EXPECT_EQ(shared(), before + 1) << "the first GET went shared";
    EXPECT_EQ(sc_.metric(large_reply), 1) << sc_.nonzero_samples("redis_sidecar_client_pins_total");
    // From now on b's commands go to its own connection, in order, the large value too.
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(b.call({"ECHO", std::to_string(i)}).text(), "\"" + std::to_string(i) + "\"");
    }
    ASSERT_EQ(b.call({"GET", "big"}, 10s).str.size(), big);
    EXPECT_EQ(shared(), before + 1) << "b's later commands did not go shared";
    // s is still shared.
    ASSERT_EQ(s.call({"GET", "small"}).str.size(), small);
    EXPECT_EQ(shared(), before + 2);
    EXPECT_EQ(sc_.metric(large_reply), 1);
}

// A client in BLPOP holds its own connection; the shared clients go on meanwhile.
TEST_F(multiplex, blocking_client_does_not_hold_shared_ones) {
    start_sidecar("on");
    auto blocked = resp_client::tcp(sc_.port());
    blocked.send({"BLPOP", "queue", "0"});
    auto other = resp_client::tcp(sc_.port());
    for (int i = 0; i < 100; ++i) ASSERT_EQ(other.call({"PING"}, 2s).text(), "PONG");
    EXPECT_EQ(other.call({"RPUSH", "queue", "x"}).text(), "1");
    EXPECT_EQ(blocked.read().text(), "[\"queue\", \"x\"]");
    EXPECT_EQ(sc_.metric("redis_sidecar_client_pins_total{reason=\"blocking\"}"), 1);
}

// The upstream dies with a command in flight on a shared connection: the client gets
// "upstream connection lost" for it, stays connected, and its next command is served once
// the upstream is back.
TEST_F(multiplex, broken_shared_connection_answers_in_flight_commands_and_keeps_clients) {
    start_sidecar("on", {{"REDIS_CONNECTION_TIMEOUT", "1s"}});
    auto c = resp_client::tcp(sc_.port());
    ASSERT_EQ(c.call({"SET", "k", "v"}).text(), "OK");
    server_->kill(SIGSTOP);
    c.send({"GET", "k"});
    ASSERT_TRUE(c.silent_for(200ms));  // in flight on the shared connection
    server_->kill(SIGKILL);
    const auto lost = c.read(10s);
    EXPECT_EQ(lost.text(), "ERR redis-sidecar: upstream connection lost");
    server_->start();
    const auto t0 = clock::now();
    std::string last;
    const bool served = eventually(
        [&] {
            last = c.call({"PING"}, 5s).text();
            return last == "PONG";
        },
        30s);
    EXPECT_TRUE(served) << last;
    figure("served again after the upstream restarted", seconds_since(t0) * 1000, "ms");
    EXPECT_GE(sc_.metric("redis_sidecar_shared_connection_breaks_total"), 1);
    EXPECT_GE(sc_.metric("redis_sidecar_shared_commands_lost_total"), 1);
}

// Multiplexing off (the default) keeps today's behaviour: one upstream connection per client.
TEST_F(multiplex, off_leases_one_connection_per_client) {
    start_sidecar("off");
    std::vector<resp_client> clients;
    for (int i = 0; i < 10; ++i) {
        clients.push_back(resp_client::tcp(sc_.port()));
        ASSERT_EQ(clients.back().call({"PING"}).text(), "PONG");
    }
    EXPECT_GE(upstream_connections(), 10);
    EXPECT_EQ(sc_.metric("redis_sidecar_commands_shared_total"), 0);
}

/// Sends one command and returns its reply's bytes as they came.
std::string call_raw(resp_client& c, const std::vector<std::string>& args) {
    c.send(args);
    return c.read_raw();
}

// RESP3 clients (HELLO 3) share RESP3 connections and RESP2 clients RESP2 ones, with commands
// of both in flight at once: each client gets its own protocol's reply shapes, nobody pins,
// and 6 RESP3 clients use at most the 2 shared connections of their protocol.
TEST_F(multiplex, resp3_clients_share_resp3_connections) {
    start_sidecar("on");
    ASSERT_EQ(trim(server_->cli({"HSET", "h", "f", "v"}).out), "1");
    std::vector<resp_client> resp3;
    std::vector<resp_client> resp2;
    for (int i = 0; i < 6; ++i) resp3.push_back(resp_client::tcp(sc_.port()));
    for (int i = 0; i < 2; ++i) resp2.push_back(resp_client::tcp(sc_.port()));
    for (auto& c : resp3) c.send({"HELLO", "3"});
    for (auto& c : resp2) c.send({"PING"});
    for (auto& c : resp3) {
        const auto hello = c.read_raw();
        EXPECT_EQ(hello.substr(0, 1), "%") << hello;
        EXPECT_NE(hello.find("$5\r\nproto\r\n:3\r\n"), std::string::npos) << hello;
    }
    for (auto& c : resp2) EXPECT_EQ(c.read_raw(), "+PONG\r\n");
    for (int round = 0; round < 3; ++round) {
        for (auto& c : resp3)
            c.send_raw(bridge_test::encode_command({"HGETALL", "h"}) +
                       bridge_test::encode_command({"GET", "missing"}));
        for (auto& c : resp2)
            c.send_raw(bridge_test::encode_command({"HGETALL", "h"}) +
                       bridge_test::encode_command({"GET", "missing"}));
        for (auto& c : resp3) {
            EXPECT_EQ(c.read_raw(), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
            EXPECT_EQ(c.read_raw(), "_\r\n");
        }
        for (auto& c : resp2) {
            EXPECT_EQ(c.read_raw(), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
            EXPECT_EQ(c.read_raw(), "$-1\r\n");
        }
    }
    EXPECT_EQ(sc_.metric("redis_sidecar_client_pins_total"), 0)
        << sc_.nonzero_samples("redis_sidecar_client_pins_total");
    EXPECT_GE(sc_.metric("redis_sidecar_commands_shared_total"), 6 * 7 + 2 * 7);
    const auto list = server_->cli({"CLIENT", "LIST"}).out;
    std::istringstream in(list);
    int resp3_connections = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.find(" resp=3") != std::string::npos) ++resp3_connections;
    }
    EXPECT_GE(resp3_connections, 1) << list;
    EXPECT_LE(resp3_connections, 2) << list;
    const double shared3 =
        sample(sc_.metrics(), "redis_sidecar_shared_connections{protocol=\"3\"}");
    EXPECT_EQ(shared3, resp3_connections)
        << "the gauge counts the RESP3 connections the server sees";
}

// One client pipelines across two protocol switches in one write: the HELLO 3 waits for the
// RESP2 lane's reply, the HELLO 2 for the RESP3 lane's, and every reply keeps its place.
TEST_F(multiplex, a_pipelined_protocol_switch_keeps_reply_order) {
    start_sidecar("on");
    ASSERT_EQ(trim(server_->cli({"HSET", "h", "f", "v"}).out), "1");
    auto c = resp_client::tcp(sc_.port());
    c.send_raw(encode_all({{"SET", "k", "1"},
                           {"HELLO", "3"},
                           {"HGETALL", "h"},
                           {"GET", "missing"},
                           {"HELLO", "2"},
                           {"HGETALL", "h"},
                           {"GET", "missing"}}));
    EXPECT_EQ(c.read_raw(), "+OK\r\n");
    EXPECT_EQ(c.read_raw().substr(0, 1), "%");
    EXPECT_EQ(c.read_raw(), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    EXPECT_EQ(c.read_raw(), "_\r\n");
    EXPECT_EQ(c.read_raw().substr(0, 1), "*");  // HELLO 2's reply, a flat array
    EXPECT_EQ(c.read_raw(), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    EXPECT_EQ(c.read_raw(), "$-1\r\n");
    EXPECT_EQ(sc_.metric("redis_sidecar_client_pins_total"), 0)
        << sc_.nonzero_samples("redis_sidecar_client_pins_total");
}

// A client that switched to RESP3 on a shared connection and then starts a transaction moves
// to a connection of its own that speaks RESP3 too (the sidecar sends HELLO 3 there first and
// the client never sees its reply).
TEST_F(multiplex, a_resp3_client_that_pins_keeps_resp3) {
    start_sidecar("on");
    ASSERT_EQ(trim(server_->cli({"HSET", "h", "f", "v"}).out), "1");
    auto c = resp_client::tcp(sc_.port());
    EXPECT_EQ(c.call({"HELLO", "3"}).type, '%');
    c.send_raw(
        encode_all({{"MULTI"}, {"HGETALL", "h"}, {"EXEC"}, {"GET", "missing"}, {"HGETALL", "h"}}));
    EXPECT_EQ(c.read_raw(), "+OK\r\n");
    EXPECT_EQ(c.read_raw(), "+QUEUED\r\n");
    EXPECT_EQ(c.read_raw(), "*1\r\n%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    EXPECT_EQ(c.read_raw(), "_\r\n");
    EXPECT_EQ(c.read_raw(), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    EXPECT_TRUE(c.silent_for(200ms)) << "nothing more: the sidecar's HELLO reply stays hidden";
    EXPECT_EQ(sc_.metric("redis_sidecar_client_pins_total"), 1);
}

// With room for one shared connection only (REDIS_MAX_CONNECTIONS=2: one stays for pinned
// clients), a RESP2 client's lane takes it; a RESP3 client then gets a connection of its own
// (pinned at its HELLO 3, reason connection_state) and still speaks RESP3.
TEST_F(multiplex, a_resp3_client_pins_when_no_shared_connection_is_left_for_it) {
    start_sidecar("on", {{"REDIS_MAX_CONNECTIONS", "2"}});
    ASSERT_EQ(trim(server_->cli({"HSET", "h", "f", "v"}).out), "1");
    auto two = resp_client::tcp(sc_.port());
    EXPECT_EQ(call_raw(two, {"PING"}), "+PONG\r\n");
    auto three = resp_client::tcp(sc_.port());
    EXPECT_EQ(three.call({"HELLO", "3"}).type, '%');
    EXPECT_EQ(call_raw(three, {"HGETALL", "h"}), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    EXPECT_EQ(call_raw(two, {"HGETALL", "h"}), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    const std::string text = sc_.metrics();
    EXPECT_NE(text.find("redis_sidecar_client_pins_total{reason=\"connection_state\"} 1"),
              std::string::npos)
        << sc_.nonzero_samples("redis_sidecar_client_pins_total");
    EXPECT_EQ(sample(text, "redis_sidecar_shared_connections{protocol=\"2\"}"), 1);
    EXPECT_EQ(sample(text, "redis_sidecar_shared_connections{protocol=\"3\"}"), 0);
}

// Two clients' replies interleaved in one upstream read (X, Y, X) all arrive: a client whose
// last reply is in a read is not forgotten at its first piece of it. A plain-TCP upstream
// (TLS would hand over one record per read) is stopped while X, Y and X again send one command
// each, so the server reads all three at once and writes their replies in one write.
TEST_F(multiplex, replies_interleaved_in_one_read_reach_each_client) {
    redis_server_options o;
    o.requirepass = password;
    redis_server plain(o);
    plain.start();
    sc_.start({{"REDIS_ADDR", plain.address()},
               {"REDIS_PASSWORD", password},
               {"REDIS_MIN_IDLE_CONNECTIONS", "1"},
               {"REDIS_SIDECAR_MULTIPLEX", "on"},
               {"REDIS_SIDECAR_SHARED_CONNECTIONS", "1"}});
    auto x = resp_client::tcp(sc_.port());
    auto y = resp_client::tcp(sc_.port());
    ASSERT_EQ(call_raw(x, {"PING"}), "+PONG\r\n");  // the shared connection is open
    ASSERT_EQ(call_raw(y, {"PING"}), "+PONG\r\n");
    for (int round = 0; round < 3; ++round) {
        plain.kill(SIGSTOP);
        x.send({"ECHO", "x1"});
        std::this_thread::sleep_for(50ms);  // each in its own write to the shared connection
        y.send({"ECHO", "y1"});
        std::this_thread::sleep_for(50ms);
        x.send({"ECHO", "x2"});
        std::this_thread::sleep_for(50ms);
        plain.kill(SIGCONT);
        EXPECT_EQ(x.read_raw(), "$2\r\nx1\r\n");
        EXPECT_EQ(y.read_raw(), "$2\r\ny1\r\n");
        EXPECT_EQ(x.read_raw(), "$2\r\nx2\r\n") << "round " << round;
    }
    EXPECT_EQ(sc_.metric("redis_sidecar_client_pins_total"), 0);
}

// A client whose HELLO 3 is lost with its shared connection (here: the new RESP3 connection
// cannot be had) does not know which protocol it speaks: it is closed, as a client of a
// dedicated connection would be, instead of being told an error and left on RESP3.
TEST_F(multiplex, a_protocol_switch_lost_with_its_shared_connection_closes_the_client) {
    start_sidecar("on", {{"REDIS_CONNECTION_TIMEOUT", "1s"}});
    auto c = resp_client::tcp(sc_.port());
    auto other = resp_client::tcp(sc_.port());
    ASSERT_EQ(call_raw(c, {"PING"}), "+PONG\r\n");
    ASSERT_EQ(call_raw(other, {"PING"}), "+PONG\r\n");
    server_->kill(SIGKILL);
    c.send({"HELLO", "3"});
    std::string rest;
    EXPECT_TRUE(c.wait_closed(15s, &rest)) << "still open; got: " << rest;
    EXPECT_EQ(rest, "");
    // A RESP2 client without a switch in flight stays connected and is told.
    other.send({"GET", "k"});
    const auto r = other.read(15s);
    EXPECT_TRUE(r.is_error()) << r.text();
    EXPECT_FALSE(other.wait_closed(200ms));
}

}  // namespace
}  // namespace redis_sidecar::faults_test
