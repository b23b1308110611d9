// Protocol fidelity: a reply must never reach the wrong command. The sidecar answers some
// commands itself (AUTH, RESET, CLIENT GETNAME, ...) and forwards the rest; whatever it does, a
// client must see what it would see talking to Redis directly. So most tests here send the same
// bytes through the sidecar and straight to the upstream (a plain loopback port on the same
// redis-server, logged in as the sidecar's ACL user) and compare the replies.

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "bridge_fixture.hpp"

#include <poll.h>
#include <sys/socket.h>

namespace redis_sidecar::bridge_test {
namespace {

using steady = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Rendering replies for comparison

/// Client ids seen in a scenario, by value, and the label they are printed as: the sidecar's
/// upstream connections and direct connections have different ids, nothing else may differ.
using id_labels = std::map<long long, std::string>;

/// A reply with every type byte kept (so "+OK" and "$OK", or RESP3 "_" and RESP2 "$-1", differ):
/// `+OK`, `$v`, `$nil`, `:1`, `*[$a, :2]`, `>[...]`, `%[k, v]`. Known client ids print as their
/// label, and the value after an "id" key (HELLO's reply) as <id>.
std::string render(const resp_value& v, const id_labels& ids = {}) {
    std::string out(1, v.type);
    switch (v.type) {
        case ':': {
            const auto it = ids.find(v.integer);
            out += it != ids.end() ? it->second : std::to_string(v.integer);
            break;
        }
        case '*':
        case '~':
        case '>':
        case '%':
            if (v.null) {
                out += "nil";
                break;
            }
            out += "[";
            for (std::size_t i = 0; i < v.elems.size(); ++i) {
                if (i > 0) out += ", ";
                const bool after_id_key = i > 0 && v.elems[i - 1].str == "id" &&
                                          v.elems[i - 1].type == '$' && v.elems[i].type == ':';
                out += after_id_key ? ":<id>" : render(v.elems[i], ids);
            }
            out += "]";
            break;
        default:
            out += v.null ? "nil" : v.str;
    }
    return out;
}

/// Raw reply bytes with HELLO's connection id blanked (the only part of a reply that differs
/// between two connections in the property test).
std::string mask_hello_id(std::string bytes) {
    const std::string key = "$2\r\nid\r\n:";
    for (auto at = bytes.find(key); at != std::string::npos;
         at = bytes.find(key, at + key.size())) {
        const auto start = at + key.size();
        const auto end = bytes.find("\r\n", start);
        if (end == std::string::npos) break;
        bytes.replace(start, end - start, "<id>");
    }
    return bytes;
}

std::string join(const std::vector<std::string>& args, const id_labels& ids = {}) {
    std::string out;
    for (const auto& a : args) {
        if (!out.empty()) out += ' ';
        std::string shown = a;
        for (const auto& [id, label] : ids) {
            if (a == std::to_string(id)) shown = label;
        }
        out += shown;
    }
    return out;
}

/// Where two byte strings first differ, and a little of each from there: a 32 KB reply that
/// differs is reported in a line.
std::string first_difference(const std::string& expected, const std::string& got) {
    const auto mismatch = std::mismatch(expected.begin(), expected.end(), got.begin(), got.end());
    const auto at = static_cast<std::size_t>(mismatch.first - expected.begin());
    std::ostringstream os;
    os << "sizes " << expected.size() << " (direct) vs " << got.size()
       << " (sidecar), first difference at " << at << ": direct '" << expected.substr(at, 60)
       << "' sidecar '" << got.substr(at, 60) << "'";
    return os.str();
}

/// One command and the reply it must get (render() form; "" means: any non-error reply).
struct step {
    std::vector<std::string> args;
    std::string expect;
};

/// Runs the steps on `c`, checking each reply; returns the rendered replies.
std::vector<std::string> run_steps(resp_client& c, const std::vector<step>& steps,
                                   const std::string& where) {
    std::vector<std::string> got;
    for (const auto& s : steps) {
        const auto reply = c.call(s.args);
        got.push_back(render(reply));
        if (s.expect.empty()) {
            EXPECT_FALSE(reply.is_error()) << where << ": " << join(s.args) << " -> " << got.back();
        } else {
            EXPECT_EQ(got.back(), s.expect) << where << ": " << join(s.args);
        }
    }
    return got;
}

// ---------------------------------------------------------------------------------------------
// The fixture

class bridge_fidelity : public bridge_fixture {
  protected:
    /// The sidecar plus a direct port on its upstream.
    void start_with_direct(bridge_options options = {}) {
        options.direct_port = true;
        start(std::move(options));
    }

    /// Server-side ids of the sidecar's upstream connections (logged in as the ACL user; the
    /// server's own cli is `default`).
    std::set<std::string> app_connection_ids() {
        std::set<std::string> ids;
        std::istringstream in(redis().cli({"CLIENT", "LIST", "TYPE", "normal"}).out);
        for (std::string line; std::getline(in, line);) {
            if (line.find(" user=" + std::string(upstream_user) + " ") == std::string::npos)
                continue;
            const auto start = line.find("id=") + 3;
            ids.insert(line.substr(start, line.find(' ', start) - start));
        }
        return ids;
    }

    /// The server's CLIENT LIST line of the connection whose last command was `cmd`
    /// (e.g. "echo", "acl|whoami"); "" when there is none.
    std::string connection_with_last_command(const std::string& cmd) {
        std::istringstream in(redis().cli({"CLIENT", "LIST", "TYPE", "normal"}).out);
        for (std::string line; std::getline(in, line);) {
            if (line.find(" cmd=" + cmd + " ") != std::string::npos) return line;
        }
        return {};
    }

    static std::string field_of(const std::string& client_list_line, const std::string& field) {
        const auto at = client_list_line.find(field + "=");
        if (at == std::string::npos) return {};
        const auto start = at + field.size() + 1;
        return client_list_line.substr(start, client_list_line.find(' ', start) - start);
    }

    /// True once the server lists no client with this id (bounded).
    bool client_gone(long long id) {
        const std::string needle = "id=" + std::to_string(id) + " ";
        return eventually(
            [&] {
                const auto list = redis().cli({"CLIENT", "LIST"}).out;
                return list.rfind(needle, 0) != 0 && list.find("\n" + needle) == std::string::npos;
            },
            10s, 50ms);
    }

