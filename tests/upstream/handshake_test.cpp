// The one handshake the opener and the bridge (after a client's RESET) send, spelled out.

#include "redis_sidecar/upstream/handshake.hpp"

#include <gtest/gtest.h>

#include "redis_sidecar/resp/command.hpp"

namespace redis_sidecar::upstream {
namespace {

using steps = std::vector<std::string>;

std::string cmd(std::initializer_list<std::string_view> args) { return resp::format_command(args); }

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
    const auto h = make_handshake(settings(std::nullopt, "token", 0), "", {.hello = true, .ping = false});
    EXPECT_EQ(h.commands, cmd({"HELLO", "2", "AUTH", "default", "token"}));
    EXPECT_EQ(h.steps, (steps{"auth"}));
}

TEST(handshake, hello_without_password_still_switches_to_resp2) {
    const auto h = make_handshake(settings(std::nullopt, std::nullopt, 0), "n", {.hello = true, .ping = false});
    EXPECT_EQ(h.commands, cmd({"HELLO", "2", "SETNAME", "n"}));
    EXPECT_EQ(h.steps, (steps{"auth"}));
}

TEST(handshake, legacy_servers_get_auth_and_client_setname) {
    const auto with_user = make_handshake(settings("app", "pw", 1), "n", {.hello = false, .ping = true});
    EXPECT_EQ(with_user.commands, cmd({"AUTH", "app", "pw"}) + cmd({"CLIENT", "SETNAME", "n"}) +
                                      cmd({"SELECT", "1"}) + cmd({"PING"}));
    EXPECT_EQ(with_user.steps, (steps{"auth", "setname", "select", "ping"}));
    // Redis 5 AUTH takes only a password.
    const auto no_user = make_handshake(settings(std::nullopt, "pw", 0), "", {.hello = false, .ping = true});
    EXPECT_EQ(no_user.commands, cmd({"AUTH", "pw"}) + cmd({"PING"}));
    EXPECT_EQ(no_user.steps, (steps{"auth", "ping"}));
}

}  // namespace
}  // namespace redis_sidecar::upstream
