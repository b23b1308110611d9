// The bridge's protocol core without sockets: client bytes and upstream bytes in, bytes for the
// upstream, writes for the client and the release decision out. Every case is fed whole, one
// byte at a time and in random pieces (both directions), and must give the same result.

#include "redis_sidecar/bridge/core.hpp"
#include "redis_sidecar/bridge/session.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "redis_sidecar/cluster/port_map.hpp"
#include "redis_sidecar/resp/command.hpp"

namespace redis_sidecar::bridge {
namespace {

using kind = release_decision::kind;

std::string cmd(std::initializer_list<std::string_view> args) {
    return resp::format_command(args);
}
std::string repeat(std::string_view s, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += s;
    return out;
}

constexpr std::string_view sidecar_name = "redis-sidecar:test";
/// HELLO 2's reply in RESP2 (a flat map), as a server sends it to the re-authentication.
const std::string hello_reply = "*4\r\n$6\r\nserver\r\n$5\r\nredis\r\n$2\r\nid\r\n:7\r\n";

/// The re-authentication the core must send after a client's RESET, spelled out.
std::string reauth(unsigned db = 0) {
    std::string s =
        cmd({"HELLO", "2", "AUTH", "app", "app-password-0123", "SETNAME", sidecar_name});
    if (db != 0) s += cmd({"SELECT", std::to_string(db)});
    return s;
}

struct core_case {
    using setup_fn = std::function<void(session_context&)>;
    using stats_fn = std::function<void(const bridge_stats&)>;
    core_case(std::string name, std::string client, std::string want_upstream, std::string upstream,
              std::string want_client, bool want_closed = false, kind want_release = kind::clean,
              std::optional<std::uint64_t> want_owed = std::nullopt, setup_fn setup = {},
              stats_fn check_stats = {})
        : name(std::move(name)),
          client(std::move(client)),
          want_upstream(std::move(want_upstream)),
          upstream(std::move(upstream)),
          want_client(std::move(want_client)),
          want_closed(want_closed),
          want_release(want_release),
          want_owed(want_owed),
          setup(std::move(setup)),
          check_stats(std::move(check_stats)) {}