    void flushall() {
        auto d = direct_client();
        ASSERT_EQ(d.call({"FLUSHALL"}).text(), "OK");
    }
};

// ---------------------------------------------------------------------------------------------
// 1. RESET

/// Some state a client builds up, and how to prove RESET took it away.
struct reset_case {
    std::string name;
    std::vector<step> before;  ///< leaves state behind
    std::vector<step> after;   ///< passes only if the state is gone
};

std::vector<reset_case> reset_cases() {
    return {
        {"select",
         {{{"SELECT", "3"}, "+OK"}, {{"SET", "k", "in-db-3"}, "+OK"}},
         {{{"GET", "k"}, "$nil"}}},
        {"multi",
         {{{"MULTI"}, "+OK"}, {{"SET", "x", "queued"}, "+QUEUED"}},
         {{{"SET", "x", "y"}, "+OK"}, {{"EXEC"}, "-ERR EXEC without MULTI"}, {{"GET", "x"}, "$y"}}},
        {"subscribe",
         {{{"SUBSCRIBE", "ch"}, "*[$subscribe, $ch, :1]"}},
         {{{"SET", "x", "y"}, "+OK"}, {{"PING"}, "+PONG"}}},
        // Nothing else talks to the server meanwhile (one upstream connection, no health
        // checks), so the reply after MONITOR's OK is RESET's, not a monitored line.
        {"monitor", {{{"MONITOR"}, "+OK"}}, {{{"PING"}, "+PONG"}}},
        {"client_setname",
         {{{"CLIENT", "SETNAME", "foo"}, "+OK"}},
         {{{"CLIENT", "GETNAME"}, "$nil"}}},
        {"hello_3",
         {{{"HELLO", "3"}, ""}},
         {{{"GET", "missing"}, "$nil"}}},  // RESP2 again, not `_`
    };
}

bridge_options single_quiet_connection() {
    bridge_options options;
    options.env["REDIS_MAX_CONNECTIONS"] = "1";
    options.env["REDIS_MIN_IDLE_CONNECTIONS"] = "1";
    options.env["REDIS_SIDECAR_HEALTH_CHECK_INTERVAL"] = "600s";
    return options;
}

TEST_F(bridge_fidelity, reset_answers_reset_and_leaves_a_clean_authenticated_session) {
    ASSERT_NO_FATAL_FAILURE(start_with_direct(single_quiet_connection()));
    for (const auto& rc : reset_cases()) {
        SCOPED_TRACE(rc.name);
        ASSERT_NO_FATAL_FAILURE(flushall());
        // Through the sidecar; the client stays connected (holding the only upstream
        // connection) while the direct run happens, so nothing else reaches a direct MONITOR.
        auto c = client();
        run_steps(c, rc.before, "sidecar");
        EXPECT_EQ(render(c.call({"RESET"})), "+RESET");
        run_steps(c, rc.after, "sidecar");
        // The sidecar's session, not Redis' default user: no NOAUTH, no other user's rights.
        EXPECT_EQ(render(c.call({"ACL", "WHOAMI"})), "$app");
        EXPECT_EQ(render(c.call({"ECHO", "end"})), "$end");
        EXPECT_TRUE(c.silent_for(20ms));

        // The same expectations hold directly: the table describes Redis, not the sidecar.
        auto d = direct_client();
        run_steps(d, rc.before, "direct");
        EXPECT_EQ(render(d.call({"RESET"})), "+RESET");
        run_steps(d, rc.after, "direct");
        EXPECT_TRUE(d.silent_for(20ms));
    }
}

TEST_F(bridge_fidelity, reset_reauthenticates_renames_and_reselects_the_upstream_connection) {
    ASSERT_NO_FATAL_FAILURE(start(single_quiet_connection()));
    auto c = client();
    EXPECT_EQ(render(c.call({"ACL", "WHOAMI"})), "$app");
    EXPECT_EQ(render(c.call({"SELECT", "4"})), "+OK");
    EXPECT_EQ(render(c.call({"RESET"})), "+RESET");
    EXPECT_EQ(render(c.call({"ACL", "WHOAMI"})), "$app");
    // Seen by the server: the client's connection is the sidecar's again (user, name, db).
    const auto line = connection_with_last_command("acl|whoami");
    ASSERT_FALSE(line.empty()) << redis().cli({"CLIENT", "LIST"}).out;
    EXPECT_EQ(field_of(line, "user"), upstream_user) << line;
    EXPECT_EQ(field_of(line, "name").rfind("redis-sidecar:", 0), 0u) << line;
    EXPECT_EQ(field_of(line, "db"), "0") << line;
}

TEST_F(bridge_fidelity, reset_goes_back_to_the_configured_db) {
    bridge_options options = single_quiet_connection();
    options.env["REDIS_DB"] = "2";
    ASSERT_NO_FATAL_FAILURE(start(options));
    ASSERT_TRUE(redis().cli({"-n", "2", "SET", "k", "in-db-2"}).ok());
    auto c = client();
    EXPECT_EQ(render(c.call({"GET", "k"})), "$in-db-2");
    EXPECT_EQ(render(c.call({"SELECT", "3"})), "+OK");
    EXPECT_EQ(render(c.call({"SET", "k", "in-db-3"})), "+OK");
    EXPECT_EQ(render(c.call({"RESET"})), "+RESET");
    EXPECT_EQ(render(c.call({"GET", "k"})), "$in-db-2") << "RESET must land in REDIS_DB, not db 0";
    EXPECT_EQ(render(c.call({"ACL", "WHOAMI"})), "$app");
}

TEST_F(bridge_fidelity, reset_with_a_client_password_requires_auth_again) {
    constexpr std::string_view password = "fidelity-client-pw";
    bridge_options options = single_quiet_connection();
    options.env["REDIS_SIDECAR_CLIENT_PASSWORD"] = std::string(password);
    ASSERT_NO_FATAL_FAILURE(start(options));
    auto c = client();
    EXPECT_EQ(render(c.call({"AUTH", std::string(password)})), "+OK");
    EXPECT_EQ(render(c.call({"SET", "k", "v"})), "+OK");
    EXPECT_EQ(render(c.call({"RESET"})), "+RESET");
    // As Redis does with requirepass: RESET logs the client out.
    EXPECT_EQ(render(c.call({"GET", "k"})), "-NOAUTH Authentication required.");
    EXPECT_EQ(render(c.call({"AUTH", std::string(password)})), "+OK");
    EXPECT_EQ(render(c.call({"GET", "k"})), "$v");
    EXPECT_EQ(render(c.call({"ACL", "WHOAMI"})), "$app");
}

TEST_F(bridge_fidelity, pipeline_with_reset_whole_and_split_at_every_byte) {
    ASSERT_NO_FATAL_FAILURE(start());
    const std::vector<step> pipeline = {{{"SET", "a", "1"}, "+OK"},
                                        {{"MULTI"}, "+OK"},
                                        {{"RESET"}, "+RESET"},
                                        {{"GET", "a"}, "$1"},  // not QUEUED: RESET ended MULTI
                                        {{"ACL", "WHOAMI"}, "$app"}};
    std::string bytes;
    for (const auto& s : pipeline) bytes += encode_command(s.args);

    auto check_replies = [&](resp_client& c, const std::string& how) {
        for (const auto& s : pipeline)
            EXPECT_EQ(render(c.read()), s.expect) << how << ": " << join(s.args);
        EXPECT_TRUE(c.silent_for(10ms)) << how;
    };

    {
        auto c = client();
        c.send_raw(bytes);
        check_replies(c, "whole");
    }
    {
        // One byte per send, with a pause so each byte is a read of its own in the sidecar.
        auto c = client();
        for (const char byte : bytes) {
            c.send_raw(std::string_view(&byte, 1));
            std::this_thread::sleep_for(1ms);
        }
        check_replies(c, "byte by byte");
    }
    // Two pieces, split at every offset; a fresh client each time, so the split also falls
    // inside the first command (the one that leases the upstream connection).
    for (std::size_t at = 1; at < bytes.size(); ++at) {
        auto c = client();
        c.send_raw(std::string_view(bytes).substr(0, at));
        std::this_thread::sleep_for(2ms);
        c.send_raw(std::string_view(bytes).substr(at));
        check_replies(c, "split at " + std::to_string(at));
        if (HasFailure()) break;  // one split's report is enough
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Deep nesting

const std::string self_referencing_script = "local a = {}; local b = {a}; a[1] = b; return a";

/// Arrays `depth` deep, each `width` leaves wide (status, error, integer, bulk with CRLF inside,
/// nil, a small array) plus the next level; a status at the bottom.
const std::string wide_and_deep_script = R"lua(
local depth, width = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = {ok='bottom'}
for level = 1, depth do
  local n = {}
  for i = 1, width do
    local k = (level + i) % 6
    if k == 0 then n[i] = {err='ERR level ' .. level}
    elseif k == 1 then n[i] = {ok='status ' .. level}
    elseif k == 2 then n[i] = level * 1000 + i
    elseif k == 3 then n[i] = 'bulk\r\n' .. level
    elseif k == 4 then n[i] = false
    else n[i] = {i, {}, 'x'} end
  end
  n[width + 1] = t
  t = n
end
return t
)lua";

struct nesting_case {
    std::string name;
    std::vector<std::string> eval;
    std::size_t min_reference_size;  ///< proves the reply is as big as meant
    std::string reference_suffix;    ///< how the direct reply ends
    friend void PrintTo(const nesting_case& c, std::ostream* os) { *os << c.name; }
};

class bridge_fidelity_nesting : public bridge_fidelity,
                                public ::testing::WithParamInterface<nesting_case> {};

TEST_P(bridge_fidelity_nesting,
       reply_reaches_the_client_byte_for_byte_and_the_next_commands_get_theirs) {
    const auto& param = GetParam();
    // One upstream connection: the leaver's (below) is the next client's.
    ASSERT_NO_FATAL_FAILURE(start_with_direct(single_quiet_connection()));
    auto d = direct_client();
    ASSERT_EQ(d.call({"SET", "somekey", "its value"}).text(), "OK");
    d.send(param.eval);
    const auto reference = d.read_raw(20s);
    ASSERT_GE(reference.size(), param.min_reference_size);
    ASSERT_TRUE(reference.ends_with(param.reference_suffix))
        << reference.substr(reference.size() - 100);

    auto c = client();
    // Pipelined: the locally answered AUTH must wait for the whole nested reply.
    c.send_raw(encode_command(param.eval) +
               encode_command({"AUTH", std::string(upstream_password)}) + encode_command({"PING"}) +
               encode_command({"GET", "somekey"}));
    const auto got = c.read_raw(20s);
    EXPECT_TRUE(got == reference) << first_difference(reference, got);
    EXPECT_EQ(render(c.read()), "+OK");
    EXPECT_EQ(render(c.read()), "+PONG");
    EXPECT_EQ(render(c.read()), "$its value");
    // And one at a time on the same connection.
    c.send(param.eval);
    const auto again = c.read_raw(20s);
    EXPECT_TRUE(again == reference) << first_difference(reference, again);
    EXPECT_EQ(render(c.call({"AUTH", std::string(upstream_password)})), "+OK");
    EXPECT_EQ(render(c.call({"PING"})), "+PONG");
    EXPECT_EQ(render(c.call({"GET", "somekey"})), "$its value");
    EXPECT_TRUE(c.silent_for(20ms));
    c.close();

    // A client that leaves before reading it: the one upstream connection must skip the whole
    // reply (and the AUTH after it, never forwarded) before the next client gets it.
    {
        auto leaver = client();
        leaver.send_raw(encode_command(param.eval) + encode_command({"AUTH", "x"}) +
                        encode_command({"PING"}));
    }
    auto next = client();
    EXPECT_EQ(render(next.call({"PING"}, 20s)), "+PONG");
    EXPECT_EQ(render(next.call({"GET", "somekey"})), "$its value");
    EXPECT_TRUE(next.silent_for(20ms));
}

INSTANTIATE_TEST_SUITE_P(
    cases, bridge_fidelity_nesting,
    ::testing::Values(
        // Redis gives up near Lua's stack limit: ~8,000 levels of *1, then an error.
        nesting_case{"self_referencing_table",
                     {"EVAL", self_referencing_script, "0"},
                     4 * 7000,
                     "*1\r\n*1\r\n-ERR reached lua stack limit\r\n"},
        nesting_case{"wide_and_deep_mix",
                     {"EVAL", wide_and_deep_script, "0", "2000", "4"},
                     20 * 2000,
                     "+bottom\r\n"},
        nesting_case{"wide_and_shallow_mix",
                     {"EVAL", wide_and_deep_script, "0", "3", "5000"},
                     20 * 5000,
                     "+bottom\r\n"}),
    [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// 3. Empty and negative multibulk headers

struct empty_command_case {
    std::string name;
    std::string header;
    friend void PrintTo(const empty_command_case& c, std::ostream* os) { *os << c.name; }
};

class bridge_fidelity_empty_command : public bridge_fidelity,
                                      public ::testing::WithParamInterface<empty_command_case> {};

TEST_P(bridge_fidelity_empty_command, is_ignored_as_redis_ignores_it) {
    const auto& param = GetParam();
    ASSERT_NO_FATAL_FAILURE(start_with_direct());
    auto run = [&](resp_client& c) {
        std::vector<std::string> replies;
        // In one write with the next command, then alone.
        c.send_raw(param.header + "PING\r\n");
        replies.push_back(c.read_raw());
        c.send_raw(param.header);
        replies.push_back(c.silent_for(100ms) ? "(nothing, still open)" : "(something)");
        c.send_raw(encode_command({"ECHO", "after"}));
        replies.push_back(c.read_raw());
        // Before commands the sidecar answers itself: nothing is owed for the empty command.
        const auto auth =
            encode_command({"AUTH", std::string(upstream_user), std::string(upstream_password)});
        c.send_raw(param.header + auth + param.header + "PING\r\n");
        replies.push_back(c.read_raw());
        replies.push_back(c.read_raw());
        c.send_raw(param.header + encode_command({"CLIENT", "GETNAME"}) + param.header +
                   encode_command({"RESET"}) + param.header + auth);
        replies.push_back(c.read_raw());
        replies.push_back(c.read_raw());
        replies.push_back(c.read_raw());
        replies.push_back(c.silent_for(20ms) ? "(nothing, still open)" : "(something)");
        return replies;
    };
    auto d = direct_client();
    const auto direct = run(d);
    EXPECT_EQ(direct,
              (std::vector<std::string>{"+PONG\r\n", "(nothing, still open)", "$5\r\nafter\r\n",
                                        "+OK\r\n", "+PONG\r\n", "$-1\r\n", "+RESET\r\n", "+OK\r\n",
                                        "(nothing, still open)"}));
    auto c = client();
    EXPECT_EQ(run(c), direct);
}

INSTANTIATE_TEST_SUITE_P(cases, bridge_fidelity_empty_command,
                         ::testing::Values(empty_command_case{"minus_10", "*-10\r\n"},
                                           empty_command_case{"minus_1", "*-1\r\n"},
                                           empty_command_case{"zero", "*0\r\n"},
                                           empty_command_case{"several", "*-10\r\n*0\r\n*-3\r\n"}),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// 4. REDIS_SIDECAR_CLIENT_AUTH

TEST_F(bridge_fidelity, local_client_auth_answers_another_user_and_counts_it) {
    ASSERT_NO_FATAL_FAILURE(start());
    const std::string metric = "redis_sidecar_client_auth_other_user_total";
    const auto before = metric_sum(metrics(), metric);
    auto c = client();
    EXPECT_EQ(render(c.call({"AUTH", "bob", "bobpass"})), "+OK");
    EXPECT_EQ(render(c.call({"ACL", "WHOAMI"})), "$app");
    EXPECT_EQ(server_command_calls("auth"), 0) << "the sidecar answers AUTH itself";
    std::string text;
    EXPECT_TRUE(eventually(
        [&] {
            text = metrics();
            return metric_sum(text, metric) - before == 1;
        },
        5s))
        << metric << " did not go up by 1:\n"
        << text;
}

TEST_F(bridge_fidelity, passthrough_client_auth_logs_in_as_that_user_upstream) {
    bridge_options options = single_quiet_connection();
    options.env["REDIS_SIDECAR_CLIENT_AUTH"] = "passthrough";
    options.redis_config.push_back("user bob on >bobpass ~bob:* +@all -flushall");
    ASSERT_NO_FATAL_FAILURE(start_with_direct(options));
    {
        auto c = client();
        EXPECT_EQ(render(c.call({"AUTH", "bob", "bobpass"})), "+OK");
        EXPECT_EQ(render(c.call({"ACL", "WHOAMI"})), "$bob");
        // bob's rights, not app's: no FLUSHALL, keys only under bob:.
        EXPECT_EQ(render(c.call({"EVAL", "return redis.acl_check_cmd('flushall')", "0"})), "$nil");
        EXPECT_EQ(render(c.call({"SET", "bob:1", "x"})), "+OK");
        EXPECT_EQ(render(c.call({"SET", "other", "x"})).rfind("-NOPERM", 0), 0u);
        // A wrong password is the upstream's answer, word for word.
        auto d = direct_client();
        const auto direct_wrong = render(d.call({"AUTH", "bob", "wrong"}));
        ASSERT_EQ(direct_wrong.rfind("-WRONGPASS", 0), 0u) << direct_wrong;
        const auto acl_log_before = trim(redis().cli({"ACL", "LOG"}).out);
        EXPECT_EQ(render(c.call({"AUTH", "bob", "wrong"})), direct_wrong);
        EXPECT_NE(trim(redis().cli({"ACL", "LOG"}).out), acl_log_before)
            << "the upstream saw no failed AUTH";
        EXPECT_EQ(render(c.call({"ACL", "WHOAMI"})), "$bob") << "a failed AUTH keeps the user";
    }  // bob's client leaves
    // With one upstream connection, each of these gets the connection bob used (reset and
    // logged in as the sidecar's user again) or its replacement, never bob's session.
    for (int i = 0; i < 3; ++i) {
        SCOPED_TRACE(i);
        auto next = client();
        EXPECT_EQ(render(next.call({"ACL", "WHOAMI"}, 10s)), "$app");
        EXPECT_EQ(render(next.call({"SET", "other", "y"})), "+OK");
    }
}

struct client_auth_config_case {
    std::string name;
    env_map env;
    int exit_code;
    friend void PrintTo(const client_auth_config_case& c, std::ostream* os) { *os << c.name; }
};

class bridge_fidelity_client_auth_config
    : public ::testing::TestWithParam<client_auth_config_case> {};

TEST_P(bridge_fidelity_client_auth_config, is_validated) {
    const auto& param = GetParam();
    env_map env = base_env();
    env["REDIS_ADDR"] = "127.0.0.1:6379";
    for (const auto& [k, v] : param.env) env[k] = v;
    const auto r = run_process({REDIS_SIDECAR_BINARY, "config"}, env, 20s);
    EXPECT_EQ(r.exit_code, param.exit_code) << r;
    if (param.exit_code == 2) {
        EXPECT_NE(r.err.find("REDIS_SIDECAR_CLIENT_AUTH"), std::string::npos) << r;
        EXPECT_EQ(r.err.find("not-echoed-pw"), std::string::npos) << r;
    }
}

INSTANTIATE_TEST_SUITE_P(
    cases, bridge_fidelity_client_auth_config,
    ::testing::Values(
        client_auth_config_case{"local", {{"REDIS_SIDECAR_CLIENT_AUTH", "local"}}, 0},
        client_auth_config_case{"passthrough", {{"REDIS_SIDECAR_CLIENT_AUTH", "passthrough"}}, 0},
        client_auth_config_case{"local_with_client_password",
                                {{"REDIS_SIDECAR_CLIENT_AUTH", "local"},
                                 {"REDIS_SIDECAR_CLIENT_PASSWORD", "not-echoed-pw"}},
                                0},
        // A local password cannot apply when AUTH goes to the upstream.
        client_auth_config_case{"passthrough_with_client_password",
                                {{"REDIS_SIDECAR_CLIENT_AUTH", "passthrough"},
                                 {"REDIS_SIDECAR_CLIENT_PASSWORD", "not-echoed-pw"}},
                                2},
        client_auth_config_case{"invalid_value", {{"REDIS_SIDECAR_CLIENT_AUTH", "maybe"}}, 2}),
    [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// 5. CLIENT GETNAME

TEST_F(bridge_fidelity, client_getname_is_the_clients_own_name) {
    ASSERT_NO_FATAL_FAILURE(start_with_direct());
    const std::vector<step> steps = {
        {{"CLIENT", "GETNAME"}, "$nil"},  // not the sidecar's redis-sidecar:... name
        {{"CLIENT", "SETNAME", "foo"}, "+OK"},
        {{"CLIENT", "GETNAME"}, "$foo"},
        {{"RESET"}, "+RESET"},
        {{"CLIENT", "GETNAME"}, "$nil"},
        {{"HELLO", "2", "SETNAME", "bar"}, ""},
        {{"CLIENT", "GETNAME"}, "$bar"},
        {{"HELLO", "3", "SETNAME", "baz"}, ""},
        {{"CLIENT", "GETNAME"}, "$baz"},
    };
    auto d = direct_client();
    const auto direct = run_steps(d, steps, "direct");
    auto c = client();
    auto through = run_steps(c, steps, "sidecar");
    EXPECT_EQ(through, direct);
}

// ---------------------------------------------------------------------------------------------
// 6. Client-side caching

/// What several clients of one scenario sent and received, in order, ids as labels.
struct transcript {
    std::vector<std::string> lines;
    id_labels ids;

    resp_value call(const std::string& who, resp_client& c, const std::vector<std::string>& args) {
        auto v = c.call(args);
        lines.push_back(who + ": " + join(args, ids) + " -> " + render(v, ids));
        return v;
    }
    /// One reply or push; a missing one is recorded, not thrown, so the transcripts compare.
    void read(const std::string& who, resp_client& c) {
        try {
            lines.push_back(who + ": <- " + render(c.read(3s), ids));
        } catch (const std::runtime_error&) {
            lines.push_back(who + ": <- (nothing within 3s)");
        }
    }
    long long learn_id(const std::string& who, resp_client& c) {
        const auto v = c.call({"CLIENT", "ID"});
        if (v.type == ':') ids[v.integer] = "<id " + who + ">";
        lines.push_back(who + ": CLIENT ID -> " + render(v, ids));
        return v.integer;
    }
    /// PING, recording everything that comes before its PONG (pushes).
    void ping_collect(const std::string& who, resp_client& c) {
        c.send({"PING"});
        for (int i = 0; i < 10; ++i) {
            const auto v = c.read();
            lines.push_back(who + ": <- " + render(v, ids));
            if (v.type == '+' && v.str == "PONG") return;
        }
        lines.push_back(who + ": no PONG among 10 replies");
    }
    std::string text() const {
        std::string out;
        for (const auto& l : lines) out += "  " + l + "\n";
        return out;
    }
};

/// How a scenario reaches the server (directly or through the sidecar).
struct caching_world {
    std::function<resp_client()> connect;
    std::function<bool(long long)> gone;  ///< true once the server no longer lists that client
};

struct caching_case {
    std::string name;
    std::function<void(transcript&, caching_world&)> run;
    std::string direct_must_show;  ///< in the direct transcript: the scenario does what it means
    friend void PrintTo(const caching_case& c, std::ostream* os) { *os << c.name; }
};

std::vector<caching_case> caching_cases() {
    return {
        {"resp2_redirect",
         [](transcript& t, caching_world& w) {
             auto a = w.connect();
             auto b = w.connect();
             auto c = w.connect();
             const auto id = t.learn_id("A", a);
             t.call("A", a, {"SUBSCRIBE", "__redis__:invalidate"});
             t.call("B", b, {"CLIENT", "TRACKING", "on", "REDIRECT", std::to_string(id)});
             t.call("B", b, {"GET", "k"});
             t.call("C", c, {"SET", "k", "v"});
             t.read("A", a);
             t.call("B", b, {"GET", "k"});
             t.call("C", c, {"DEL", "k"});
             t.read("A", a);
             t.call("B", b, {"PING"});
         },
         "A: <- *[$message, $__redis__:invalidate, *[$k]]"},
        {"resp3_push",
         [](transcript& t, caching_world& w) {
             auto b = w.connect();
             auto c = w.connect();
             t.call("B", b, {"HELLO", "3"});
             t.call("B", b, {"CLIENT", "TRACKING", "on"});
             t.call("B", b, {"GET", "k"});
             t.call("C", c, {"SET", "k", "v"});
             t.ping_collect("B", b);
         },
         "B: <- >[$invalidate, *[$k]]"},
        {"optin",
         [](transcript& t, caching_world& w) {
             auto b = w.connect();
             auto c = w.connect();
             t.call("B", b, {"HELLO", "3"});
             t.call("B", b, {"CLIENT", "TRACKING", "on", "OPTIN"});
             t.call("B", b, {"CLIENT", "CACHING", "yes"});
             t.call("B", b, {"GET", "k1"});  // tracked
             t.call("B", b, {"GET", "k2"});  // not
             t.call("C", c, {"SET", "k2", "x"});
             t.call("C", c, {"SET", "k1", "y"});
             t.ping_collect("B", b);
         },
         "B: <- >[$invalidate, *[$k1]]"},
        {"optout",
         [](transcript& t, caching_world& w) {
             auto b = w.connect();
             auto c = w.connect();
             t.call("B", b, {"HELLO", "3"});
             t.call("B", b, {"CLIENT", "TRACKING", "on", "OPTOUT"});
             t.call("B", b, {"CLIENT", "CACHING", "no"});
             t.call("B", b, {"GET", "k1"});  // not tracked
             t.call("B", b, {"GET", "k2"});  // tracked
             t.call("C", c, {"SET", "k1", "x"});
             t.call("C", c, {"SET", "k2", "y"});
             t.ping_collect("B", b);
         },
         "B: <- >[$invalidate, *[$k2]]"},
        {"bcast_prefix",
         [](transcript& t, caching_world& w) {
             auto b = w.connect();
             auto c = w.connect();
             t.call("B", b, {"HELLO", "3"});
             t.call("B", b, {"CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:"});
             t.call("C", c, {"SET", "user:1", "x"});
             t.call("C", c, {"SET", "other:1", "y"});
             t.ping_collect("B", b);
         },
         "B: <- >[$invalidate, *[$user:1]]"},
        {"redirect_target_leaves",
         [](transcript& t, caching_world& w) {
             auto a = w.connect();
             auto b = w.connect();
             auto c = w.connect();
             const auto id = t.learn_id("A", a);
             t.call("B", b, {"HELLO", "3"});
             t.call("B", b, {"CLIENT", "TRACKING", "on", "REDIRECT", std::to_string(id)});
             t.call("B", b, {"GET", "k"});
             a.close();
             // The target's connection must go away with it (not be recycled for someone else).
             t.lines.push_back(w.gone(id) ? "A's connection closed" : "A's connection still open");
             t.call("C", c, {"SET", "k", "v"});
             t.ping_collect("B", b);
         },
         "B: <- >[$tracking-redir-broken, :<id A>]"},
    };
}

class bridge_fidelity_caching : public bridge_fidelity,
                                public ::testing::WithParamInterface<caching_case> {};

TEST_P(bridge_fidelity_caching, same_transcript_as_directly) {
    const auto& param = GetParam();
    ASSERT_NO_FATAL_FAILURE(start_with_direct());
    caching_world direct_world{[this] { return direct_client(); },
                               [this](long long id) { return client_gone(id); }};
    caching_world sidecar_world{[this] { return client(); },
                                [this](long long id) { return client_gone(id); }};

    transcript direct;
    param.run(direct, direct_world);
    ASSERT_NE(direct.text().find(param.direct_must_show), std::string::npos) << direct.text();
    ASSERT_NO_FATAL_FAILURE(flushall());

    transcript through;
    param.run(through, sidecar_world);
    EXPECT_EQ(through.lines, direct.lines) << "direct:\n"
                                           << direct.text() << "through the sidecar:\n"
                                           << through.text();
}

INSTANTIATE_TEST_SUITE_P(cases, bridge_fidelity_caching, ::testing::ValuesIn(caching_cases()),
                         [](const auto& info) { return info.param.name; });

/// A client that knows its connection's identity: the connection must not serve anyone else.
struct identity_case {
    std::string name;
    std::vector<step> steps;
    friend void PrintTo(const identity_case& c, std::ostream* os) { *os << c.name; }
};

class bridge_fidelity_identity : public bridge_fidelity,
                                 public ::testing::WithParamInterface<identity_case> {};

TEST_P(bridge_fidelity_identity, connection_is_closed_not_recycled) {
    ASSERT_NO_FATAL_FAILURE(start(single_quiet_connection()));
    // One upstream connection: the one the client below gets.
    std::set<std::string> ids;
    ASSERT_TRUE(eventually([&] { return (ids = app_connection_ids()).size() == 1; }, 10s))
        << ids.size();
    const auto used = *ids.begin();
    {
        auto c = client();
        run_steps(c, GetParam().steps, "sidecar");
    }
    EXPECT_TRUE(eventually([&] { return app_connection_ids().count(used) == 0; }, 10s))
        << "connection " << used << " is still open after its client left";
    auto next = client();
    const auto id = next.call({"CLIENT", "ID"}, 10s);
    ASSERT_EQ(id.type, ':') << id.text();
    EXPECT_NE(std::to_string(id.integer), used);
}

INSTANTIATE_TEST_SUITE_P(
    cases, bridge_fidelity_identity,
    ::testing::Values(identity_case{"client_id", {{{"CLIENT", "ID"}, ""}}},
                      identity_case{"client_info", {{{"CLIENT", "INFO"}, ""}}},
                      identity_case{"tracking", {{{"CLIENT", "TRACKING", "on"}, "+OK"}}},
                      identity_case{"tracking_resp3",
                                    {{{"HELLO", "3"}, ""}, {{"CLIENT", "TRACKING", "on"}, "+OK"}}}),
    [](const auto& info) { return info.param.name; });

TEST_F(bridge_fidelity, redirect_target_connection_is_closed_when_its_client_leaves) {
    bridge_options options;
    options.env["REDIS_MAX_CONNECTIONS"] = "2";
    // A's own connection (with multiplexing on, A's ECHO shares one: the test below).
    options.env["REDIS_SIDECAR_MULTIPLEX"] = "off";
    options.env["REDIS_SIDECAR_HEALTH_CHECK_INTERVAL"] = "600s";
    ASSERT_NO_FATAL_FAILURE(start(options));
    auto a = client();
    EXPECT_EQ(render(a.call({"ECHO", "redirect target"})), "$redirect target");
    // A never asks for its id; B learns it from the server, as an application could.
    const auto line = connection_with_last_command("echo");
    ASSERT_FALSE(line.empty()) << redis().cli({"CLIENT", "LIST"}).out;
    const auto target = field_of(line, "id");
    auto b = client();
    EXPECT_EQ(render(b.call({"CLIENT", "TRACKING", "on", "REDIRECT", target})), "+OK");
    a.close();
    EXPECT_TRUE(eventually([&] { return app_connection_ids().count(target) == 0; }, 10s))
        << "the redirect target's connection " << target << " outlived its client";
    EXPECT_EQ(render(b.call({"PING"})), "+PONG");
}

TEST_F(bridge_fidelity, a_shared_connection_named_as_redirect_target_sends_nothing_astray) {
    bridge_options options;
    options.env["REDIS_SIDECAR_MULTIPLEX"] = "on";
    options.env["REDIS_SIDECAR_SHARED_CONNECTIONS"] = "1";
    options.env["REDIS_SIDECAR_HEALTH_CHECK_INTERVAL"] = "600s";
    ASSERT_NO_FATAL_FAILURE(start(options));
    auto a = client();
    EXPECT_EQ(render(a.call({"SET", "k", "1"})), "+OK");
    EXPECT_EQ(render(a.call({"ECHO", "shared"})), "$shared");
    // B learns the shared connection's id from the server and sends its invalidations there.
    const auto line = connection_with_last_command("echo");
    ASSERT_FALSE(line.empty()) << redis().cli({"CLIENT", "LIST"}).out;
    const auto target = field_of(line, "id");
    auto b = client();
    EXPECT_EQ(render(b.call({"CLIENT", "TRACKING", "on", "REDIRECT", target})), "+OK");
    EXPECT_EQ(render(b.call({"GET", "k"})), "$1");
    // The key changes: Redis owes B an invalidation, on a RESP2 connection not subscribed to
    // __redis__:invalidate, so it sends none; A's replies stay A's.
    EXPECT_TRUE(redis().cli({"SET", "k", "2"}).ok());
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(render(a.call({"ECHO", std::to_string(i)})), "$" + std::to_string(i));
    }
    EXPECT_EQ(render(a.call({"GET", "k"})), "$2");
    EXPECT_TRUE(a.silent_for(20ms));
    EXPECT_EQ(render(b.call({"PING"})), "+PONG");
    EXPECT_TRUE(b.silent_for(20ms));
    a.close();
    EXPECT_EQ(app_connection_ids().count(target), 1u) << "the shared connection outlives A";
}

// A client that picks a shared connection avoids one streaming a large value: its command
// would wait for the whole transfer (here forever: the value's reader has stopped reading).
TEST_F(bridge_fidelity, a_new_command_avoids_the_shared_connection_streaming_a_large_value) {
    bridge_options options;
    options.env["REDIS_SIDECAR_MULTIPLEX"] = "on";
    options.env["REDIS_SIDECAR_SHARED_CONNECTIONS"] = "2";
    options.env["REDIS_SOCKET_TIMEOUT"] = "60s";  // the stopped reader is not cut off meanwhile
    options.env["REDIS_SIDECAR_HEALTH_CHECK_INTERVAL"] = "600s";
    ASSERT_NO_FATAL_FAILURE(start(options));
    constexpr std::size_t size = 64u * 1024 * 1024;
    ASSERT_TRUE(redis().cli({"SETRANGE", "big", std::to_string(size - 1), "x"}).ok());

    // A's GET opens the first shared connection; A reads the reply's first bytes, then stops.
    // Bytes read straight from a socket, at most `limit`; 0 at the deadline or the end.
    const auto recv_some = [](int fd, std::string& into, std::size_t limit) -> std::size_t {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10'000) != 1) return 0;
        const auto n = ::recv(fd, into.data(), std::min(limit, into.size()), MSG_DONTWAIT);
        return n > 0 ? static_cast<std::size_t>(n) : 0;
    };
    auto a = client();
    a.send({"GET", "big"});
    std::string head(64, '\0');
    const std::size_t first = recv_some(a.fd(), head, head.size());
    ASSERT_GT(first, 0u) << "the big reply did not begin";
    // C's slow script (2 s; the server runs nothing else meanwhile) opens the second one.
    auto c = client();
    c.send({"EVAL",
            "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] repeat local n = "
            "redis.call('TIME') until n[1] * 1e6 + n[2] - s > 2e6 return 1",
            "0"});
    std::this_thread::sleep_for(200ms);  // C's command reaches the sidecar first
    // Both connections have one command in flight; only the second answers anything soon.
    auto b = client();
    EXPECT_EQ(render(b.call({"PING"}, 10s)), "+PONG")
        << "B's command queued behind a 64 MB reply nobody reads";
    EXPECT_EQ(render(c.read(10s)), ":1");

    // A reads the rest: all of it arrives, in one piece.
    const std::string header = "$" + std::to_string(size) + "\r\n";
    const std::size_t whole = header.size() + size + 2;
    std::size_t got = first;
    std::string buf(1 << 20, '\0');
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (got < whole && std::chrono::steady_clock::now() < deadline) {
        const std::size_t n = recv_some(a.fd(), buf, whole - got);
        if (n == 0) break;
        got += n;
    }
    EXPECT_EQ(got, whole);
    EXPECT_EQ(head.substr(0, std::min(first, header.size())),
              header.substr(0, std::min(first, header.size())));
    EXPECT_EQ(render(a.call({"PING"})), "+PONG");
}

// ---------------------------------------------------------------------------------------------
// 7. Property: random pipelines, through the sidecar and directly

struct generated_pipeline {
    std::string bytes;
    std::vector<std::string> commands;  ///< readable, one per reply owed
    std::size_t evals = 0;
};

/// Random pipelines of locally answered and forwarded commands with replies of random shape.
class pipeline_generator {
  public:
    explicit pipeline_generator(std::uint64_t seed) : rng_(seed) {}

    generated_pipeline next(int max_commands) {
        generated_pipeline p;
        const int count = pick(1, max_commands);
        for (int i = 0; i < count; ++i) add_command(p);
        return p;
    }

  private:
    int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    bool chance(int percent) { return pick(1, 100) <= percent; }

    std::string word(int min_len, int max_len) {
        static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        std::string w(static_cast<std::size_t>(pick(min_len, max_len)), 'a');
        for (auto& ch : w) {
            ch = alphabet[static_cast<std::size_t>(pick(0, static_cast<int>(alphabet.size()) - 1))];
        }
        return w;
    }
    std::string key() { return "key:" + std::to_string(pick(0, 4)); }
    /// Mostly short words; sometimes binary (CRLF, NUL, quotes) or bigger than 16 KiB.
    std::string value() {
        if (chance(5))
            return std::string(static_cast<std::size_t>(pick(16 * 1024, 48 * 1024)), 'v');
        if (chance(10)) return std::string("a\r\nb\0c\"d", 8) + word(0, 5);
        if (chance(20)) return std::to_string(pick(-100, 100));
        return word(0, 12);
    }

    void add(generated_pipeline& p, const std::vector<std::string>& args) {
        p.bytes += encode_command(args);
        std::string shown = join(args);
        if (shown.size() > 120) shown = shown.substr(0, 120) + "...";
        p.commands.push_back(shown);
    }
    void add_inline(generated_pipeline& p, const std::string& line) {
        p.bytes += line + "\r\n";
        p.commands.push_back("(inline) " + line);
    }

    void add_command(generated_pipeline& p) {
        const std::string password(upstream_password);
        switch (pick(0, 18)) {
            // Answered (or possibly answered) by the sidecar.
            case 0:
                add(p, {"AUTH", std::string(upstream_user), password});
                break;
            case 1:
                add(p, {"CLIENT", "GETNAME"});
                break;
            case 2:
                add(p, {"CLIENT", "SETNAME", "n" + word(1, 6)});
                break;
            case 3:
                add(p, chance(50) ? std::vector<std::string>{"PING"}
                                  : std::vector<std::string>{"PING", word(0, 8)});
                break;
            case 4:
                // RESET, then AUTH as the sidecar's user so the direct connection stays app.
                add(p, {"RESET"});
                add(p, {"AUTH", std::string(upstream_user), password});
                break;
            case 5:
                add(p, {"HELLO", "2"});
                break;
            // Forwarded.
            case 6:
                add(p, {"SET", key(), value()});
                break;
            case 7:
                add(p, {"GET", key()});
                break;
            case 8:
                add(p, {"INCR", key()});
                break;
            case 9:
                add(p, {"DEL", key(), key()});
                break;
            case 10:
                add(p, {"ECHO", value()});
                break;
            case 11:
            case 12:
            case 13:
                add(p, {"EVAL", lua_script(), "0"});
                ++p.evals;
                break;
            case 14: {
                const std::string inline_commands[] = {
                    "PING",          "ECHO " + word(1, 8),
                    "GET " + key(),  "SET " + key() + " " + word(1, 8),
                    "INCR " + key(), "CLIENT GETNAME"};
                add_inline(p, inline_commands[pick(0, 5)]);
                break;
            }
            case 15:
                p.bytes += "*-3\r\n";  // an empty command: no reply owed
                break;
            case 16:
                add(p, {"ACL", "WHOAMI"});
                break;  // app at every point, RESET or not
            default:
                add(p, {"EXISTS", key()});
                break;
        }
    }

    /// A leaf of a Lua reply: every RESP2 type a script can produce, and small arrays.
    std::string lua_leaf(int nest) {
        switch (pick(0, nest > 0 ? 8 : 7)) {
            case 0:
                return std::to_string(pick(-1000000, 1000000));
            case 1:
                return "'" + word(0, 8) + "'";
            case 2:
                return "'" + word(0, 3) + "\\r\\n" + word(0, 3) + "'";  // CRLF inside a bulk
            case 3:
                return "{err='ERR " + word(1, 8) + "'}";
            case 4:
                return "{ok='" + word(1, 8) + "'}";
            case 5:
                return "false";  // nil bulk
            case 6:
                return "{}";  // empty array
            case 7:
                return std::to_string(pick(0, 99)) + ".5";  // a number: truncated to an integer
            default: {
                std::string t = "{";
                const int n = pick(1, 3);
                for (int i = 0; i < n; ++i) t += (i > 0 ? "," : "") + lua_leaf(nest - 1);
                return t + "}";
            }
        }
    }

    /// A script returning arrays nested to a random depth (up to 300), each level with random
    /// leaves around the next level. Built level by level in statements: a table constructor
    /// nested that deep would exceed Lua's parser limit.
    std::string lua_script() {
        const int r = pick(1, 100);
        const int depth = r <= 40 ? 0 : r <= 85 ? pick(1, 20) : pick(21, 300);
        if (depth == 0) return "return " + lua_leaf(2);
        std::string s = "local s = {}\n";
        for (int level = 1; level <= depth; ++level) {
            std::string t = "{";
            const int before = pick(0, 3);
            const int after = pick(0, 2);
            bool first = true;
            auto put = [&](const std::string& item) {
                t += (first ? "" : ",") + item;
                first = false;
            };
            for (int i = 0; i < before; ++i) put(lua_leaf(2));
            if (level > 1) put("s[" + std::to_string(level - 1) + "]");
            for (int i = 0; i < after; ++i) put(lua_leaf(2));
            s += "s[" + std::to_string(level) + "] = " + t + "}\n";
        }
        return s + "return s[" + std::to_string(depth) + "]";
    }

    std::mt19937_64 rng_;
};

class bridge_fidelity_property : public bridge_fidelity {
  protected:
    /// Runs up to `pipelines` random pipelines (at most 40 commands each) through the sidecar and
    /// directly, comparing replies one for one; stops at the first difference.
    void run_random_pipelines(std::uint64_t seed, int pipelines, std::chrono::seconds budget) {
        std::cout << "[fidelity] seed " << seed << " (replay with FIDELITY_SEED=" << seed << ")\n";
        RecordProperty("seed", std::to_string(seed));
        pipeline_generator gen(seed);
        std::mt19937_64 split_rng(seed ^ 0x9e3779b97f4a7c15ULL);
        const auto deadline = steady::now() + budget;
        auto direct = direct_client();
        auto through = client();
        int done = 0;
        std::size_t replies_compared = 0;
        std::size_t evals = 0;
        for (; done < pipelines && steady::now() < deadline; ++done) {
            if (done % 25 == 24) {
                // New clients lease connections too; both sides start afresh (no name left).
                direct = direct_client();
                through = client();
            }
            const auto p = gen.next(40);
            evals += p.evals;
            auto where = [&](std::size_t i) {
                return "seed " + std::to_string(seed) + ", pipeline " + std::to_string(done) +
                       ", reply " + std::to_string(i) + " of " + std::to_string(p.commands.size()) +
                       ": " + p.commands[i];
            };
            try {
                // Both runs start from the same (empty) data.
                ASSERT_EQ(direct.call({"FLUSHALL"}).text(), "OK");
                direct.send_raw(p.bytes);
                std::vector<std::string> expected;
                for (std::size_t i = 0; i < p.commands.size(); ++i) {
                    expected.push_back(mask_hello_id(direct.read_raw(10s)));
                    ASSERT_EQ(expected.back().find("Error compiling script"), std::string::npos)
                        << "the generator wrote bad Lua: " << where(i);
                }
                ASSERT_EQ(direct.call({"FLUSHALL"}).text(), "OK");

                // Through the sidecar in 1-4 random pieces.
                std::size_t at = 0;
                const int pieces = std::uniform_int_distribution<int>(1, 4)(split_rng);
                for (int k = 1; k < pieces && at < p.bytes.size(); ++k) {
                    const auto len = std::uniform_int_distribution<std::size_t>(
                        0, p.bytes.size() - at)(split_rng);
                    through.send_raw(std::string_view(p.bytes).substr(at, len));
                    at += len;
                }
                through.send_raw(std::string_view(p.bytes).substr(at));
                for (std::size_t i = 0; i < p.commands.size(); ++i) {
                    const auto got = mask_hello_id(through.read_raw(10s));
                    ASSERT_TRUE(got == expected[i]) << where(i) << "\n"
                                                    << first_difference(expected[i], got);
                    ++replies_compared;
                }
            } catch (const std::exception& e) {
                FAIL() << "seed " << seed << ", pipeline " << done << ": " << e.what();
            }
        }
        EXPECT_TRUE(through.silent_for(50ms)) << "a reply nobody asked for";
        std::cout << "[fidelity] " << done << " pipelines, " << replies_compared
                  << " replies compared, " << evals << " scripts\n";
        EXPECT_GT(replies_compared, 0u);
    }
};

TEST_F(bridge_fidelity_property, random_pipelines_fixed_seed) {
    ASSERT_NO_FATAL_FAILURE(start_with_direct());
    run_random_pipelines(20240611, 200, 120s);
}

TEST_F(bridge_fidelity_property, random_pipelines_random_seed) {
    ASSERT_NO_FATAL_FAILURE(start_with_direct());
    std::uint64_t seed = std::random_device{}();
    seed = (seed << 32) ^ std::random_device{}();
    if (const char* env = std::getenv("FIDELITY_SEED"); env != nullptr && *env != '\0') {
        seed = std::stoull(env);
    }
    run_random_pipelines(seed, 200, 120s);
}

}  // namespace
}  // namespace redis_sidecar::bridge_test
