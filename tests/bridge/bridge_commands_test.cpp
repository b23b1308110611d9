// Everyday traffic through the bridge with real clients: redis-cli (commands, --pipe, stdin
// transactions, SUBSCRIBE) and a raw socket (MULTI/EXEC, BLPOP, inline commands, QUIT), over
// TCP and the unix socket, against a TLS upstream with an ACL user.

#include <sys/stat.h>

#include "bridge_fixture.hpp"

namespace redis_sidecar::bridge_test {
namespace {

class bridge_commands : public bridge_fixture {};

TEST_F(bridge_commands, plain_commands_with_redis_cli) {
    ASSERT_NO_FATAL_FAILURE(start());
    EXPECT_EQ(trim(cli({"SET", "greeting", "hello world"}).out), "OK");
    EXPECT_EQ(trim(cli({"GET", "greeting"}).out), "hello world");
    EXPECT_EQ(trim(cli({"INCR", "counter"}).out), "1");
    EXPECT_EQ(trim(cli({"INCRBY", "counter", "41"}).out), "42");
    // What went through the bridge is really in the upstream (read with its own TLS cli).
    EXPECT_EQ(trim(redis().cli({"GET", "greeting"}).out), "hello world");
    EXPECT_EQ(trim(redis().cli({"GET", "counter"}).out), "42");
    EXPECT_EQ(trim(cli({"DEL", "greeting", "counter", "missing"}).out), "2");
    EXPECT_EQ(trim(redis().cli({"EXISTS", "greeting"}).out), "0");
    // The bridge logs in upstream as the ACL user, not as default.
    EXPECT_EQ(trim(cli({"ACL", "WHOAMI"}).out), upstream_user);
    // Errors from the upstream come back as they are.
    const auto wrong = cli({"LPUSH", "counter-as-list", "x"});
    EXPECT_EQ(trim(wrong.out), "1");
    EXPECT_NE(cli({"INCR", "counter-as-list"}).out.find("WRONGTYPE"), std::string::npos);
}

TEST_F(bridge_commands, pipe_mode_ten_thousand_sets) {
    ASSERT_NO_FATAL_FAILURE(start());
    constexpr int count = 10000;
    std::string input;
    for (int i = 0; i < count; ++i) {
        input += encode_command({"SET", "pipe:" + std::to_string(i), "value-" + std::to_string(i)});
    }
    const auto r = cli({"--pipe", "--pipe-timeout", "20"}, 30s, input);
    ASSERT_TRUE(r.ok()) << r;
    EXPECT_NE(r.out.find("errors: 0, replies: 10000"), std::string::npos) << r;
    EXPECT_EQ(trim(redis().cli({"DBSIZE"}).out), std::to_string(count));
    EXPECT_EQ(trim(redis().cli({"GET", "pipe:0"}).out), "value-0");
    EXPECT_EQ(trim(redis().cli({"GET", "pipe:9999"}).out), "value-9999");
}

TEST_F(bridge_commands, transaction_from_redis_cli_stdin) {
    ASSERT_NO_FATAL_FAILURE(start());
    // redis-cli runs the lines of a non-terminal stdin on one connection, in order.
    const auto r = cli({}, 10s, "MULTI\nSET tx 10\nINCR tx\nGET tx\nEXEC\n");
    ASSERT_TRUE(r.ok()) << r;
    EXPECT_EQ(r.out, "OK\nQUEUED\nQUEUED\nQUEUED\nOK\n11\n11\n") << r;
    EXPECT_EQ(trim(redis().cli({"GET", "tx"}).out), "11");
}

TEST_F(bridge_commands, multi_exec_discard_and_watch_on_a_raw_socket) {
    ASSERT_NO_FATAL_FAILURE(start());
    auto c = client();
    EXPECT_EQ(c.call({"MULTI"}).text(), "OK");
    EXPECT_EQ(c.call({"SET", "a", "1"}).text(), "QUEUED");
    EXPECT_EQ(c.call({"INCR", "a"}).text(), "QUEUED");
    EXPECT_EQ(c.call({"EXEC"}).text(), "[OK, 2]");

    EXPECT_EQ(c.call({"MULTI"}).text(), "OK");
    EXPECT_EQ(c.call({"SET", "a", "100"}).text(), "QUEUED");
    EXPECT_EQ(c.call({"DISCARD"}).text(), "OK");
    EXPECT_EQ(c.call({"GET", "a"}).text(), "\"2\"");

    // WATCH: a change by another client (through the bridge too) aborts the transaction.
    EXPECT_EQ(c.call({"WATCH", "a"}).text(), "OK");
    EXPECT_EQ(trim(cli({"SET", "a", "changed"}).out), "OK");
    EXPECT_EQ(c.call({"MULTI"}).text(), "OK");
    EXPECT_EQ(c.call({"SET", "a", "mine"}).text(), "QUEUED");
    const auto aborted = c.call({"EXEC"});
    EXPECT_TRUE(aborted.null) << aborted.text();
    EXPECT_EQ(trim(redis().cli({"GET", "a"}).out), "changed");
}

TEST_F(bridge_commands, pipelined_and_inline_commands_keep_their_order) {
    ASSERT_NO_FATAL_FAILURE(start());
    auto c = client();
    // Inline commands (sdssplitargs quoting), multibulk, and locally answered AUTH in between:
    // replies come back in order.
    c.send_raw("SET inl \"two words\"\r\nGET inl\r\n" + encode_command({"AUTH", "whatever"}) +
               encode_command({"ECHO", "x"}) + "PING\r\n");
    EXPECT_EQ(c.read().text(), "OK");
    EXPECT_EQ(c.read().text(), "\"two words\"");
    EXPECT_EQ(c.read().text(), "OK");
    EXPECT_EQ(c.read().text(), "\"x\"");
    EXPECT_EQ(c.read().text(), "PONG");

    // 2,000 commands written in one go, split into odd chunks: 2,000 replies, in order.
    std::string batch;
    for (int i = 0; i < 2000; ++i) batch += encode_command({"ECHO", std::to_string(i)});
    for (std::size_t off = 0; off < batch.size(); off += 777) c.send_raw(batch.substr(off, 777));
    for (int i = 0; i < 2000; ++i) {
        const auto r = c.read();
        ASSERT_EQ(r.text(), "\"" + std::to_string(i) + "\"");
    }
    EXPECT_TRUE(c.silent_for(50ms));
}

TEST_F(bridge_commands, quit_answers_ok_and_closes) {
    ASSERT_NO_FATAL_FAILURE(start());
    auto c = client();
    c.send_raw("PING\r\nQUIT\r\nPING\r\n");
    EXPECT_EQ(c.read().text(), "PONG");
    EXPECT_EQ(c.read().text(), "OK");
    std::string rest;
    EXPECT_TRUE(c.wait_closed(5s, &rest));
    EXPECT_EQ(rest, "") << "nothing is answered after QUIT";
}

TEST_F(bridge_commands, subscribe_in_one_client_publish_in_another) {
    ASSERT_NO_FATAL_FAILURE(start());
    child_process subscriber("redis-cli-subscribe");
    subscriber.start({"/usr/bin/redis-cli", "-p", std::to_string(port()), "SUBSCRIBE", "news"},
                     base_env());
    // Subscribed upstream (seen by the server itself) before anything is published.
    ASSERT_TRUE(eventually(
        [&] {
            return redis().cli({"PUBSUB", "NUMSUB", "news"}).out == "news\n1\n";
        },
        10s))
        << subscriber.out() << subscriber.err();

    EXPECT_EQ(trim(cli({"PUBLISH", "news", "first message"}).out), "1");
    EXPECT_EQ(trim(cli({"PUBLISH", "news", "second"}).out), "1");
    EXPECT_TRUE(
        subscriber.wait_for_output("message\nnews\nfirst message\nmessage\nnews\nsecond\n", 10s))
        << subscriber.out() << subscriber.err();

    // A raw subscriber too, with PSUBSCRIBE, PING in subscribed mode and UNSUBSCRIBE.
    auto raw = client();
    EXPECT_EQ(raw.call({"PSUBSCRIBE", "n*"}).text(), "[\"psubscribe\", \"n*\", 1]");
    EXPECT_EQ(trim(cli({"PUBLISH", "news", "third"}).out), "2");
    EXPECT_EQ(raw.read().text(), "[\"pmessage\", \"n*\", \"news\", \"third\"]");
    EXPECT_EQ(raw.call({"PING"}).text(), "[\"pong\", \"\"]");
    EXPECT_EQ(raw.call({"PUNSUBSCRIBE"}).text(), "[\"punsubscribe\", \"n*\", 0]");

    subscriber.stop();
    raw.close();
    // Both subscribed upstream connections were reset (or closed): nobody listens any more.
    EXPECT_TRUE(eventually(
        [&] {
            return redis().cli({"PUBSUB", "NUMSUB", "news"}).out == "news\n0\n" &&
                   redis().cli({"PUBSUB", "NUMPAT"}).out == "0\n";
        },
        10s));
    EXPECT_EQ(trim(cli({"PUBLISH", "news", "nobody"}).out), "0");
}

class bridge_blocking : public bridge_fixture, public ::testing::WithParamInterface<bool> {};

TEST_P(bridge_blocking, blpop_released_by_lpush_from_another_client) {
    ASSERT_NO_FATAL_FAILURE(start());
    const bool use_unix = GetParam();
    auto waiter = use_unix ? resp_client::unix_socket(socket_path()) : client();
    auto pusher = use_unix ? resp_client::unix_socket(socket_path()) : client();
    waiter.send({"BLPOP", "jobs", "10"});
    // Really blocked in the upstream before the push.
    ASSERT_TRUE(
        eventually([&] { return server_info_field("clients", "blocked_clients") == "1"; }, 10s));
    EXPECT_TRUE(waiter.silent_for(50ms));
    EXPECT_EQ(pusher.call({"LPUSH", "jobs", "job-1"}).text(), "1");
    EXPECT_EQ(waiter.read(5s).text(), "[\"jobs\", \"job-1\"]");
    // The waiter's connection goes on serving it.
    EXPECT_EQ(waiter.call({"LLEN", "jobs"}).text(), "0");
    EXPECT_EQ(server_info_field("clients", "blocked_clients"), "0");
}

INSTANTIATE_TEST_SUITE_P(transport, bridge_blocking, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "unix" : "tcp"; });

TEST_F(bridge_commands, unix_socket_serves_like_tcp) {
    ASSERT_NO_FATAL_FAILURE(start());
    struct stat st {};
    ASSERT_EQ(::stat(socket_path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    EXPECT_EQ(trim(cli_unix({"SET", "via-unix", "yes"}).out), "OK");
    EXPECT_EQ(trim(cli({"GET", "via-unix"}).out), "yes");
    EXPECT_EQ(trim(cli_unix({"INCR", "n"}).out), "1");
    const auto r = run_process({"redis-cli", "-s", socket_path()}, base_env(), 10s,
                               "MULTI\nINCR n\nINCR n\nEXEC\n");
    EXPECT_EQ(r.out, "OK\nQUEUED\nQUEUED\n2\n3\n") << r;
    EXPECT_EQ(trim(redis().cli({"GET", "n"}).out), "3");
}

TEST_F(bridge_commands, upstream_connection_carries_the_sidecar_name) {
    ASSERT_NO_FATAL_FAILURE(start());
    // A client that set no name has none, as directly; the server sees the sidecar's.
    EXPECT_EQ(trim(cli({"CLIENT", "GETNAME"}).out), "");
    const auto list = redis().cli({"CLIENT", "LIST"}).out;
    const auto at = list.find("name=redis-sidecar:");
    ASSERT_NE(at, std::string::npos) << list;
    const auto name = list.substr(at + 5, list.find(' ', at) - at - 5);
    EXPECT_GT(name.size(), std::string("redis-sidecar:").size()) << name;
    // Every sidecar connection carries that name, as the ACL user.
    EXPECT_NE(list.find("user=" + std::string(upstream_user)), std::string::npos) << list;
}

}  // namespace
}  // namespace redis_sidecar::bridge_test
