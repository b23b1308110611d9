// What a client leaves behind on its upstream connection must not reach the next client. With
// REDIS_MAX_CONNECTIONS=1 every client provably gets the same upstream connection (or its
// replacement): a client that leaves state (SELECT, MULTI, SUBSCRIBE, HELLO 3, WATCH, CLIENT
// SETNAME, a reply in flight, a blocked command, half a command) is followed by one that checks
// the connection is clean. A client that leaves nothing behind gets the very same connection
// without a RESET. Clients sending garbage get a protocol error and are closed; others go on.

#include <functional>
#include <set>
#include <sstream>

#include "bridge_fixture.hpp"

namespace redis_sidecar::bridge_test {
namespace {

class bridge_recycle : public bridge_fixture {
  protected:
    void start_single_connection() {
        bridge_options options;
        options.env["REDIS_MAX_CONNECTIONS"] = "1";
        options.env["REDIS_MIN_IDLE_CONNECTIONS"] = "1";
        start(options);
    }

    /// Ids (CLIENT LIST, seen by the server) of the connections the sidecar holds.
    std::set<std::string> sidecar_connection_ids() {
        const auto list = redis().cli({"CLIENT", "LIST", "TYPE", "normal"}).out;
        std::istringstream in(list);
        std::set<std::string> ids;
        std::string line;
        while (std::getline(in, line)) {
            if (line.find(" name=redis-sidecar:") == std::string::npos) continue;
            const auto start = line.find("id=") + 3;
            ids.insert(line.substr(start, line.find(' ', start) - start));
        }
        return ids;
    }

