#include "redis_sidecar/mux/classify.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace redis_sidecar::mux {
namespace {

struct expected_row {
    std::string_view name;
    route where;
    pin_reason reason;
};

// Every row of the table and the class it must give, command by command. A row added to the
// table without a line here fails every_row_is_listed_here.
constexpr expected_row expected[] = {
    {"acl", route::shareable, pin_reason::none},
    {"append", route::shareable, pin_reason::none},
    {"asking", route::dedicated, pin_reason::connection_state},
    {"auth", route::dedicated, pin_reason::connection_state},
    {"bgrewriteaof", route::shareable, pin_reason::none},
    {"bgsave", route::shareable, pin_reason::none},
    {"bitcount", route::shareable, pin_reason::none},
    {"bitfield", route::shareable, pin_reason::none},
    {"bitfield_ro", route::shareable, pin_reason::none},
    {"bitop", route::shareable, pin_reason::none},
    {"bitpos", route::shareable, pin_reason::none},
    {"blmove", route::dedicated, pin_reason::blocking},
    {"blmpop", route::dedicated, pin_reason::blocking},
    {"blpop", route::dedicated, pin_reason::blocking},
    {"brpop", route::dedicated, pin_reason::blocking},
    {"brpoplpush", route::dedicated, pin_reason::blocking},
    {"bzmpop", route::dedicated, pin_reason::blocking},
    {"bzpopmax", route::dedicated, pin_reason::blocking},
    {"bzpopmin", route::dedicated, pin_reason::blocking},
    {"client", route::dedicated, pin_reason::connection_state},
    {"client|caching", route::dedicated, pin_reason::connection_state},
    {"client|getname", route::shareable, pin_reason::none},
    {"client|getredir", route::shareable, pin_reason::none},
    {"client|help", route::shareable, pin_reason::none},
    {"client|id", route::dedicated, pin_reason::connection_state},
    {"client|info", route::dedicated, pin_reason::connection_state},
    {"client|kill", route::dedicated, pin_reason::connection_state},
    {"client|list", route::shareable, pin_reason::none},
    {"client|no-evict", route::dedicated, pin_reason::connection_state},
    {"client|no-touch", route::dedicated, pin_reason::connection_state},
    {"client|pause", route::shareable, pin_reason::none},
    {"client|reply", route::dedicated, pin_reason::connection_state},
    {"client|setinfo", route::shareable, pin_reason::none},
    {"client|setname", route::dedicated, pin_reason::connection_state},
    {"client|tracking", route::dedicated, pin_reason::connection_state},
    {"client|trackinginfo", route::shareable, pin_reason::none},
    {"client|unblock", route::shareable, pin_reason::none},
    {"client|unpause", route::shareable, pin_reason::none},
    {"cluster", route::shareable, pin_reason::none},
    {"command", route::shareable, pin_reason::none},
    {"config", route::shareable, pin_reason::none},
    {"copy", route::shareable, pin_reason::none},
    {"dbsize", route::shareable, pin_reason::none},
    {"debug", route::dedicated, pin_reason::admin},
    {"decr", route::shareable, pin_reason::none},
    {"decrby", route::shareable, pin_reason::none},
    {"del", route::shareable, pin_reason::none},
    {"discard", route::dedicated, pin_reason::transaction},
    {"dump", route::shareable, pin_reason::none},
    {"echo", route::shareable, pin_reason::none},
    {"eval", route::shareable, pin_reason::none},
    {"eval_ro", route::shareable, pin_reason::none},
    {"evalsha", route::shareable, pin_reason::none},
    {"evalsha_ro", route::shareable, pin_reason::none},
    {"exec", route::dedicated, pin_reason::transaction},
    {"exists", route::shareable, pin_reason::none},
    {"expire", route::shareable, pin_reason::none},
    {"expireat", route::shareable, pin_reason::none},
    {"expiretime", route::shareable, pin_reason::none},
    {"failover", route::shareable, pin_reason::none},
    {"fcall", route::shareable, pin_reason::none},
    {"fcall_ro", route::shareable, pin_reason::none},
    {"flushall", route::shareable, pin_reason::none},
    {"flushdb", route::shareable, pin_reason::none},
    {"function", route::shareable, pin_reason::none},
    {"geoadd", route::shareable, pin_reason::none},
    {"geodist", route::shareable, pin_reason::none},
    {"geohash", route::shareable, pin_reason::none},
    {"geopos", route::shareable, pin_reason::none},
    {"georadius", route::shareable, pin_reason::none},
    {"georadius_ro", route::shareable, pin_reason::none},
    {"georadiusbymember", route::shareable, pin_reason::none},
    {"georadiusbymember_ro", route::shareable, pin_reason::none},
    {"geosearch", route::shareable, pin_reason::none},
    {"geosearchstore", route::shareable, pin_reason::none},
    {"get", route::shareable, pin_reason::none},
    {"getbit", route::shareable, pin_reason::none},
    {"getdel", route::shareable, pin_reason::none},
    {"getex", route::shareable, pin_reason::none},
    {"getrange", route::shareable, pin_reason::none},
    {"getset", route::shareable, pin_reason::none},
    {"hdel", route::shareable, pin_reason::none},
    {"hello", route::shareable, pin_reason::none},
    {"hexists", route::shareable, pin_reason::none},
    {"hexpire", route::shareable, pin_reason::none},
    {"hexpireat", route::shareable, pin_reason::none},
    {"hexpiretime", route::shareable, pin_reason::none},
    {"hget", route::shareable, pin_reason::none},
    {"hgetall", route::shareable, pin_reason::none},
    {"hgetdel", route::shareable, pin_reason::none},
    {"hgetex", route::shareable, pin_reason::none},
    {"hincrby", route::shareable, pin_reason::none},
    {"hincrbyfloat", route::shareable, pin_reason::none},
    {"hkeys", route::shareable, pin_reason::none},
    {"hlen", route::shareable, pin_reason::none},
    {"hmget", route::shareable, pin_reason::none},
    {"hmset", route::shareable, pin_reason::none},
    {"hpersist", route::shareable, pin_reason::none},
    {"hpexpire", route::shareable, pin_reason::none},
    {"hpexpireat", route::shareable, pin_reason::none},
    {"hpexpiretime", route::shareable, pin_reason::none},
    {"hpttl", route::shareable, pin_reason::none},
    {"hrandfield", route::shareable, pin_reason::none},
    {"hscan", route::shareable, pin_reason::none},
    {"hset", route::shareable, pin_reason::none},
    {"hsetex", route::shareable, pin_reason::none},
    {"hsetnx", route::shareable, pin_reason::none},
    {"hstrlen", route::shareable, pin_reason::none},
    {"httl", route::shareable, pin_reason::none},
    {"hvals", route::shareable, pin_reason::none},
    {"incr", route::shareable, pin_reason::none},
    {"incrby", route::shareable, pin_reason::none},
    {"incrbyfloat", route::shareable, pin_reason::none},
    {"info", route::shareable, pin_reason::none},
    {"keys", route::shareable, pin_reason::none},
    {"lastsave", route::shareable, pin_reason::none},
    {"latency", route::shareable, pin_reason::none},
    {"lcs", route::shareable, pin_reason::none},
    {"lindex", route::shareable, pin_reason::none},
    {"linsert", route::shareable, pin_reason::none},
    {"llen", route::shareable, pin_reason::none},
    {"lmove", route::shareable, pin_reason::none},
    {"lmpop", route::shareable, pin_reason::none},
    {"lolwut", route::shareable, pin_reason::none},
    {"lpop", route::shareable, pin_reason::none},
    {"lpos", route::shareable, pin_reason::none},
    {"lpush", route::shareable, pin_reason::none},
    {"lpushx", route::shareable, pin_reason::none},
    {"lrange", route::shareable, pin_reason::none},
    {"lrem", route::shareable, pin_reason::none},
    {"lset", route::shareable, pin_reason::none},
    {"ltrim", route::shareable, pin_reason::none},
    {"memory", route::shareable, pin_reason::none},
    {"mget", route::shareable, pin_reason::none},
    {"migrate", route::shareable, pin_reason::none},
    {"module", route::shareable, pin_reason::none},
    {"monitor", route::dedicated, pin_reason::pubsub},
    {"move", route::shareable, pin_reason::none},
    {"mset", route::shareable, pin_reason::none},
    {"msetnx", route::shareable, pin_reason::none},
    {"multi", route::dedicated, pin_reason::transaction},
    {"object", route::shareable, pin_reason::none},
    {"persist", route::shareable, pin_reason::none},
    {"pexpire", route::shareable, pin_reason::none},
    {"pexpireat", route::shareable, pin_reason::none},
    {"pexpiretime", route::shareable, pin_reason::none},
    {"pfadd", route::shareable, pin_reason::none},
    {"pfcount", route::shareable, pin_reason::none},
    {"pfdebug", route::shareable, pin_reason::none},
    {"pfmerge", route::shareable, pin_reason::none},
    {"pfselftest", route::shareable, pin_reason::none},
    {"ping", route::shareable, pin_reason::none},
    {"psetex", route::shareable, pin_reason::none},
    {"psubscribe", route::dedicated, pin_reason::pubsub},
    {"psync", route::dedicated, pin_reason::connection_state},
    {"pttl", route::shareable, pin_reason::none},
    {"publish", route::shareable, pin_reason::none},
    {"pubsub", route::shareable, pin_reason::none},
    {"punsubscribe", route::dedicated, pin_reason::pubsub},
    {"quit", route::dedicated, pin_reason::connection_state},
    {"randomkey", route::shareable, pin_reason::none},
    {"readonly", route::dedicated, pin_reason::connection_state},
    {"readwrite", route::dedicated, pin_reason::connection_state},
    {"rename", route::shareable, pin_reason::none},
    {"renamenx", route::shareable, pin_reason::none},
    {"replconf", route::dedicated, pin_reason::connection_state},
    {"replicaof", route::shareable, pin_reason::none},
    {"reset", route::dedicated, pin_reason::connection_state},
    {"restore", route::shareable, pin_reason::none},
    {"role", route::shareable, pin_reason::none},
    {"rpop", route::shareable, pin_reason::none},
    {"rpoplpush", route::shareable, pin_reason::none},
    {"rpush", route::shareable, pin_reason::none},
    {"rpushx", route::shareable, pin_reason::none},
    {"sadd", route::shareable, pin_reason::none},
    {"save", route::shareable, pin_reason::none},
    {"scan", route::shareable, pin_reason::none},
    {"scard", route::shareable, pin_reason::none},
    {"script", route::shareable, pin_reason::none},
    {"sdiff", route::shareable, pin_reason::none},
    {"sdiffstore", route::shareable, pin_reason::none},
    {"select", route::dedicated, pin_reason::connection_state},
    {"set", route::shareable, pin_reason::none},
    {"setbit", route::shareable, pin_reason::none},
    {"setex", route::shareable, pin_reason::none},
    {"setnx", route::shareable, pin_reason::none},
    {"setrange", route::shareable, pin_reason::none},
    {"shutdown", route::dedicated, pin_reason::admin},
    {"sinter", route::shareable, pin_reason::none},
    {"sintercard", route::shareable, pin_reason::none},
    {"sinterstore", route::shareable, pin_reason::none},
    {"sismember", route::shareable, pin_reason::none},
    {"slaveof", route::shareable, pin_reason::none},
    {"slowlog", route::shareable, pin_reason::none},
    {"smembers", route::shareable, pin_reason::none},
    {"smismember", route::shareable, pin_reason::none},
    {"smove", route::shareable, pin_reason::none},
    {"sort", route::shareable, pin_reason::none},
    {"sort_ro", route::shareable, pin_reason::none},
    {"spop", route::shareable, pin_reason::none},
    {"spublish", route::shareable, pin_reason::none},
    {"srandmember", route::shareable, pin_reason::none},
    {"srem", route::shareable, pin_reason::none},
    {"sscan", route::shareable, pin_reason::none},
    {"ssubscribe", route::dedicated, pin_reason::pubsub},
    {"strlen", route::shareable, pin_reason::none},
    {"subscribe", route::dedicated, pin_reason::pubsub},
    {"substr", route::shareable, pin_reason::none},
    {"sunion", route::shareable, pin_reason::none},
    {"sunionstore", route::shareable, pin_reason::none},
    {"sunsubscribe", route::dedicated, pin_reason::pubsub},
    {"swapdb", route::shareable, pin_reason::none},
    {"sync", route::dedicated, pin_reason::connection_state},
    {"time", route::shareable, pin_reason::none},
    {"touch", route::shareable, pin_reason::none},
    {"ttl", route::shareable, pin_reason::none},
    {"type", route::shareable, pin_reason::none},
    {"unlink", route::shareable, pin_reason::none},
    {"unsubscribe", route::dedicated, pin_reason::pubsub},
    {"unwatch", route::dedicated, pin_reason::transaction},
    {"wait", route::dedicated, pin_reason::blocking},
    {"waitaof", route::dedicated, pin_reason::blocking},
    {"watch", route::dedicated, pin_reason::transaction},
    {"xack", route::shareable, pin_reason::none},
    {"xackdel", route::shareable, pin_reason::none},
    {"xadd", route::shareable, pin_reason::none},
    {"xautoclaim", route::shareable, pin_reason::none},
    {"xclaim", route::shareable, pin_reason::none},
    {"xdel", route::shareable, pin_reason::none},
    {"xdelex", route::shareable, pin_reason::none},
    {"xgroup", route::shareable, pin_reason::none},
    {"xinfo", route::shareable, pin_reason::none},
    {"xlen", route::shareable, pin_reason::none},
    {"xpending", route::shareable, pin_reason::none},
    {"xrange", route::shareable, pin_reason::none},
    {"xread", route::shareable, pin_reason::none},
    {"xreadgroup", route::shareable, pin_reason::none},
    {"xrevrange", route::shareable, pin_reason::none},
    {"xsetid", route::shareable, pin_reason::none},
    {"xtrim", route::shareable, pin_reason::none},
    {"zadd", route::shareable, pin_reason::none},
    {"zcard", route::shareable, pin_reason::none},
    {"zcount", route::shareable, pin_reason::none},
    {"zdiff", route::shareable, pin_reason::none},
    {"zdiffstore", route::shareable, pin_reason::none},
    {"zincrby", route::shareable, pin_reason::none},
    {"zinter", route::shareable, pin_reason::none},
    {"zintercard", route::shareable, pin_reason::none},
    {"zinterstore", route::shareable, pin_reason::none},
    {"zlexcount", route::shareable, pin_reason::none},
    {"zmpop", route::shareable, pin_reason::none},
    {"zmscore", route::shareable, pin_reason::none},
    {"zpopmax", route::shareable, pin_reason::none},
    {"zpopmin", route::shareable, pin_reason::none},
    {"zrandmember", route::shareable, pin_reason::none},
    {"zrange", route::shareable, pin_reason::none},
    {"zrangebylex", route::shareable, pin_reason::none},
    {"zrangebyscore", route::shareable, pin_reason::none},
    {"zrangestore", route::shareable, pin_reason::none},
    {"zrank", route::shareable, pin_reason::none},
    {"zrem", route::shareable, pin_reason::none},
    {"zremrangebylex", route::shareable, pin_reason::none},
    {"zremrangebyrank", route::shareable, pin_reason::none},
    {"zremrangebyscore", route::shareable, pin_reason::none},
    {"zrevrange", route::shareable, pin_reason::none},
    {"zrevrangebylex", route::shareable, pin_reason::none},
    {"zrevrangebyscore", route::shareable, pin_reason::none},
    {"zrevrank", route::shareable, pin_reason::none},
    {"zscan", route::shareable, pin_reason::none},
    {"zscore", route::shareable, pin_reason::none},
    {"zunion", route::shareable, pin_reason::none},
    {"zunionstore", route::shareable, pin_reason::none},
};

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

// "client|id" → classify("client", {"id"}); others → classify(name).
classification classify_row(std::string_view name, bool upper_case) {
    const auto bar = name.find('|');
    std::string command(name.substr(0, bar));
    std::string sub(bar == std::string_view::npos ? "" : name.substr(bar + 1));
    if (upper_case) {
        command = upper(command);
        sub = upper(sub);
    }
    if (bar == std::string_view::npos) return classify(command);
    const std::string_view args[] = {sub};
    return classify(command, args);
}

class command_class_test : public ::testing::TestWithParam<expected_row> {};

TEST_P(command_class_test, classified_as_listed_in_any_case) {
    const auto& row = GetParam();
    const classification want{row.where, row.reason};
    EXPECT_EQ(classify_row(row.name, false), want) << row.name;
    EXPECT_EQ(classify_row(row.name, true), want) << row.name;
    EXPECT_NE(find_command(upper(row.name)), nullptr) << row.name;
}

INSTANTIATE_TEST_SUITE_P(every_row, command_class_test, ::testing::ValuesIn(expected),
                         [](const ::testing::TestParamInfo<expected_row>& info) {
                             std::string name(info.param.name);
                             for (auto& c : name) {
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             }
                             return name;
                         });

TEST(command_table, every_row_is_listed_here) {
    std::set<std::string_view> listed;
    for (const auto& e : expected) listed.insert(e.name);
    std::set<std::string_view> table;
    for (const auto& row : command_table()) table.insert(row.name);
    EXPECT_EQ(listed, table);
    EXPECT_EQ(command_table().size(), std::size(expected));
}

TEST(command_table, only_argument_rules_depend_on_arguments) {
    std::set<std::string_view> depends;
    for (const auto& row : command_table()) {
        if (depends_on_arguments(row.name)) depends.insert(row.name);
    }
    EXPECT_EQ(depends, (std::set<std::string_view>{"client", "hello", "xread", "xreadgroup"}));
    EXPECT_TRUE(depends_on_arguments("XREAD"));
    EXPECT_FALSE(depends_on_arguments("GET"));
    EXPECT_FALSE(depends_on_arguments("no-such-command"));
}

TEST(classify, unknown_commands_are_dedicated) {
    const classification unknown{route::dedicated, pin_reason::unknown};
    const std::string_view names[] = {
        "",   "json.get",  "ft.search", "no-such-command",           "getx",
        "ge", "client|id", "|",         std::string_view("get\0", 4)};
    for (const auto name : names) {
        EXPECT_EQ(classify(name), unknown) << name;
    }
    EXPECT_EQ(classify(std::string(100, 'a')), unknown);
    EXPECT_EQ(find_command(std::string(100, 'a')), nullptr);
}

struct argument_case {
    std::string_view name;
    std::vector<std::string_view> args;
    classification want;
};

constexpr classification shareable{route::shareable, pin_reason::none};
constexpr classification blocking{route::dedicated, pin_reason::blocking};
constexpr classification state{route::dedicated, pin_reason::connection_state};
constexpr classification unknown{route::dedicated, pin_reason::unknown};

class argument_test : public ::testing::TestWithParam<argument_case> {};

TEST_P(argument_test, classified) {
    const auto& c = GetParam();
    EXPECT_EQ(classify(c.name, c.args), c.want);
}

INSTANTIATE_TEST_SUITE_P(
    cases, argument_test,
    ::testing::Values(
        // XREAD / XREADGROUP: blocking only with BLOCK before STREAMS.
        argument_case{"xread", {"streams", "s", "0"}, shareable},
        argument_case{"xread", {"count", "10", "streams", "s", "0"}, shareable},
        argument_case{"XREAD", {"BLOCK", "0", "STREAMS", "s", "$"}, blocking},
        argument_case{"xread", {"count", "5", "Block", "100", "streams", "s", "$"}, blocking},
        argument_case{"xread", {"streams", "block", "0"}, shareable},  // a key named block
        argument_case{"xread", {}, shareable},                         // Redis' syntax error
        argument_case{"xreadgroup", {"group", "g", "c", "streams", "s", ">"}, shareable},
        argument_case{"xreadgroup",
                      {"GROUP", "block", "block", "STREAMS", "s", ">"},
                      shareable},  // a group and a consumer named block
        argument_case{"xreadgroup",
                      {"group", "g", "c", "noack", "block", "0", "streams", "s", ">"},
                      blocking},
        argument_case{"xreadgroup",
                      {"group", "g", "c", "count", "block", "streams", "s", ">"},
                      shareable},  // COUNT's value, however odd, is not the option
        // HELLO: shareable unless it authenticates or names the connection; with a protocol
        // version it must go to a shared connection of that protocol.
        argument_case{"hello", {}, shareable},
        argument_case{"hello", {"2"}, {route::shareable, pin_reason::none, 2}},
        argument_case{"HELLO", {"3"}, {route::shareable, pin_reason::none, 3}},
        argument_case{"hello", {"02"}, state}, argument_case{"hello", {"x"}, state},
        argument_case{"hello", {"4"}, state},
        argument_case{"hello", {"2", "auth", "u", "p"}, state},
        argument_case{"hello", {"3", "setname", "n"}, state},
        // CLIENT: by subcommand; an unlisted one is unknown, none at all is connection state.
        argument_case{"client", {"GetName"}, shareable},
        argument_case{"client", {"list", "type", "normal"}, shareable},
        argument_case{"client", {"id"}, state}, argument_case{"client", {"reply", "off"}, state},
        argument_case{"client", {"tracking", "on", "redirect", "7"}, state},
        argument_case{"client", {"no-such-subcommand"}, unknown},
        argument_case{"client", {std::string_view("x|", 2)}, unknown},
        argument_case{"client", {std::string(100, 'a')}, unknown},
        argument_case{"client", {}, state},
        // Fixed rows ignore their arguments.
        argument_case{"get", {"block"}, shareable}, argument_case{"blpop", {"k", "0"}, blocking},
        argument_case{"select", {"0"}, state}));

TEST(pin_reason, labels) {
    EXPECT_EQ(to_string(pin_reason::none), "none");
    EXPECT_EQ(to_string(pin_reason::transaction), "transaction");
    EXPECT_EQ(to_string(pin_reason::pubsub), "pubsub");
    EXPECT_EQ(to_string(pin_reason::blocking), "blocking");
    EXPECT_EQ(to_string(pin_reason::connection_state), "connection_state");
    EXPECT_EQ(to_string(pin_reason::admin), "admin");
    EXPECT_EQ(to_string(pin_reason::unknown), "unknown");
}

}  // namespace
}  // namespace redis_sidecar::mux
