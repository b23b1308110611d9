// The one handshake the opener and the bridge (after a client's RESET) send, spelled out.

#include "redis_sidecar/upstream/handshake.hpp"

#include <gtest/gtest.h>

#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/upstream/error.hpp"

namespace redis_sidecar::upstream {
namespace {

using steps = std::vector<std::string>;

std::string cmd(std::initializer_list<std::string_view> args) {
    return resp::format_command(args);
}

config::upstream_settings settings(std::optional<std::string> user, std::optional<std::string> pw,
                                   unsigned db) {
    config::upstream_settings up;
    up.username = std::move(user);
    if (pw) up.password = config::secret(*pw);
    up.db = db;
    return up;
}

TEST(handshake, hello_with_auth_name_select_and_ping) {
    const auto h = make_handshake(settings("app", "pw", 3), "redis-sidecar:pod");
    EXPECT_EQ(h.commands, cmd({"HELLO", "2", "AUTH", "app", "pw", "SETNAME", "redis-sidecar:pod"}) +
                              cmd({"SELECT", "3"}) + cmd({"PING"}));
    EXPECT_EQ(h.steps, (steps{"auth", "select", "ping"}));
}

TEST(handshake, hello_names_the_default_user_and_skips_db_0) {
    const auto h =
        make_handshake(settings(std::nullopt, "token", 0), "", {.hello = true, .ping = false});
    EXPECT_EQ(h.commands, cmd({"HELLO", "2", "AUTH", "default", "token"}));
    EXPECT_EQ(h.steps, (steps{"auth"}));
}

TEST(handshake, hello_without_password_still_switches_to_resp2) {
    const auto h = make_handshake(settings(std::nullopt, std::nullopt, 0), "n",
                                  {.hello = true, .ping = false});
    EXPECT_EQ(h.commands, cmd({"HELLO", "2", "SETNAME", "n"}));
    EXPECT_EQ(h.steps, (steps{"auth"}));
}

TEST(handshake, legacy_servers_get_auth_and_client_setname) {
    const auto with_user =
        make_handshake(settings("app", "pw", 1), "n", {.hello = false, .ping = true});
    EXPECT_EQ(with_user.commands, cmd({"AUTH", "app", "pw"}) + cmd({"CLIENT", "SETNAME", "n"}) +
                                      cmd({"SELECT", "1"}) + cmd({"PING"}));
    EXPECT_EQ(with_user.steps, (steps{"auth", "setname", "select", "ping"}));
    // Redis 5 AUTH takes only a password.
    const auto no_user =
        make_handshake(settings(std::nullopt, "pw", 0), "", {.hello = false, .ping = true});
    EXPECT_EQ(no_user.commands, cmd({"AUTH", "pw"}) + cmd({"PING"}));
    EXPECT_EQ(no_user.steps, (steps{"auth", "ping"}));
}

// ---- check_handshake: what the replies say

resp::reply status(std::string s) {
    return {resp::reply_type::status, std::move(s), 0, {}};
}
resp::reply err(std::string s) {
    return {resp::reply_type::error, std::move(s), 0, {}};
}
resp::reply bulk(std::string s) {
    return {resp::reply_type::string, std::move(s), 0, {}};
}
resp::reply hello_reply(std::string role) {
    resp::reply r{resp::reply_type::array, {}, 0, {}};
    r.elements = {bulk("server"),       bulk("redis"),      bulk("version"),
                  bulk("7.0.15"),       bulk("id"),         {resp::reply_type::integer, {}, 42, {}},
                  bulk("mode"),         bulk("standalone"), bulk("role"),
                  bulk(std::move(role))};
    return r;
}

TEST(handshake, replies_all_good_give_the_servers_facts) {
    const auto h = make_handshake(settings("app", "pw", 3), "n");
    const auto out =
        check_handshake(h, {hello_reply("master"), status("OK"), status("PONG")}, true);
    EXPECT_FALSE(out.ec) << out.ec.message();
    EXPECT_EQ(out.info.version, "7.0.15");
    EXPECT_EQ(out.info.role, "master");
    EXPECT_EQ(out.info.mode, "standalone");
    EXPECT_EQ(out.info.client_id, 42);
    EXPECT_TRUE(out.info.supports_hello);
}

// Valkey answers HELLO with server "valkey" and its own version (and may add fields): nothing
// depends on "redis".
TEST(handshake, a_valkey_hello_reply_is_read_like_redis) {
    const auto h = make_handshake(settings("app", "pw", 0), "n");
    resp::reply hello{resp::reply_type::array, {}, 0, {}};
    hello.elements = {bulk("server"),
                      bulk("valkey"),
                      bulk("version"),
                      bulk("8.0.1"),
                      bulk("proto"),
                      {resp::reply_type::integer, {}, 2, {}},
                      bulk("id"),
                      {resp::reply_type::integer, {}, 7, {}},
                      bulk("mode"),
                      bulk("standalone"),
                      bulk("role"),
                      bulk("master"),
                      bulk("modules"),
                      {resp::reply_type::array, {}, 0, {}},
                      bulk("availability_zone"),
                      bulk("use1-az1")};
    const auto out = check_handshake(h, {hello, status("PONG")}, true);
    EXPECT_FALSE(out.ec) << out.ec.message() << " " << out.detail;
    EXPECT_EQ(out.info.version, "8.0.1");
    EXPECT_EQ(out.info.role, "master");
    EXPECT_EQ(out.info.mode, "standalone");
    EXPECT_EQ(out.info.client_id, 7);
    EXPECT_TRUE(out.info.supports_hello);
}

TEST(handshake, the_first_error_names_its_step_and_is_classified) {
    const auto h = make_handshake(settings("app", "pw", 3), "n");
    auto out =
        check_handshake(h,
                        {err("WRONGPASS invalid username-password pair or user is disabled."),
                         err("x"), status("PONG")},
                        true);
    EXPECT_EQ(out.ec, make_error_code(error::wrongpass));
    EXPECT_EQ(out.failed_step, "auth");
    EXPECT_EQ(out.detail, "WRONGPASS invalid username-password pair or user is disabled.");
    EXPECT_FALSE(out.no_hello);

    out = check_handshake(
        h, {hello_reply("master"), err("ERR DB index is out of range"), status("PONG")}, true);
    EXPECT_TRUE(out.ec);
    EXPECT_EQ(out.failed_step, "select");

    out = check_handshake(h, {hello_reply("master"), status("OK"), bulk("PONG")}, true);
    EXPECT_EQ(out.ec, make_error_code(error::protocol_error));
    EXPECT_EQ(out.failed_step, "ping");

    out = check_handshake(h, {hello_reply("master")}, true);  // a reply short
    EXPECT_EQ(out.ec, make_error_code(error::protocol_error));
}

// A reply of the wrong type is refused, step by step, never accepted silently (issue 18).
TEST(handshake, a_reply_of_the_wrong_type_fails_its_step) {
    const resp::reply one{resp::reply_type::integer, {}, 1, {}};
    const auto h = make_handshake(settings("app", "pw", 3), "n");
    struct row {
        std::vector<resp::reply> replies;
        std::string step;
    };
    resp::reply odd_map = hello_reply("master");
    odd_map.elements.pop_back();  // 9 elements: no map
    const std::vector<row> rows = {
        {{one, status("OK"), status("PONG")}, "auth"},             // HELLO answered :1
        {{status("OK"), status("OK"), status("PONG")}, "auth"},    // HELLO answered +OK
        {{bulk("x"), status("OK"), status("PONG")}, "auth"},       // HELLO answered $1
        {{odd_map, status("OK"), status("PONG")}, "auth"},         // an odd "map"
        {{hello_reply("master"), one, status("PONG")}, "select"},  // SELECT answered :1
        {{hello_reply("master"), status("QUEUED"), status("PONG")}, "select"},
        {{hello_reply("master"), bulk("OK"), status("PONG")}, "select"},  // a bulk "OK"
        {{hello_reply("master"), status("OK"), one}, "ping"},
    };
    for (const auto& r : rows) {
        const auto out = check_handshake(h, r.replies, true);
        EXPECT_EQ(out.ec, make_error_code(error::protocol_error)) << r.step;
        EXPECT_EQ(out.failed_step, r.step);
        EXPECT_NE(out.detail.find("answered with"), std::string::npos) << out.detail;
    }
    // Without HELLO: AUTH and CLIENT SETNAME must answer OK.
    const auto legacy =
        make_handshake(settings("app", "pw", 0), "n", {.hello = false, .ping = true});
    auto out = check_handshake(legacy, {one, status("OK"), status("PONG")}, false);
    EXPECT_EQ(out.ec, make_error_code(error::protocol_error));
    EXPECT_EQ(out.failed_step, "auth");
    EXPECT_EQ(out.detail, "AUTH answered with an integer, not OK");
    out = check_handshake(legacy, {status("OK"), hello_reply("master"), status("PONG")}, false);
    EXPECT_EQ(out.failed_step, "setname");
    EXPECT_EQ(out.detail, "CLIENT SETNAME answered with an array of 10, not OK");
    // The role probe (HELLO 2 alone) must answer a map too.
    const handshake probe{resp::format_command({"HELLO", "2"}), {"hello"}};
    EXPECT_FALSE(check_handshake(probe, {hello_reply("replica")}, true).ec);
    EXPECT_EQ(check_handshake(probe, {one}, true).ec, make_error_code(error::protocol_error));
}

TEST(handshake, a_server_without_hello_asks_for_the_legacy_form) {
    const auto h = make_handshake(settings("app", "pw", 0), "n");
    const auto out = check_handshake(
        h, {err("ERR unknown command 'HELLO', with args beginning with: '2' "), status("PONG")},
        true);
    EXPECT_TRUE(out.no_hello);
    const auto legacy =
        make_handshake(settings("app", "pw", 0), "n", {.hello = false, .ping = true});
    const auto ok = check_handshake(legacy, {status("OK"), status("OK"), status("PONG")}, false);
    EXPECT_FALSE(ok.ec);
    EXPECT_FALSE(ok.info.supports_hello);
    // Without HELLO, "unknown command" is an ordinary failure of its step.
    const auto bad = check_handshake(
        legacy, {err("ERR unknown command 'AUTH'"), status("OK"), status("PONG")}, false);
    EXPECT_FALSE(bad.no_hello);
    EXPECT_EQ(bad.failed_step, "auth");
}

}  // namespace
}  // namespace redis_sidecar::upstream