    /// The one connection the sidecar holds once it is back in the pool.
    std::string the_connection() {
        std::set<std::string> ids;
        EXPECT_TRUE(eventually(
            [&] {
                ids = sidecar_connection_ids();
                return ids.size() == 1 && server_info_field("clients", "blocked_clients") == "0";
            },
            10s))
            << ids.size();
        return ids.empty() ? std::string() : *ids.begin();
    }
};

TEST_F(bridge_recycle, a_client_without_state_leaves_the_same_connection_without_reset) {
    ASSERT_NO_FATAL_FAILURE(start_single_connection());
    const auto id = the_connection();
    ASSERT_FALSE(id.empty());
    const auto resets_before = server_command_calls("reset");
    for (int i = 0; i < 5; ++i) {
        auto c = client();
        EXPECT_EQ(c.call({"SET", "k" + std::to_string(i), "v"}).text(), "OK");
        EXPECT_EQ(c.call({"GET", "k" + std::to_string(i)}).text(), "\"v\"");
        EXPECT_EQ(c.call({"PING"}).text(), "PONG");
        c.close();
    }
    for (int i = 0; i < 3; ++i) EXPECT_EQ(trim(cli({"INCR", "n"}).out), std::to_string(i + 1));
    EXPECT_EQ(the_connection(), id) << "the one upstream connection was replaced";
    EXPECT_EQ(server_command_calls("reset"), resets_before) << "a clean connection was RESET";
}

TEST_F(bridge_recycle, client_setname_is_undone_by_reset_on_the_same_connection) {
    ASSERT_NO_FATAL_FAILURE(start_single_connection());
    const auto id = the_connection();
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(trim(cli({"CLIENT", "SETNAME", "mine"}).out), "OK");
    EXPECT_EQ(trim(cli({"CLIENT", "GETNAME"}).out), "") << "the next client set no name";
    EXPECT_EQ(the_connection(), id) << "a renamed connection goes through RESET, not away";
    EXPECT_GE(server_command_calls("reset"), 1);
}

TEST_F(bridge_recycle, a_client_that_learned_its_id_takes_the_connection_with_it) {
    ASSERT_NO_FATAL_FAILURE(start_single_connection());
    // Another client may name that id (CLIENT TRACKING … REDIRECT, CLIENT KILL ID, CLIENT
    // UNBLOCK): the connection must not serve anyone else.
    const auto first = trim(cli({"CLIENT", "ID"}).out);
    const auto second = trim(cli({"CLIENT", "ID"}).out);
    EXPECT_FALSE(first.empty());
    EXPECT_NE(first, second);
    EXPECT_TRUE(eventually([&] { return sidecar_connection_ids().count(first) == 0; }, 10s));
}

TEST_F(bridge_recycle, a_client_that_gets_no_connection_is_told_and_closed) {
    bridge_options options;
    options.env["REDIS_MAX_CONNECTIONS"] = "1";
    options.env["REDIS_MIN_IDLE_CONNECTIONS"] = "1";
    options.env["REDIS_CONNECTION_TIMEOUT"] = "1s";  // also the bound on waiting for a lease
    ASSERT_NO_FATAL_FAILURE(start(options));
    auto holder = client();
    EXPECT_EQ(holder.call({"PING"}).text(), "PONG");  // holds the only connection

    auto waiting = client();
    waiting.send_raw("PING\r\n" + encode_command({"AUTH", "x"}) + "ECHO never\r\n");
    const auto error = waiting.read(10s);
    EXPECT_EQ(error.text().rfind("ERR redis-sidecar: upstream unavailable", 0), 0u) << error.text();
    std::string rest;
    EXPECT_TRUE(waiting.wait_closed(5s, &rest));
    EXPECT_EQ(rest, "");

    // The holder is unaffected and, once it leaves, others are served again.
    EXPECT_EQ(holder.call({"ECHO", "still"}).text(), "\"still\"");
    holder.close();
    auto next = client();
    EXPECT_EQ(next.call({"PING"}, 10s).text(), "PONG");
}

/// One way of leaving state behind, and how the next client proves it is gone.
struct leftover_case {
    std::string name;
    std::function<void(bridge_fixture&, redis_server&, resp_client&)> leave;
    std::function<void(redis_server&, resp_client&)> check;
    friend void PrintTo(const leftover_case& c, std::ostream* os) { *os << c.name; }
};

class bridge_leftovers : public bridge_recycle,
                         public ::testing::WithParamInterface<leftover_case> {
  public:
    using bridge_fixture::client;
};

std::vector<leftover_case> leftover_cases() {
    return {
        {"select",
         [](bridge_fixture&, redis_server&, resp_client& c) {
             EXPECT_EQ(c.call({"SELECT", "5"}).text(), "OK");
             EXPECT_EQ(c.call({"SET", "k", "in-db-5"}).text(), "OK");
         },
         [](redis_server& redis, resp_client& c) {
             EXPECT_EQ(c.call({"SET", "k", "in-db-0"}).text(), "OK");
             EXPECT_EQ(redis.cli({"-n", "0", "GET", "k"}).out, "in-db-0\n");
             EXPECT_EQ(redis.cli({"-n", "5", "GET", "k"}).out, "in-db-5\n");
         }},
        {"multi",
         [](bridge_fixture&, redis_server&, resp_client& c) {
             EXPECT_EQ(c.call({"MULTI"}).text(), "OK");
             EXPECT_EQ(c.call({"SET", "queued", "1"}).text(), "QUEUED");
         },
         [](redis_server& redis, resp_client& c) {
             EXPECT_EQ(c.call({"EXEC"}).text(), "ERR EXEC without MULTI");
             EXPECT_EQ(c.call({"SET", "k", "v"}).text(), "OK");
             EXPECT_EQ(redis.cli({"EXISTS", "queued"}).out, "0\n");
         }},
        {"subscribe",
         [](bridge_fixture&, redis_server&, resp_client& c) {
             EXPECT_EQ(c.call({"SUBSCRIBE", "ch"}).text(), "[\"subscribe\", \"ch\", 1]");
             EXPECT_EQ(c.call({"PSUBSCRIBE", "p*"}).text(), "[\"psubscribe\", \"p*\", 2]");
         },
         [](redis_server& redis, resp_client& c) {
             // Subscribed (RESP2), PING would answer ["pong", ""] and SET would be refused.
             EXPECT_EQ(c.call({"PING"}).text(), "PONG");
             EXPECT_EQ(c.call({"SET", "k", "v"}).text(), "OK");
             EXPECT_EQ(redis.cli({"PUBSUB", "NUMSUB", "ch"}).out, "ch\n0\n");
             EXPECT_EQ(redis.cli({"PUBSUB", "NUMPAT"}).out, "0\n");
         }},
        {"reply_in_flight",
         [](bridge_fixture&, redis_server& redis, resp_client& c) {
             // 1 MiB: more than the socket buffers hold, so most of it is still upstream.
             EXPECT_TRUE(redis.cli({"SETRANGE", "big", std::to_string(1024 * 1024 - 1), "b"}).ok());
             // The client leaves before the replies come: the sidecar must drain them.
             c.send_raw(encode_command({"DEBUG", "SLEEP", "0.2"}) + encode_command({"GET", "big"}) +
                        encode_command({"GET", "big"}));
         },
         [](redis_server&, resp_client& c) {
             EXPECT_EQ(c.call({"SET", "small", "s"}).text(), "OK");
             EXPECT_EQ(c.call({"GET", "small"}).text(), "\"s\"");
             EXPECT_EQ(c.call({"PING"}).text(), "PONG");
             EXPECT_TRUE(c.silent_for(50ms));
         }},
        {"hello_3",
         [](bridge_fixture&, redis_server& redis, resp_client& c) {
             EXPECT_TRUE(redis.cli({"HSET", "h", "f", "v"}).ok());
             EXPECT_EQ(c.call({"HELLO", "3"}).type, '%');
             EXPECT_EQ(c.call({"HGETALL", "h"}).text(), "{\"f\": \"v\"}");
         },
         [](redis_server&, resp_client& c) {
             EXPECT_EQ(c.call({"HGETALL", "h"}).text(), "[\"f\", \"v\"]") << "RESP2 again";
         }},
        {"watch",
         [](bridge_fixture&, redis_server& redis, resp_client& c) {
             EXPECT_EQ(c.call({"WATCH", "w"}).text(), "OK");
             EXPECT_TRUE(redis.cli({"SET", "w", "changed-after-watch"}).ok());
         },
         [](redis_server& redis, resp_client& c) {
             EXPECT_EQ(c.call({"MULTI"}).text(), "OK");
             EXPECT_EQ(c.call({"SET", "w", "mine"}).text(), "QUEUED");
             EXPECT_EQ(c.call({"EXEC"}).text(), "[OK]") << "a WATCH was inherited";
             EXPECT_EQ(redis.cli({"GET", "w"}).out, "mine\n");
         }},
        {"client_setname",
         [](bridge_fixture&, redis_server&, resp_client& c) {
             EXPECT_EQ(c.call({"CLIENT", "SETNAME", "someone-else"}).text(), "OK");
         },
         [](redis_server& redis, resp_client& c) {
             EXPECT_EQ(c.call({"CLIENT", "GETNAME"}).text(), "(nil)") << "this client set none";
             const auto list = redis.cli({"CLIENT", "LIST"}).out;
             EXPECT_EQ(list.find("name=someone-else"), std::string::npos) << list;
             EXPECT_NE(list.find("name=redis-sidecar:"), std::string::npos) << list;
         }},
        {"blocked_forever",
         [](bridge_fixture& f, redis_server&, resp_client& c) {
             c.send({"BLPOP", "never", "0"});
             (void)f;
         },
         [](redis_server& redis, resp_client& c) {
             EXPECT_EQ(c.call({"PING"}, 10s).text(), "PONG");
             EXPECT_EQ(c.call({"LPUSH", "never", "x"}).text(), "1");
             EXPECT_EQ(redis.cli({"LLEN", "never"}).out, "1\n") << "the old BLPOP took it";
         }},
        {"half_a_command",
         [](bridge_fixture&, redis_server&, resp_client& c) {
             c.send_raw("*3\r\n$3\r\nSET\r\n$4\r\npart\r\n$10\r\nabc");
             EXPECT_TRUE(c.silent_for(100ms));
         },
         [](redis_server& redis, resp_client& c) {
             EXPECT_EQ(c.call({"SET", "k", "v"}).text(), "OK");
             EXPECT_EQ(c.call({"GET", "k"}).text(), "\"v\"");
             EXPECT_EQ(redis.cli({"EXISTS", "part"}).out, "0\n");
         }},
    };
}

TEST_P(bridge_leftovers, next_client_gets_a_clean_connection) {
    ASSERT_NO_FATAL_FAILURE(start_single_connection());
    const auto& param = GetParam();
    const auto before = the_connection();
    {
        auto a = client();
        param.leave(*this, redis(), a);
        if (param.name == "blocked_forever") {
            ASSERT_TRUE(eventually(
                [&] { return server_info_field("clients", "blocked_clients") == "1"; }, 10s));
        }
    }  // a leaves abruptly (close without QUIT)
    auto b = client();
    param.check(redis(), b);
    EXPECT_EQ(b.call({"ECHO", "end"}).text(), "\"end\"");
    b.close();
    // Either recycled after RESET or closed and replaced: one connection again, and clean.
    const auto after = the_connection();
    std::cerr << "upstream connection " << (before == after ? "reused: " : "replaced: ") << before
              << " -> " << after << "\n";
}

INSTANTIATE_TEST_SUITE_P(cases, bridge_leftovers, ::testing::ValuesIn(leftover_cases()),
                         [](const auto& info) { return info.param.name; });

/// Bytes that are not RESP, the replies owed before the error, and the error's text.
struct garbage_case {
    std::string name;
    std::string bytes;
    std::vector<std::string> replies_before;
    std::string error;  ///< what the error reply starts with
    friend void PrintTo(const garbage_case& c, std::ostream* os) { *os << c.name; }
};

class bridge_garbage : public bridge_recycle, public ::testing::WithParamInterface<garbage_case> {};

TEST_P(bridge_garbage, gets_a_protocol_error_and_is_closed_while_others_go_on) {
    ASSERT_NO_FATAL_FAILURE(start_single_connection());
    const auto& param = GetParam();
    auto other = client();
    EXPECT_EQ(other.call({"SET", "other", "1"}).text(), "OK");
    other.close();  // frees the single upstream connection for the bad client

    auto bad = client();
    bad.send_raw(param.bytes);
    for (const auto& expected : param.replies_before) EXPECT_EQ(bad.read().text(), expected);
    const auto error = bad.read();
    EXPECT_EQ(error.type, '-') << error.text();
    EXPECT_EQ(error.text().rfind(param.error, 0), 0u) << error.text();
    std::string rest;
    EXPECT_TRUE(bad.wait_closed(5s, &rest));
    EXPECT_EQ(rest, "");

    // The sidecar serves the next clients, on a clean (or fresh) upstream connection.
    for (int i = 0; i < 3; ++i) {
        auto next = client();
        EXPECT_EQ(next.call({"GET", "other"}).text(), "\"1\"");
        EXPECT_EQ(next.call({"PING"}).text(), "PONG");
    }
    EXPECT_EQ(trim(cli({"DBSIZE"}).out), "1") << "nothing of the garbage was executed";
    EXPECT_FALSE(the_connection().empty());
}

INSTANTIATE_TEST_SUITE_P(
    cases, bridge_garbage,
    ::testing::Values(
        garbage_case{
            "bad_bulk_length", "*1\r\n$abc\r\n", {}, "ERR Protocol error: invalid bulk length"},
        garbage_case{"simple_string_in_command",
                     "*2\r\n+x\r\n",
                     {},
                     "ERR Protocol error: expected '$', got '+'"},
        garbage_case{"bulk_instead_of_array",
                     "$3\r\nabc\r\n",
                     {},
                     "ERR Protocol error: expected '*' or an inline command, got '$'"},
        garbage_case{
            "negative_bulk_length", "*1\r\n$-5\r\n", {}, "ERR Protocol error: invalid bulk length"},
        garbage_case{"huge_multibulk_count",
                     "*99999999\r\n",
                     {},
                     "ERR Protocol error: invalid multibulk length"},
        garbage_case{
            "huge_bulk", "*1\r\n$999999999999\r\n", {}, "ERR Protocol error: invalid bulk length"},
        garbage_case{"after_half_forwarded_command",
                     "*2\r\n$3\r\nGET\r\n+x\r\n",
                     {},
                     "ERR Protocol error: expected '$', got '+'"},
        garbage_case{"after_good_commands",
                     "PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r\n$abc\r\n",
                     {"PONG", "\"hi\""},
                     "ERR Protocol error: invalid bulk length"},
        garbage_case{"inline_line_too_long",
                     std::string(70 * 1024, 'a'),
                     {},
                     "ERR Protocol error: too big inline request"}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace redis_sidecar::bridge_test
