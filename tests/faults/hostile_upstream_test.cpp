// A hostile upstream (issue 18): the real binary in front of a scripted server
// (support/scripted_server.hpp) that answers the sidecar's OWN commands — HELLO, AUTH, PING,
// SELECT, CLIENT SETNAME in the handshake; PING and HELLO in the health rounds; INFO for
// /status; RESET when a client leaves — with malformed, truncated, wrongly typed or enormous
// replies, no reply, a trickle, or a close mid-reply. Each case: the process keeps running, a
// client gets an error (never a hang) in a stated bound, the failure is classified (/status
// last_error; by class in the connect-failure metric, or for INFO and RESET in the
// command-failure metric; a log line) and RSS stays bounded. Every figure is printed as a
// "[figure]" line.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "../bridge/bridge_fixture.hpp"
#include "sidecar_process.hpp"
#include "support/eventually.hpp"
#include "support/scripted_server.hpp"

namespace redis_sidecar::faults_test {
namespace {

using bridge_test::resp_client;
using bridge_test::resp_value;
using behaviour = testing::scripted_behaviour;
using testing::scripted_server;

/// Bounds: generous, for a loaded 2-core CI machine (and ASan). The sidecar's own bounds are
/// REDIS_CONNECTION_TIMEOUT=1s (open + handshake, and a client's wait for a connection) and
/// REDIS_SOCKET_TIMEOUT=500ms (its own commands).
constexpr auto error_bound = 5s;
constexpr double error_bound_ms = 5000;
#if defined(__SANITIZE_ADDRESS__)
// ASan keeps freed memory in its quarantine (256 MB by default) and adds its own shadow: the
// bound still tells "bounded" from the gigabytes an unbounded allocation reaches.
constexpr long rss_bound_kb = 700 * 1024;
#else
constexpr long rss_bound_kb = 200 * 1024;
#endif

env_map hostile_env(const scripted_server& server) {
    return {{"REDIS_ADDR", server.address()},
            {"REDIS_MIN_IDLE_CONNECTIONS", "2"},
            {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "200ms"},
            {"REDIS_SOCKET_TIMEOUT", "500ms"},
            {"REDIS_CONNECTION_TIMEOUT", "1s"}};
}

double failures_of(const sidecar_process& sc, const std::string& cls) {
    return sc.metric("redis_sidecar_upstream_connect_failures_total{class=\"" + cls + "\"}");
}

std::string failures_by_class(const sidecar_process& sc) {
    return sc.nonzero_samples("redis_sidecar_upstream_connect_failures_total");
}

/// One command on a fresh connection to the sidecar, with the time it took: the reply, or an
/// error text ("client: ...") when the connection failed, closed or timed out.
resp_value one_command(std::uint16_t port, const std::vector<std::string>& args,
                       double* ms = nullptr) {
    const auto t = clock::now();
    resp_value v;
    try {
        auto c = resp_client::tcp(port, 2s);
        v = c.call(args, 10s);
    } catch (const std::exception& e) {
        v.type = '-';
        v.str = std::string("client: ") + e.what();
    }
    if (ms != nullptr) *ms = seconds_since(t) * 1000;
    return v;
}

const std::string four_gb_bulk = "$4294967296\r\n";
const std::string ten_million_array = "*10000000\r\n";

// ---------------------------------------------------------------------------------------------
// 1. The handshake: every connection the pool opens gets the hostile reply. Clients get
// "upstream unavailable (<class>)" or "(pool_timeout)" within the bound; /status and the
// metric carry the class; the sidecar recovers once the upstream behaves.

struct handshake_case {
    std::string name;
    std::vector<std::pair<std::string, behaviour>> script;
    std::string expected_class;
    env_map env = {};  // extra: REDIS_DB=1 (SELECT), REDIS_PASSWORD (AUTH)
};

const std::string unknown_hello = "-ERR unknown command 'HELLO', with args beginning with: \r\n";

std::vector<handshake_case> handshake_cases() {
    const auto legacy = [](std::string cmd, behaviour b) {
        // A server without HELLO (Redis < 6): AUTH and CLIENT SETNAME are separate commands.
        return std::vector<std::pair<std::string, behaviour>>{
            {"HELLO", behaviour::send(unknown_hello)}, {std::move(cmd), std::move(b)}};
    };
    const env_map with_password = {{"REDIS_PASSWORD", "hostile-test-password"}};
    return {
        {"HELLO malformed (type byte '?')",
         {{"HELLO", behaviour::send("?what\r\n")}},
         "protocol_error"},
        {"HELLO 4 GB bulk header ($4294967296)",
         {{"HELLO", behaviour::send(four_gb_bulk)}},
         "protocol_error"},
        {"HELLO 10-million-element array header (*10000000)",
         {{"HELLO", behaviour::send(ten_million_array)}},
         "protocol_error"},
        {"HELLO answered with the wrong type (:1)",
         {{"HELLO", behaviour::send(":1\r\n")}},
         "protocol_error"},
        {"HELLO truncated, then close",
         {{"HELLO", behaviour::send_then_close("*14\r\n$6\r\nserver\r\n$5\r\nred")}},
         "io_error"},
        {"HELLO: close without a reply", {{"HELLO", behaviour::close_now()}}, "io_error"},
        {"HELLO: never a reply", {{"HELLO", behaviour::silence()}}, "timeout"},
        {"HELLO: a never-ending simple string, 1 byte / 100 ms",
         {{"HELLO", behaviour::trickle_bytes("+OKOKOKOK", 100ms, true)}},
         "timeout"},
        {"PING answered with the wrong type (:1)",
         {{"PING", behaviour::send(":1\r\n")}},
         "protocol_error"},
        {"PING 4 GB bulk header", {{"PING", behaviour::send(four_gb_bulk)}}, "protocol_error"},
        {"PING truncated (+PO), then close",
         {{"PING", behaviour::send_then_close("+PO")}},
         "io_error"},
        {"SELECT (REDIS_DB=1) 10-million-element array header",
         {{"SELECT", behaviour::send(ten_million_array)}},
         "protocol_error",
         {{"REDIS_DB", "1"}}},
        {"SELECT (REDIS_DB=1) answered with the wrong type ($2 OK)",
         {{"SELECT", behaviour::send("$2\r\nOK\r\n")}},
         "protocol_error",
         {{"REDIS_DB", "1"}}},
        {"SELECT (REDIS_DB=1): never a reply",
         {{"SELECT", behaviour::silence()}},
         "timeout",
         {{"REDIS_DB", "1"}}},
        {"AUTH (no HELLO) truncated (+O), then close",
         legacy("AUTH", behaviour::send_then_close("+O")), "io_error", with_password},
        {"AUTH (no HELLO) 4 GB bulk header", legacy("AUTH", behaviour::send(four_gb_bulk)),
         "protocol_error", with_password},
        {"AUTH (no HELLO) answered with the wrong type (:1)",
         legacy("AUTH", behaviour::send(":1\r\n")), "protocol_error", with_password},
        {"CLIENT SETNAME (no HELLO) answered with the wrong type (+QUEUED)",
         legacy("CLIENT SETNAME", behaviour::send("+QUEUED\r\n")), "protocol_error"},
        {"CLIENT SETNAME (no HELLO): never a reply", legacy("CLIENT SETNAME", behaviour::silence()),
         "timeout"},
        {"CLIENT SETNAME (no HELLO) malformed (bad length $x)",
         legacy("CLIENT SETNAME", behaviour::send("$x\r\n")), "protocol_error"},
    };
}

TEST(hostile_upstream, handshake_replies) {
    for (const auto& hc : handshake_cases()) {
        SCOPED_TRACE(hc.name);
        std::cout << "[case] handshake: " << hc.name << std::endl;
        scripted_server server;
        auto env = hostile_env(server);
        for (const auto& [k, v] : hc.env) env[k] = v;
        // The legacy rows need a server without HELLO from the start.
        const bool legacy =
            hc.script.front().first == "HELLO" && hc.script.front().second.bytes == unknown_hello;
        if (legacy) server.script("HELLO", hc.script.front().second);
        sidecar_process sc;
        sc.start(env);
        if (HasFatalFailure()) return;
        const auto before = failures_of(sc, hc.expected_class);

        for (const auto& [cmd, b] : hc.script) server.script(cmd, b);
        server.drop_connections();  // every connection from now on meets the script
        // The pool saw its idle connections close and failed to replace them (a client sent a
        // command earlier could meet a closed idle connection: not this test's subject).
        const auto dropped = clock::now();
        EXPECT_TRUE(
            eventually([&] { return failures_of(sc, hc.expected_class) > before; }, error_bound))
            << failures_by_class(sc);
        figure("handshake: " + hc.name + ": failure counted after", seconds_since(dropped) * 1000,
               "ms");

        double ms = 0;
        const auto r = one_command(sc.port(), {"GET", "k"}, &ms);
        std::cout << "[detail] client saw: " << r.text() << std::endl;
        EXPECT_TRUE(r.is_error()) << r.text();
        EXPECT_NE(r.str.find("redis-sidecar: upstream unavailable"), std::string::npos) << r.text();
        EXPECT_LE(ms, error_bound_ms);
        figure("handshake: " + hc.name + ": error reply to a client after", ms, "ms");

        EXPECT_TRUE(eventually([&] { return sc.last_error() == hc.expected_class; }, error_bound))
            << "last_error.class is " << sc.last_error();
        EXPECT_NE(sc.process().err().find("upstream connect failed"), std::string::npos);
        EXPECT_NE(sc.process().err().find(hc.expected_class), std::string::npos);
        ASSERT_TRUE(sc.process().running()) << sc.process().err();
        EXPECT_EQ(sc.livez(), 200);
        const auto rss = rss_kb(sc.process().pid());
        figure("handshake: " + hc.name + ": RSS", static_cast<double>(rss) / 1024, "MB");
        EXPECT_LT(rss, rss_bound_kb);

        // The upstream behaves again: served again (no state left wedged).
        for (const auto& [cmd, b] : hc.script) server.unscript(cmd);
        server.drop_connections();
        const auto healed = clock::now();
        EXPECT_TRUE(eventually(
            [&] {
                return one_command(sc.port(), {"SET", "k", "v"}).text() == "OK";
            },
            20s));
        figure("handshake: " + hc.name + ": served again after the upstream behaved",
               seconds_since(healed) * 1000, "ms");
        EXPECT_EQ(sc.terminate(), 0);
    }
}

// An array of arrays, streamed as fast as the sidecar reads it: every header is within the
// bounds (1 Mi elements, depth 2), but each 4 MiB of inner array costs the reader a table and a
// million reply objects. Memory must stay bounded however long the stream runs.
TEST(hostile_upstream, handshake_reply_of_nested_arrays_streamed) {
    constexpr std::size_t n = 1024 * 1024;
    std::string inner = "*" + std::to_string(n) + "\r\n";
    inner.reserve(inner.size() + n * 4);
    for (std::size_t i = 0; i < n; ++i) inner += ":1\r\n";
    scripted_server server;
    sidecar_process sc;
    sc.start(hostile_env(server));
    ASSERT_FALSE(HasFatalFailure());
    const auto pid = sc.process().pid();
    const auto before = failures_of(sc, "protocol_error") + failures_of(sc, "timeout");
    server.script("HELLO", behaviour::flood_bytes("*" + std::to_string(n) + "\r\n", inner));
    server.drop_connections();

    // Sample RSS while a client waits and the stream runs (every open meets it).
    long peak = 0;
    std::atomic<bool> done{false};
    std::thread sampler([&] {
        while (!done) {
            peak = std::max(peak, rss_kb(pid));
            // Fails the test either way; spares the machine.
            if (peak > 8 * rss_bound_kb) ::kill(pid, SIGKILL);
            std::this_thread::sleep_for(10ms);
        }
    });
    double ms = 0;
    const auto r = one_command(sc.port(), {"GET", "k"}, &ms);
    std::this_thread::sleep_for(2s);  // more opens, more streams
    done = true;
    sampler.join();
    std::cout << "[detail] client saw: " << r.text() << "\n[detail] streamed "
              << server.flooded() / (1024 * 1024) << " MiB\n[detail] connect failures:\n"
              << failures_by_class(sc) << std::flush;
    figure("nested arrays streamed to HELLO: error reply to a client after", ms, "ms");
    figure("nested arrays streamed to HELLO: peak RSS", static_cast<double>(peak) / 1024, "MB");
    ASSERT_TRUE(sc.process().running()) << sc.process().err();
    EXPECT_TRUE(r.is_error()) << r.text();
    EXPECT_LE(ms, error_bound_ms);
    EXPECT_LT(peak, rss_bound_kb);
    EXPECT_GT(failures_of(sc, "protocol_error") + failures_of(sc, "timeout"), before);
    EXPECT_EQ(sc.terminate(), 0);
}

// ---------------------------------------------------------------------------------------------
// 2. The health rounds while the pool runs: the handshake (a command's first occurrence on a
// connection) is answered normally, every later PING or HELLO as scripted. The round discards
// the connection and counts the failure; clients keep being served on fresh connections.

struct health_case {
    std::string name;
    std::string command;  // PING or HELLO
    behaviour b;
    std::string expected_class;
};

TEST(hostile_upstream, health_check_replies) {
    const std::vector<health_case> cases = {
        {"PING: never a reply", "PING", behaviour::silence(), "timeout"},
        {"PING: a never-ending reply, 1 byte / 100 ms", "PING",
         behaviour::trickle_bytes("+PONGPONG", 100ms, true), "timeout"},
        {"PING 4 GB bulk header", "PING", behaviour::send(four_gb_bulk), "protocol_error"},
        {"PING 10-million-element array header", "PING", behaviour::send(ten_million_array),
         "protocol_error"},
        {"PING truncated, then close", "PING", behaviour::send_then_close("+PO"), "io_error"},
        {"PING: close without a reply", "PING", behaviour::close_now(), "io_error"},
        {"HELLO (role probe) malformed", "HELLO", behaviour::send("*2\r\n?\r\n"), "protocol_error"},
        {"HELLO (role probe) 10-million-element array header", "HELLO",
         behaviour::send(ten_million_array), "protocol_error"},
        {"HELLO (role probe): never a reply", "HELLO", behaviour::silence(), "timeout"},
        {"HELLO (role probe) answered with the wrong type (:1)", "HELLO", behaviour::send(":1\r\n"),
         "protocol_error"},
    };
    for (const auto& hc : cases) {
        SCOPED_TRACE(hc.name);
        std::cout << "[case] health: " << hc.name << std::endl;
        scripted_server server;
        // The sidecar never sends ROLE (HELLO's reply carries the role): a ROLE would close.
        server.script("ROLE", behaviour::close_now());
        sidecar_process sc;
        sc.start(hostile_env(server));
        if (HasFatalFailure()) return;
        const auto before = failures_of(sc, hc.expected_class);
        const auto started = clock::now();
        server.script(hc.command, hc.b.starting_at(2));

        EXPECT_TRUE(
            eventually([&] { return failures_of(sc, hc.expected_class) > before; }, error_bound))
            << failures_by_class(sc);
        figure("health: " + hc.name + ": failure counted after", seconds_since(started) * 1000,
               "ms");
        EXPECT_TRUE(eventually([&] { return sc.last_error() == hc.expected_class; }, error_bound))
            << "last_error.class is " << sc.last_error();

        // Clients are answered meanwhile, never left hanging.
        int ok = 0;
        double worst_ms = 0;
        for (int i = 0; i < 10; ++i) {
            double ms = 0;
            const auto r = one_command(sc.port(), {"SET", "k", "v"}, &ms);
            worst_ms = std::max(worst_ms, ms);
            if (r.text() == "OK") {
                ++ok;
            } else {
                std::cout << "[detail] a client saw: " << r.text() << std::endl;
                EXPECT_NE(r.str.find("redis-sidecar:"), std::string::npos) << r.text();
            }
            std::this_thread::sleep_for(50ms);
        }
        figure("health: " + hc.name + ": client SETs answered OK (of 10)", ok, "");
        figure("health: " + hc.name + ": slowest client reply", worst_ms, "ms");
        EXPECT_GE(ok, 1);
        EXPECT_LE(worst_ms, error_bound_ms);
        ASSERT_TRUE(sc.process().running()) << sc.process().err();
        const auto rss = rss_kb(sc.process().pid());
        EXPECT_LT(rss, rss_bound_kb);
        EXPECT_EQ(server.count("ROLE"), 0u);
        EXPECT_EQ(sc.terminate(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. INFO, which /status samples (src/app/sidecar.cpp, sample_upstream_info) through a pooled
// connection: a hostile reply must cost the connection at most, never the process or /status.

struct info_case {
    std::string name;
    behaviour b;
    bool info_read;              // /status shows upstream_info.redis_version afterwards
    std::string expected_class;  // of the failure counted and in last_error; "" none
};

double command_failures_of(const sidecar_process& sc, const std::string& cls) {
    return sc.metric("redis_sidecar_upstream_command_failures_total{class=\"" + cls + "\"}");
}

TEST(hostile_upstream, info_replies) {
    const auto info = [](const std::string& hits) {
        return scripted_server::bulk(
            "# Server\r\nredis_version:7.0.15\r\n# Stats\r\nkeyspace_hits:" + hits +
            "\r\nkeyspace_misses:1\r\n");
    };
    const std::vector<info_case> cases = {
        {"well-formed (control: hit rate 0.75)", behaviour::send(info("3")), true, ""},
        {"keyspace_hits not a number", behaviour::send(info("lots")), true, ""},
        {"keyspace_hits beyond 64 bits", behaviour::send(info("99999999999999999999999")), true,
         ""},
        // The server's refusal (a least-privilege ACL user) is an answer, not a fault.
        {"an error reply (NOPERM)",
         behaviour::send("-NOPERM this user has no permissions to run the 'info' command\r\n"),
         false, ""},
        {"wrong type (an integer)", behaviour::send(":1\r\n"), false, "protocol_error"},
        {"4 GB bulk header", behaviour::send(four_gb_bulk), false, "protocol_error"},
        {"10-million-element array header", behaviour::send(ten_million_array), false,
         "protocol_error"},
        {"truncated, then close", behaviour::send_then_close("$100\r\nredis_version:7"), false,
         "io_error"},
        {"never a reply", behaviour::silence(), false, "timeout"},
        {"a never-ending bulk, 1 byte / 100 ms",
         behaviour::trickle_bytes("$100000\r\nredis_version:7\r\n", 100ms, true), false, "timeout"},
    };
    for (const auto& ic : cases) {
        SCOPED_TRACE(ic.name);
        std::cout << "[case] INFO: " << ic.name << std::endl;
        scripted_server server;
        server.script("INFO", ic.b);
        sidecar_process sc;
        sc.start(hostile_env(server));
        if (HasFatalFailure()) return;
        // The first /status starts the sample; later ones show what it found.
        const auto t = clock::now();
        ASSERT_TRUE(sc.status().is_object());
        EXPECT_TRUE(eventually([&] { return server.count("INFO") >= 1; }, error_bound));
        double worst_status_ms = 0;
        nlohmann::json info_seen;
        // Past the sample's own bound (REDIS_SOCKET_TIMEOUT=500ms), /status answers throughout.
        while (seconds_since(t) < 1.5) {
            const auto s = clock::now();
            const auto j = sc.status();
            worst_status_ms = std::max(worst_status_ms, seconds_since(s) * 1000);
            ASSERT_TRUE(j.is_object()) << "no /status";
            info_seen = j["upstream_info"];
            std::this_thread::sleep_for(100ms);
        }
        std::cout << "[detail] upstream_info: " << info_seen.dump() << std::endl;
        figure("INFO: " + ic.name + ": slowest /status meanwhile", worst_status_ms, "ms");
        EXPECT_LE(worst_status_ms, 2000);
        if (ic.info_read) {
            ASSERT_TRUE(info_seen.is_object());
            EXPECT_EQ(info_seen.value("redis_version", ""), "7.0.15");
            if (ic.name.rfind("well-formed", 0) == 0) {
                EXPECT_DOUBLE_EQ(info_seen.value("keyspace_hit_rate", -1.0), 0.75);
            } else {
                EXPECT_FALSE(info_seen.contains("keyspace_hit_rate")) << info_seen.dump();
            }
        } else {
            EXPECT_TRUE(info_seen.is_null() || !info_seen.contains("redis_version"))
                << info_seen.dump();
        }
        if (ic.expected_class.empty()) {
            EXPECT_EQ(sc.last_error(), "");
        } else {
            // Classified, counted, in /status naming INFO, and logged.
            EXPECT_TRUE(eventually([&] { return command_failures_of(sc, ic.expected_class) >= 1; },
                                   error_bound));
            EXPECT_EQ(sc.last_error(), ic.expected_class);
            EXPECT_EQ(sc.last_error("message").rfind("INFO: ", 0), 0u) << sc.last_error("message");
            EXPECT_NE(sc.process().err().find("upstream command failed"), std::string::npos);
        }
        ASSERT_TRUE(sc.process().running()) << sc.process().err();
        EXPECT_LT(rss_kb(sc.process().pid()), rss_bound_kb);
        EXPECT_EQ(one_command(sc.port(), {"SET", "k", "v"}).text(), "OK");
        EXPECT_EQ(sc.terminate(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. RESET, which the pool sends (with the re-authentication behind it) when a client that
// changed its connection's state (here: SELECT 1) leaves. A hostile reply costs that
// connection: it is closed instead of reused (redis_sidecar_upstream_recycle_discards_total).

TEST(hostile_upstream, reset_replies) {
    struct reset_case {
        std::string name;
        behaviour b;
        std::string expected_class;
    };
    const std::vector<reset_case> cases = {
        {"malformed", behaviour::send("?RESET\r\n"), "protocol_error"},
        {"wrong type (:1)", behaviour::send(":1\r\n"), "protocol_error"},
        {"4 GB bulk header", behaviour::send(four_gb_bulk), "protocol_error"},
        {"10-million-element array header", behaviour::send(ten_million_array), "protocol_error"},
        {"truncated, then close", behaviour::send_then_close("+RES"), "io_error"},
        {"never a reply", behaviour::silence(), "timeout"},
        {"a never-ending reply, 1 byte / 100 ms", behaviour::trickle_bytes("+RESET", 100ms, true),
         "timeout"},
    };
    scripted_server server;
    sidecar_process sc;
    sc.start(hostile_env(server));
    ASSERT_FALSE(HasFatalFailure());
    const std::string discards = "redis_sidecar_upstream_recycle_discards_total";
    for (const auto& [name, b, expected_class] : cases) {
        SCOPED_TRACE(name);
        server.script("RESET", b);
        const auto before = sc.metric(discards);
        const auto failures_before = command_failures_of(sc, expected_class);
        const auto resets = server.count("RESET");
        {
            auto c = resp_client::tcp(sc.port(), 2s);
            EXPECT_EQ(c.call({"SELECT", "1"}, 5s).text(), "OK");
        }  // leaves: the connection is dirty, the pool sends RESET
        const auto left = clock::now();
        EXPECT_TRUE(eventually([&] { return sc.metric(discards) > before; }, error_bound))
            << "RESET " << name << ": the connection was not discarded";
        figure("RESET: " + name + ": connection discarded after", seconds_since(left) * 1000, "ms");
        EXPECT_GT(server.count("RESET"), resets);
        // Classified, counted, in /status naming RESET, and logged.
        EXPECT_GT(command_failures_of(sc, expected_class), failures_before);
        EXPECT_EQ(sc.last_error(), expected_class);
        EXPECT_EQ(sc.last_error("message").rfind("RESET: ", 0), 0u) << sc.last_error("message");
        EXPECT_NE(sc.process().err().find("upstream command failed"), std::string::npos);
        ASSERT_TRUE(sc.process().running()) << sc.process().err();
        EXPECT_LT(rss_kb(sc.process().pid()), rss_bound_kb);
        EXPECT_EQ(one_command(sc.port(), {"SET", "k", "v"}).text(), "OK");
    }
    EXPECT_EQ(sc.terminate(), 0);
}

}  // namespace
}  // namespace redis_sidecar::faults_test