    std::string name;
    std::string client;         ///< bytes the client sends
    std::string want_upstream;  ///< bytes the core forwards, exactly
    std::string upstream;       ///< bytes the upstream answers
    std::string want_client;    ///< bytes the client reads, in order
    bool want_closed;           ///< the core closes the client
    kind want_release;
    std::optional<std::uint64_t> want_owed;  ///< for kind::reset
    setup_fn setup;
    stats_fn check_stats;
    friend void PrintTo(const core_case& c, std::ostream* os) { *os << c.name; }
};

struct outcome {
    std::string upstream;
    std::string client;
    bool closed = false;
    release_decision release;
    bridge_stats stats;
};

/// Runs a case with the client's and the upstream's bytes cut by `cut` (sizes of pieces).
outcome run(const core_case& c, const std::function<std::size_t(std::size_t)>& cut) {
    config::upstream_settings up;
    up.username = "app";
    up.password = config::secret("app-password-0123");
    bridge_stats stats;
    session_context ctx;
    ctx.stats = &stats;
    ctx.upstream_user = [&up] { return up.username.value_or("default"); };
    ctx.reauth = [&up] {
        return upstream::make_handshake(up, sidecar_name, {.hello = true, .ping = false});
    };
    if (c.setup) c.setup(ctx);
    client_core core(ctx);
    outcome out;
    auto drain = [&](std::string_view& pending) {
        while (!out.closed) {
            auto w = core.next_write(pending);
            if (w.what == client_write::kind::none) return;
            if (w.what == client_write::kind::close) {
                out.closed = true;
                return;
            }
            out.client += w.what == client_write::kind::local ? w.local : std::string(w.bytes);
            if (w.close_after) out.closed = true;
        }
    };
    std::string_view none;
    for (std::size_t at = 0; at < c.client.size() && core.accepts_input();) {
        const auto n = cut(c.client.size() - at);
        core.feed_client(std::string_view(c.client).substr(at, n));
        at += n;
        out.upstream += core.upstream_output();
        core.upstream_output().clear();
        drain(none);
    }
    for (std::size_t at = 0; at < c.upstream.size() && !out.closed;) {
        const auto n = cut(c.upstream.size() - at);
        std::string_view pending = std::string_view(c.upstream).substr(at, n);
        at += n;
        drain(pending);
        EXPECT_TRUE(pending.empty() || out.closed) << "the core left upstream bytes undelivered";
    }
    out.release = core.release(false, false, false, 7);
    out.stats = stats;
    return out;
}

class core_test : public ::testing::TestWithParam<core_case> {};

TEST_P(core_test, same_result_whole_bytewise_and_in_random_pieces) {
    const auto& c = GetParam();
    std::mt19937 rng(12345);
    const std::pair<const char*, std::function<std::size_t(std::size_t)>> cuts[] = {
        {"whole", [](std::size_t left) { return left; }},
        {"bytewise", [](std::size_t) { return std::size_t{1}; }},
        {"random",
         [&](std::size_t left) {
             return std::min(left, std::uniform_int_distribution<std::size_t>(1, 7)(rng));
         }},
    };
    for (const auto& [how, cut] : cuts) {
        SCOPED_TRACE(how);
        const outcome o = run(c, cut);
        EXPECT_EQ(o.upstream, c.want_upstream);
        EXPECT_EQ(o.client, c.want_client);
        EXPECT_EQ(o.closed, c.want_closed);
        EXPECT_EQ(o.release.what, c.want_release);
        if (c.want_release == kind::reset) {
            EXPECT_EQ(o.release.owed, c.want_owed);
        }
        if (c.check_stats) c.check_stats(o.stats);
    }
}

core_case::setup_fn with_cluster() {
    // Ports from 7000, in order of first mention; one book per case (all three cuts).
    auto b = std::make_shared<cluster::port_map_book>();
    return [b](session_context& ctx) { ctx.cluster = b.get(); };
}

const std::string slots_one =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$13\r\nnode-0.c.test\r\n:6379\r\n$3\r\nid0\r\n";
const std::string slots_one_local =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$3\r\nid0\r\n";

const std::string maint_refused =
    "-ERR redis-sidecar: CLIENT MAINT_NOTIFICATIONS is not passed on: the sidecar follows the "
    "upstream's maintenance and failovers itself\r\n";

std::vector<core_case> cases() {
    const std::string ping = cmd({"PING"});
    const std::string get_a = cmd({"GET", "a"});
    const std::string get_b = cmd({"GET", "b"});
    const std::string auth_any = cmd({"AUTH", "whatever"});
    const std::string reset = cmd({"RESET"});
    const std::string deep = repeat("*1\r\n", 10000) + "-ERR reached lua stack limit\r\n";
    return {
        {"forwarded", ping, ping, "+PONG\r\n", "+PONG\r\n"},
        {"local_auth_keeps_its_place", get_a + auth_any + get_b, get_a + get_b,
         "$1\r\n1\r\n$-1\r\n", "$1\r\n1\r\n+OK\r\n$-1\r\n"},
        {"quit_ends_the_input", "PING\r\nQUIT\r\nPING\r\n", "PING\r\n", "+PONG\r\n",
         "+PONG\r\n+OK\r\n", true},
        {"client_password_gate", get_a + cmd({"AUTH", "wrong"}) + cmd({"AUTH", "local-pw"}) + get_a,
         get_a, "$-1\r\n",
         "-NOAUTH Authentication required.\r\n"
         "-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n$-1\r\n",
         false, kind::clean, std::nullopt,
         [](session_context& ctx) { ctx.client_password = config::secret("local-pw"); },
         [](const bridge_stats& s) { EXPECT_EQ(s.auth_failures, 1u); }},
        {"auth_as_another_user_is_counted",
         cmd({"AUTH", "bob", "x"}) + ping,
         ping,
         "+PONG\r\n",
         "+OK\r\n+PONG\r\n",
         false,
         kind::clean,
         std::nullopt,
         {},
         [](const bridge_stats& s) { EXPECT_EQ(s.auth_other_user, 1u); }},
        {"passthrough_auth_goes_upstream", cmd({"AUTH", "bob", "x"}) + ping,
         cmd({"AUTH", "bob", "x"}) + ping, "+OK\r\n+PONG\r\n", "+OK\r\n+PONG\r\n", false,
         kind::reset, 0, [](session_context& ctx) { ctx.passthrough_auth = true; }},
        {"reset_reauthenticates_behind_the_client",
         cmd({"SET", "a", "1"}) + cmd({"MULTI"}) + reset + get_a,
         cmd({"SET", "a", "1"}) + cmd({"MULTI"}) + reset + reauth() + get_a,
         "+OK\r\n+OK\r\n+RESET\r\n" + hello_reply + "$1\r\n1\r\n",
         "+OK\r\n+OK\r\n+RESET\r\n$1\r\n1\r\n",
         false,
         kind::clean,
         std::nullopt,
         {},
         [](const bridge_stats& s) { EXPECT_EQ(s.client_resets, 1u); }},
        {"reset_reselects_the_configured_db", ping + reset, ping + reset + reauth(3),
         "+PONG\r\n+RESET\r\n" + hello_reply + "+OK\r\n", "+PONG\r\n+RESET\r\n", false, kind::clean,
         std::nullopt,
         [](session_context& ctx) {
             ctx.reauth = [] {
                 config::upstream_settings db3;
                 db3.username = "app";
                 db3.password = config::secret("app-password-0123");
                 db3.db = 3;
                 return upstream::make_handshake(db3, sidecar_name, {.hello = true, .ping = false});
             };
         }},
        {"reset_in_pub_sub_passes_messages_until_its_reply",
         cmd({"SUBSCRIBE", "ch"}) + reset + ping,
         cmd({"SUBSCRIBE", "ch"}) + reset + reauth() + ping,
         "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$"
         "2\r\nhi\r\n"
         "+RESET\r\n" +
             hello_reply + "+PONG\r\n",
         "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$"
         "2\r\nhi\r\n"
         "+RESET\r\n+PONG\r\n"},
        {"reset_without_a_lease_is_answered_here", reset + auth_any, "", "", "+RESET\r\n+OK\r\n"},
        {"reset_with_a_client_password_logs_out", cmd({"AUTH", "local-pw"}) + ping + reset + ping,
         ping + reset + reauth(), "+PONG\r\n+RESET\r\n" + hello_reply,
         "+OK\r\n+PONG\r\n+RESET\r\n-NOAUTH Authentication required.\r\n", false, kind::clean,
         std::nullopt,
         [](session_context& ctx) { ctx.client_password = config::secret("local-pw"); }},
        {"refused_reauthentication_closes_the_client", ping + reset + ping,
         ping + reset + reauth() + ping,
         "+PONG\r\n+RESET\r\n-WRONGPASS invalid\r\n-NOAUTH Authentication required.\r\n",
         "+PONG\r\n+RESET\r\n", true, kind::discard},
        {"getname_of_an_unnamed_client", cmd({"CLIENT", "GETNAME"}) + "CLIENT GETNAME\r\n", "", "",
         "$-1\r\n$-1\r\n"},
        // What node-redis 5 pipelines when it connects: the local refusal keeps its place
        // between the forwarded replies, in both protocols; SETINFO leaves the connection clean.
        {"maint_notifications_refused_in_place_in_a_pipeline",
         cmd({"GET", "a"}) + cmd({"CLIENT", "SETINFO", "LIB-NAME", "node-redis"}) +
             cmd({"CLIENT", "MAINT_NOTIFICATIONS", "ON", "moving-endpoint-type", "internal-ip"}) +
             "client maint_notifications on\r\n" + cmd({"GET", "b"}),
         cmd({"GET", "a"}) + cmd({"CLIENT", "SETINFO", "LIB-NAME", "node-redis"}) +
             cmd({"GET", "b"}),
         "$1\r\n1\r\n+OK\r\n$1\r\n2\r\n",
         "$1\r\n1\r\n+OK\r\n" + maint_refused + maint_refused + "$1\r\n2\r\n"},
        {"maint_notifications_refused_in_place_in_resp3",
         cmd({"HELLO", "3"}) + cmd({"CLIENT", "SETINFO", "LIB-VER", "5.9.0"}) +
             cmd({"CLIENT", "MAINT_NOTIFICATIONS", "ON"}) + cmd({"GET", "k"}),
         cmd({"HELLO", "3"}) + cmd({"CLIENT", "SETINFO", "LIB-VER", "5.9.0"}) + cmd({"GET", "k"}),
         "%1\r\n+proto\r\n:3\r\n+OK\r\n_\r\n",
         "%1\r\n+proto\r\n:3\r\n+OK\r\n" + maint_refused + "_\r\n", false, kind::reset, 0},
        {"setinfo_leaves_the_connection_clean",
         cmd({"CLIENT", "SETINFO", "LIB-NAME", "ioredis"}) + cmd({"CLIENT", "LIST"}),
         cmd({"CLIENT", "SETINFO", "LIB-NAME", "ioredis"}) + cmd({"CLIENT", "LIST"}),
         "+OK\r\n$3\r\nid=\r\n", "+OK\r\n$3\r\nid=\r\n"},
        {"getname_after_setname_asks_the_upstream",
         cmd({"CLIENT", "SETNAME", "me"}) + cmd({"CLIENT", "GETNAME"}),
         cmd({"CLIENT", "SETNAME", "me"}) + cmd({"CLIENT", "GETNAME"}), "+OK\r\n$2\r\nme\r\n",
         "+OK\r\n$2\r\nme\r\n", false, kind::reset, 0},
        {"getname_in_resp3_is_null", cmd({"HELLO", "3"}) + cmd({"CLIENT", "GETNAME"}),
         cmd({"HELLO", "3"}), "%1\r\n+proto\r\n:3\r\n", "%1\r\n+proto\r\n:3\r\n_\r\n", false,
         kind::reset, 0},
        {"client_id_takes_the_connection_away",
         cmd({"CLIENT", "ID"}),
         cmd({"CLIENT", "ID"}),
         ":9\r\n",
         ":9\r\n",
         false,
         kind::discard,
         std::nullopt,
         {},
         [](const bridge_stats& s) { EXPECT_EQ(s.identity_discards, 1u); }},
        {"a_redirect_target_is_not_reused", cmd({"CLIENT", "TRACKING", "on", "REDIRECT", "7"}),
         cmd({"CLIENT", "TRACKING", "on", "REDIRECT", "7"}), "+OK\r\n", "+OK\r\n", false,
         kind::discard},
        {"deep_reply_then_local_and_forwarded", cmd({"EVAL", "x", "0"}) + auth_any + get_a,
         cmd({"EVAL", "x", "0"}) + get_a, deep + "$1\r\nv\r\n", deep + "+OK\r\n$1\r\nv\r\n"},
        {"unframable_reply_closes_the_client",
         ping + get_a,
         ping + get_a,
         "+PONG\r\n?garbage\r\n",
         "+PONG\r\n",
         true,
         kind::discard,
         std::nullopt,
         {},
         [](const bridge_stats& s) { EXPECT_EQ(s.reply_framing_errors, 1u); }},
        {"negative_multibulk_is_skipped", "*-10\r\n" + ping, "*-10\r\n" + ping, "+PONG\r\n",
         "+PONG\r\n"},
        {"empty_commands_before_a_local_one", "*-3\r\n*0\r\n" + auth_any, "", "", "+OK\r\n"},
        {"blocked_command_discards", cmd({"BLPOP", "k", "0"}), cmd({"BLPOP", "k", "0"}), "", "",
         false, kind::discard},
        {"reply_in_flight_resets_with_its_count", get_a + get_b, get_a + get_b, "$-1\r\n",
         "$-1\r\n", false, kind::reset, 1},
        {"multi_left_open_resets", cmd({"MULTI"}), cmd({"MULTI"}), "+OK\r\n", "+OK\r\n", false,
         kind::reset, 0},
        {"subscribed_resets_uncounted", cmd({"SUBSCRIBE", "ch"}), cmd({"SUBSCRIBE", "ch"}),
         "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
         "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", false, kind::reset, std::nullopt},
        {"pushes_are_no_replies", get_a, get_a,
         ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n$-1\r\n",
         ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n$-1\r\n"},
        // Part of the bad frame may have gone upstream (when it came in pieces): never reuse.
        {"protocol_error_answers_and_closes", ping + "*1\r\n$x\r\n", ping, "+PONG\r\n",
         "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n", true, kind::discard},
        {"local_reply_in_pub_sub_at_a_frame_boundary", cmd({"SUBSCRIBE", "ch"}) + auth_any,
         cmd({"SUBSCRIBE", "ch"}), "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
         "+OK\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", false, kind::reset, std::nullopt},
        // Cluster mode: node addresses become local ports, wherever a reply carries them.
        {"cluster_moved_and_ask_are_rewritten", get_a + get_b + get_a, get_a + get_b + get_a,
         "-MOVED 15495 node-1.c.test:6380\r\n$1\r\nx\r\n-ASK 1 node-2.c.test:6379\r\n",
         "-MOVED 15495 127.0.0.1:7000\r\n$1\r\nx\r\n-ASK 1 127.0.0.1:7001\r\n", false, kind::clean,
         std::nullopt, with_cluster(),
         [](const bridge_stats& s) { EXPECT_EQ(s.cluster_redirects, 2u); }},
        {"cluster_other_errors_pass_unchanged", get_a, get_a, "-ERR MOVED is not here\r\n",
         "-ERR MOVED is not here\r\n", false, kind::clean, std::nullopt, with_cluster()},
        {"cluster_moved_passes_without_cluster_mode", get_a, get_a,
         "-MOVED 1 node-1.c.test:6380\r\n", "-MOVED 1 node-1.c.test:6380\r\n"},
        {"cluster_slots_in_a_pipeline", ping + cmd({"cluster", "slots"}) + ping,
         ping + cmd({"cluster", "slots"}) + ping, "+PONG\r\n" + slots_one + "+PONG\r\n",
         "+PONG\r\n" + slots_one_local + "+PONG\r\n", false, kind::clean, std::nullopt,
         with_cluster(), [](const bridge_stats& s) { EXPECT_EQ(s.cluster_rewrites, 1u); }},
        {"cluster_info_is_not_rewritten", cmd({"CLUSTER", "INFO"}), cmd({"CLUSTER", "INFO"}),
         "$16\r\ncluster_state:ok\r\n", "$16\r\ncluster_state:ok\r\n", false, kind::clean,
         std::nullopt, with_cluster()},
        {"cluster_slots_queued_in_multi_passes", cmd({"MULTI"}) + cmd({"CLUSTER", "SLOTS"}),
         cmd({"MULTI"}) + cmd({"CLUSTER", "SLOTS"}), "+OK\r\n+QUEUED\r\n", "+OK\r\n+QUEUED\r\n",
         false, kind::reset, 0, with_cluster()},
        {"cluster_slots_inside_exec_are_rewritten",
         cmd({"MULTI"}) + cmd({"CLUSTER", "SLOTS"}) + get_a + cmd({"EXEC"}) + cmd({"MULTI"}) +
             get_a + cmd({"EXEC"}),
         cmd({"MULTI"}) + cmd({"CLUSTER", "SLOTS"}) + get_a + cmd({"EXEC"}) + cmd({"MULTI"}) +
             get_a + cmd({"EXEC"}),
         "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n" + slots_one + "$-1\r\n" +
             "+OK\r\n+QUEUED\r\n*1\r\n-MOVED 1 node-0.c.test:6379\r\n",
         "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n" + slots_one_local + "$-1\r\n" +
             "+OK\r\n+QUEUED\r\n*1\r\n-MOVED 1 node-0.c.test:6379\r\n",
         false, kind::reset, 0, with_cluster(),
         [](const bridge_stats& s) { EXPECT_EQ(s.cluster_rewrites, 1u); }},
        {"cluster_malformed_topology_becomes_an_error", cmd({"CLUSTER", "SLOTS"}) + ping,
         cmd({"CLUSTER", "SLOTS"}) + ping, "*1\r\n$13\r\nnode-0.c.test\r\n+PONG\r\n",
         "-ERR redis-sidecar: could not rewrite the node addresses of the upstream's CLUSTER "
         "SLOTS: unexpected shape\r\n+PONG\r\n",
         false, kind::clean, std::nullopt, with_cluster(),
         [](const bridge_stats& s) { EXPECT_EQ(s.cluster_rewrite_errors, 1u); }},
    };
}

INSTANTIATE_TEST_SUITE_P(cases, core_test, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace redis_sidecar::bridge

namespace redis_sidecar::bridge {
namespace {

// The write deadline's bookkeeping: a counter per write, checked by a periodic sweep.
TEST(write_watch, the_same_write_pending_at_limit_sweeps_is_stalled) {
    write_watch w;
    w.started();
    EXPECT_FALSE(w.stalled(true, 4));  // first sighting of this write
    EXPECT_FALSE(w.stalled(true, 4));
    EXPECT_FALSE(w.stalled(true, 4));
    EXPECT_FALSE(w.stalled(true, 4));
    EXPECT_TRUE(w.stalled(true, 4));  // pending at 4 more sweeps: at least 4 periods
}

TEST(write_watch, writes_that_complete_between_sweeps_never_stall) {
    write_watch w;
    for (int i = 0; i < 100; ++i) {
        w.started();  // a new write each period, each one still pending at the sweep
        EXPECT_FALSE(w.stalled(true, 2));
    }
    // Nothing pending: no deadline, however long.
    for (int i = 0; i < 10; ++i) EXPECT_FALSE(w.stalled(false, 2));
}

TEST(write_watch, a_new_write_restarts_the_count) {
    write_watch w;
    w.started();
    EXPECT_FALSE(w.stalled(true, 2));
    EXPECT_FALSE(w.stalled(true, 2));
    w.started();
    EXPECT_FALSE(w.stalled(true, 2));
    EXPECT_FALSE(w.stalled(true, 2));
    EXPECT_TRUE(w.stalled(true, 2));
}

}  // namespace
}  // namespace redis_sidecar::bridge

namespace redis_sidecar::bridge {
namespace {

/// A core for the half-close rows: authenticated by configuration, like run()'s.
struct eof_fixture {
    config::upstream_settings up;
    bridge_stats stats;
    session_context ctx;
    std::optional<client_core> core;
    eof_fixture() {
        up.username = "app";
        up.password = config::secret("app-password-0123");
        ctx.stats = &stats;
        ctx.upstream_user = [this] { return up.username.value_or("default"); };
        ctx.reauth = [this] {
            return upstream::make_handshake(up, sidecar_name, {.hello = true, .ping = false});
        };
        core.emplace(ctx);
    }
    void deliver(std::string bytes) {
        std::string_view pending = bytes;
        for (;;) {
            const auto w = core->next_write(pending);
            if (w.what == client_write::kind::none || w.what == client_write::kind::close) break;
        }
    }
};

// A client that half-closes (nc -N, a shell pipe) still gets the replies it is owed, like from
// Redis, unless they may never come.
TEST(client_eof, drains_owed_replies_unless_they_may_never_come) {
    {
        eof_fixture f;  // nothing sent: settled, nothing to wait for
        EXPECT_TRUE(f.core->can_drain_after_eof());
        EXPECT_TRUE(f.core->settled());
    }
    {
        eof_fixture f;  // two commands in flight: drain, settled once both replies are written
        f.core->feed_client(cmd({"SET", "a", "1"}) + cmd({"GET", "a"}));
        EXPECT_TRUE(f.core->can_drain_after_eof());
        EXPECT_FALSE(f.core->settled());
        f.deliver("+OK\r\n$1\r\n");  // one reply and the start of the next
        EXPECT_FALSE(f.core->settled());
        f.deliver("1\r\n");
        EXPECT_TRUE(f.core->settled());
    }
    {
        eof_fixture f;  // a local reply (PING answered by the server, AUTH by the sidecar)
        f.core->feed_client(cmd({"AUTH", "x"}));
        EXPECT_TRUE(f.core->can_drain_after_eof());
        EXPECT_FALSE(f.core->settled());
        f.deliver("");
        EXPECT_TRUE(f.core->settled());
    }
    {
        eof_fixture f;  // stopped mid-command: that command never completes
        f.core->feed_client(cmd({"SET", "a", "1"}).substr(0, 12));
        EXPECT_FALSE(f.core->can_drain_after_eof());
    }
    {
        eof_fixture f;  // a blocking command may never be answered (BLPOP k 0)
        f.core->feed_client(cmd({"BLPOP", "k", "0"}));
        EXPECT_FALSE(f.core->can_drain_after_eof());
        f.deliver("*-1\r\n");  // answered: nothing left that may block
        EXPECT_TRUE(f.core->can_drain_after_eof());
    }
    {
        eof_fixture f;  // subscribed: replies are uncounted, they never end
        f.core->feed_client(cmd({"SUBSCRIBE", "c"}));
        EXPECT_FALSE(f.core->can_drain_after_eof());
    }
}

}  // namespace
}  // namespace redis_sidecar::bridge
