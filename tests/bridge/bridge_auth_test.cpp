// Local authentication: AUTH and HELLO … AUTH are answered by the sidecar (against
// REDIS_SIDECAR_CLIENT_PASSWORD when set, accepted otherwise); the upstream's own credentials
// never reach a client or the sidecar's output.

#include "bridge_fixture.hpp"

namespace redis_sidecar::bridge_test {
namespace {

constexpr std::string_view client_password = "local-client-pw-42";

class bridge_auth : public bridge_fixture {
  protected:
    void start_with_password() {
        bridge_options options;
        options.env["REDIS_SIDECAR_CLIENT_PASSWORD"] = std::string(client_password);
        start(options);
    }
};

TEST_F(bridge_auth, without_a_client_password_any_auth_is_accepted) {
    ASSERT_NO_FATAL_FAILURE(start());
    auto c = client();
    EXPECT_EQ(c.call({"SET", "before-auth", "1"}).text(), "OK");
    EXPECT_EQ(c.call({"AUTH", "anything"}).text(), "OK");
    EXPECT_EQ(c.call({"AUTH", "someone", "anything"}).text(), "OK");
    EXPECT_EQ(c.call({"AUTH"}).text(), "ERR wrong number of arguments for 'auth' command");
    EXPECT_EQ(c.call({"GET", "before-auth"}).text(), "\"1\"");
    // The upstream never saw these AUTHs (the sidecar answered them) and still knows us as app.
    EXPECT_EQ(c.call({"ACL", "WHOAMI"}).text(), "\"app\"");
    EXPECT_EQ(server_command_calls("auth"), 0);
    // redis-cli with a password works the same.
    EXPECT_EQ(trim(cli({"--no-auth-warning", "-a", "whatever", "GET", "before-auth"}).out), "1");
}

TEST_F(bridge_auth, with_a_client_password_commands_need_auth) {
    ASSERT_NO_FATAL_FAILURE(start_with_password());
    auto c = client();
    EXPECT_EQ(c.call({"GET", "k"}).text(), "NOAUTH Authentication required.");
    EXPECT_EQ(c.call({"PING"}).text(), "NOAUTH Authentication required.");
    EXPECT_EQ(c.call({"AUTH", "wrong-password"}).text(),
              "WRONGPASS invalid username-password pair or user is disabled.");
    EXPECT_EQ(c.call({"SET", "k", "v"}).text(), "NOAUTH Authentication required.");
    EXPECT_EQ(c.call({"AUTH", "default", "wrong-password"}).text(),
              "WRONGPASS invalid username-password pair or user is disabled.");
    EXPECT_EQ(c.call({"AUTH", std::string(client_password)}).text(), "OK");
    EXPECT_EQ(c.call({"SET", "k", "v"}).text(), "OK");
    EXPECT_EQ(c.call({"GET", "k"}).text(), "\"v\"");
    // Nothing of the refused commands ran upstream.
    EXPECT_EQ(server_command_calls("get"), 1);
    EXPECT_EQ(server_command_calls("set"), 1);
    EXPECT_EQ(trim(redis().cli({"GET", "k"}).out), "v");

    // AUTH user pass works too; a big refused command before AUTH is discarded whole.
    auto d = client();
    d.send({"SET", "big", std::string(200 * 1024, 'x')});
    EXPECT_EQ(d.read().text(), "NOAUTH Authentication required.");
    EXPECT_EQ(d.call({"AUTH", "default", std::string(client_password)}).text(), "OK");
    EXPECT_EQ(d.call({"EXISTS", "big"}).text(), "0");

    // redis-cli: right and wrong passwords.
    EXPECT_EQ(trim(cli({"--no-auth-warning", "-a", std::string(client_password), "GET", "k"}).out),
              "v");
    const auto wrong = cli({"--no-auth-warning", "-a", "nope", "GET", "k"});
    EXPECT_NE(wrong.output().find("WRONGPASS"), std::string::npos) << wrong;
    EXPECT_NE(wrong.output().find("NOAUTH"), std::string::npos) << wrong;
    const auto none = cli({"GET", "k"});
    EXPECT_NE(none.output().find("NOAUTH"), std::string::npos) << none;
}

TEST_F(bridge_auth, hello_3_with_auth_authenticates_and_switches_to_resp3) {
    ASSERT_NO_FATAL_FAILURE(start_with_password());
    auto c = client();
    EXPECT_EQ(c.call({"HELLO", "3"}).text(),
              "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
              "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
              "select the RESP protocol version at the same time");
    EXPECT_EQ(c.call({"HELLO", "3", "AUTH", "default", "wrong"}).text(),
              "WRONGPASS invalid username-password pair or user is disabled.");
    EXPECT_EQ(c.call({"GET", "k"}).text(), "NOAUTH Authentication required.");

    const auto hello =
        c.call({"HELLO", "3", "AUTH", "default", std::string(client_password), "SETNAME", "mine"});
    ASSERT_EQ(hello.type, '%') << hello.text();
    std::map<std::string, std::string> fields;
    for (std::size_t i = 0; i + 1 < hello.elems.size(); i += 2) {
        fields[hello.elems[i].str] = hello.elems[i + 1].text();
    }
    EXPECT_EQ(fields["server"], "\"redis\"");
    EXPECT_EQ(fields["proto"], "3");
    EXPECT_EQ(fields["version"], "\"7.0.15\"");
    EXPECT_EQ(hello.text().find(upstream_password), std::string::npos);

    // RESP3 from here on: maps, nulls, doubles.
    EXPECT_EQ(c.call({"HSET", "h", "f", "v"}).text(), "1");
    EXPECT_EQ(c.call({"HGETALL", "h"}).text(), "{\"f\": \"v\"}");
    EXPECT_EQ(c.call({"GET", "missing"}).type, '_');
    EXPECT_EQ(c.call({"ZADD", "z", "1.5", "m"}).text(), "1");
    EXPECT_EQ(c.call({"ZSCORE", "z", "m"}).type, ',');
    EXPECT_EQ(c.call({"CLIENT", "GETNAME"}).text(), "\"mine\"");

    // RESP3 pub/sub on the same connection: pushes, and commands still answered in between.
    EXPECT_EQ(c.call({"SUBSCRIBE", "ch3"}).text(), "[\"subscribe\", \"ch3\", 1]");
    EXPECT_EQ(trim(redis().cli({"PUBLISH", "ch3", "pushed"}).out), "1");
    const auto push = c.read();
    EXPECT_EQ(push.type, '>');
    EXPECT_EQ(push.text(), "[\"message\", \"ch3\", \"pushed\"]");
    EXPECT_EQ(c.call({"GET", "missing"}).type, '_');

    // HELLO 2 AUTH back to RESP2 on a fresh client.
    auto d = client();
    const auto hello2 = d.call({"HELLO", "2", "AUTH", "default", std::string(client_password)});
    EXPECT_EQ(hello2.type, '*');
    EXPECT_EQ(d.call({"HGETALL", "h"}).text(), "[\"f\", \"v\"]");
}

TEST_F(bridge_auth, upstream_credentials_never_reach_a_client) {
    ASSERT_NO_FATAL_FAILURE(start_with_password());
    auto c = client();
    EXPECT_EQ(c.call({"AUTH", std::string(client_password)}).text(), "OK");
    std::string seen;
    for (const auto& args : std::vector<std::vector<std::string>>{{"HELLO", "2"},
                                                                  {"CLIENT", "INFO"},
                                                                  {"CLIENT", "LIST"},
                                                                  {"ACL", "LIST"},
                                                                  {"ACL", "GETUSER", "app"},
                                                                  {"ACL", "LOG"},
                                                                  {"CONFIG", "GET", "*"},
                                                                  {"SLOWLOG", "GET", "100"},
                                                                  {"INFO", "everything"}}) {
        const auto r = c.call(args);
        seen += r.text();
        EXPECT_FALSE(r.is_error()) << args[0] << ": " << r.text();
    }
    // A recycled connection re-authenticates with HELLO AUTH: MONITOR through a second client
    // watches that happen and Redis redacts it; the bytes a client sees never hold the password.
    auto monitor = client();
    EXPECT_EQ(monitor.call({"AUTH", std::string(client_password)}).text(), "OK");
    EXPECT_EQ(monitor.call({"MONITOR"}).text(), "OK");
    auto dirty = client();
    EXPECT_EQ(dirty.call({"AUTH", std::string(client_password)}).text(), "OK");
    EXPECT_EQ(dirty.call({"SELECT", "3"}).text(), "OK");
    dirty.close();  // RESET + HELLO 2 AUTH app <password> + SETNAME on that connection
    EXPECT_TRUE(eventually([&] { return server_command_calls("reset") >= 1; }, 10s));
    EXPECT_EQ(trim(cli({"--no-auth-warning", "-a", std::string(client_password), "PING"}).out),
              "PONG");
    // Collect what MONITOR printed for a moment.
    std::string monitored;
    for (int i = 0; i < 50 && !monitor.silent_for(100ms); ++i)
        monitored += monitor.read().text() + "\n";
    EXPECT_NE(monitored.find("\"RESET\""), std::string::npos) << "MONITOR saw the RESET\n"
                                                              << monitored;
    EXPECT_NE(monitored.find("\"AUTH\" \"(redacted)\" \"(redacted)\""), std::string::npos)
        << monitored;
    seen += monitored;
    EXPECT_EQ(seen.find(upstream_password), std::string::npos) << "the upstream password leaked";
    EXPECT_EQ(seen.find(client_password), std::string::npos) << "the client password leaked";
    EXPECT_NE(seen.find("redis-sidecar:"), std::string::npos);  // what we looked at is real
}

}  // namespace
}  // namespace redis_sidecar::bridge_test
