#include "redis_sidecar/mux/classify.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>

namespace redis_sidecar::mux {

namespace {

constexpr command_row shared(std::string_view name, rule how = rule::fixed) {
    return {name, route::shareable, pin_reason::none, how};
}
constexpr command_row pinned(std::string_view name, pin_reason reason, rule how = rule::fixed) {
    return {name, route::dedicated, reason, how};
}

// The one table (issue 16): every command a client may send, with where it runs. Sorted by
// name; a command missing here is dedicated (unknown). Why the dedicated rows are dedicated,
// and the CLIENT subcommands that stay shareable: docs/architecture.md, "Multiplexing".
constexpr command_row rows[] = {
    shared("acl"),
    shared("append"),
    pinned("asking", pin_reason::connection_state),
    pinned("auth", pin_reason::connection_state),
    shared("bgrewriteaof"),
    shared("bgsave"),
    shared("bitcount"),
    shared("bitfield"),
    shared("bitfield_ro"),
    shared("bitop"),
    shared("bitpos"),
    pinned("blmove", pin_reason::blocking),
    pinned("blmpop", pin_reason::blocking),
    pinned("blpop", pin_reason::blocking),
    pinned("brpop", pin_reason::blocking),
    pinned("brpoplpush", pin_reason::blocking),
    pinned("bzmpop", pin_reason::blocking),
    pinned("bzpopmax", pin_reason::blocking),
    pinned("bzpopmin", pin_reason::blocking),
    pinned("client", pin_reason::connection_state, rule::subcommand),
    pinned("client|caching", pin_reason::connection_state),
    shared("client|getname"),
    shared("client|getredir"),
    shared("client|help"),
    pinned("client|id", pin_reason::connection_state),
    pinned("client|info", pin_reason::connection_state),
    pinned("client|kill", pin_reason::connection_state),
    shared("client|list"),
    pinned("client|no-evict", pin_reason::connection_state),
    pinned("client|no-touch", pin_reason::connection_state),
    shared("client|pause"),
    pinned("client|reply", pin_reason::connection_state),
    shared("client|setinfo"),
    pinned("client|setname", pin_reason::connection_state),
    pinned("client|tracking", pin_reason::connection_state),
    shared("client|trackinginfo"),
    shared("client|unblock"),
    shared("client|unpause"),
    shared("cluster"),
    shared("command"),
    shared("config"),
    shared("copy"),
    shared("dbsize"),
    pinned("debug", pin_reason::admin),
    shared("decr"),
    shared("decrby"),
    shared("del"),
    pinned("discard", pin_reason::transaction),
    shared("dump"),
    shared("echo"),
    shared("eval"),
    shared("eval_ro"),
    shared("evalsha"),
    shared("evalsha_ro"),
    pinned("exec", pin_reason::transaction),
    shared("exists"),
    shared("expire"),
    shared("expireat"),
    shared("expiretime"),
    shared("failover"),
    shared("fcall"),
    shared("fcall_ro"),
    shared("flushall"),
    shared("flushdb"),
    shared("function"),
    shared("geoadd"),
    shared("geodist"),
    shared("geohash"),
    shared("geopos"),
    shared("georadius"),
    shared("georadius_ro"),
    shared("georadiusbymember"),
    shared("georadiusbymember_ro"),
    shared("geosearch"),
    shared("geosearchstore"),
    shared("get"),
    shared("getbit"),
    shared("getdel"),
    shared("getex"),
    shared("getrange"),
    shared("getset"),
    shared("hdel"),
    shared("hello", rule::hello),
    shared("hexists"),
    shared("hexpire"),
    shared("hexpireat"),
    shared("hexpiretime"),
    shared("hget"),
    shared("hgetall"),
    shared("hgetdel"),
    shared("hgetex"),
    shared("hincrby"),
    shared("hincrbyfloat"),
    shared("hkeys"),
    shared("hlen"),
    shared("hmget"),
    shared("hmset"),
    shared("hpersist"),
    shared("hpexpire"),
    shared("hpexpireat"),
    shared("hpexpiretime"),
    shared("hpttl"),
    shared("hrandfield"),
    shared("hscan"),
    shared("hset"),
    shared("hsetex"),
    shared("hsetnx"),
    shared("hstrlen"),
    shared("httl"),
    shared("hvals"),
    shared("incr"),
    shared("incrby"),
    shared("incrbyfloat"),
    shared("info"),
    shared("keys"),
    shared("lastsave"),
    shared("latency"),
    shared("lcs"),
    shared("lindex"),
    shared("linsert"),
    shared("llen"),
    shared("lmove"),
    shared("lmpop"),
    shared("lolwut"),
    shared("lpop"),
    shared("lpos"),
    shared("lpush"),
    shared("lpushx"),
    shared("lrange"),
    shared("lrem"),
    shared("lset"),
    shared("ltrim"),
    shared("memory"),
    shared("mget"),
    shared("migrate"),
    shared("module"),
    pinned("monitor", pin_reason::pubsub),
    shared("move"),
    shared("mset"),
    shared("msetnx"),
    pinned("multi", pin_reason::transaction),
    shared("object"),
    shared("persist"),
    shared("pexpire"),
    shared("pexpireat"),
    shared("pexpiretime"),
    shared("pfadd"),
    shared("pfcount"),
    shared("pfdebug"),
    shared("pfmerge"),
    shared("pfselftest"),
    shared("ping"),
    shared("psetex"),
    pinned("psubscribe", pin_reason::pubsub),
    pinned("psync", pin_reason::connection_state),
    shared("pttl"),
    shared("publish"),
    shared("pubsub"),
    pinned("punsubscribe", pin_reason::pubsub),
    pinned("quit", pin_reason::connection_state),
    shared("randomkey"),
    pinned("readonly", pin_reason::connection_state),
    pinned("readwrite", pin_reason::connection_state),
    shared("rename"),
    shared("renamenx"),
    pinned("replconf", pin_reason::connection_state),
    shared("replicaof"),
    pinned("reset", pin_reason::connection_state),
    shared("restore"),
    shared("role"),
    shared("rpop"),
    shared("rpoplpush"),
    shared("rpush"),
    shared("rpushx"),
    shared("sadd"),
    shared("save"),
    shared("scan"),
    shared("scard"),
    shared("script"),
    shared("sdiff"),
    shared("sdiffstore"),
    pinned("select", pin_reason::connection_state),
    shared("set"),
    shared("setbit"),
    shared("setex"),
    shared("setnx"),
    shared("setrange"),
    pinned("shutdown", pin_reason::admin),
    shared("sinter"),
    shared("sintercard"),
    shared("sinterstore"),
    shared("sismember"),
    shared("slaveof"),
    shared("slowlog"),
    shared("smembers"),
    shared("smismember"),
    shared("smove"),
    shared("sort"),
    shared("sort_ro"),
    shared("spop"),
    shared("spublish"),
    shared("srandmember"),
    shared("srem"),
    shared("sscan"),
    pinned("ssubscribe", pin_reason::pubsub),
    shared("strlen"),
    pinned("subscribe", pin_reason::pubsub),
    shared("substr"),
    shared("sunion"),
    shared("sunionstore"),
    pinned("sunsubscribe", pin_reason::pubsub),
    shared("swapdb"),
    pinned("sync", pin_reason::connection_state),
    shared("time"),
    shared("touch"),
    shared("ttl"),
    shared("type"),
    shared("unlink"),
    pinned("unsubscribe", pin_reason::pubsub),
    pinned("unwatch", pin_reason::transaction),
    pinned("wait", pin_reason::blocking),
    pinned("waitaof", pin_reason::blocking),
    pinned("watch", pin_reason::transaction),
    shared("xack"),
    shared("xackdel"),
    shared("xadd"),
    shared("xautoclaim"),
    shared("xclaim"),
    shared("xdel"),
    shared("xdelex"),
    shared("xgroup"),
    shared("xinfo"),
    shared("xlen"),
    shared("xpending"),
    shared("xrange"),
    shared("xread", rule::block_option),
    shared("xreadgroup", rule::block_option),
    shared("xrevrange"),
    shared("xsetid"),
    shared("xtrim"),
    shared("zadd"),
    shared("zcard"),
    shared("zcount"),
    shared("zdiff"),
    shared("zdiffstore"),
    shared("zincrby"),
    shared("zinter"),
    shared("zintercard"),
    shared("zinterstore"),
    shared("zlexcount"),
    shared("zmpop"),
    shared("zmscore"),
    shared("zpopmax"),
    shared("zpopmin"),
    shared("zrandmember"),
    shared("zrange"),
    shared("zrangebylex"),
    shared("zrangebyscore"),
    shared("zrangestore"),
    shared("zrank"),
    shared("zrem"),
    shared("zremrangebylex"),
    shared("zremrangebyrank"),
    shared("zremrangebyscore"),
    shared("zrevrange"),
    shared("zrevrangebylex"),
    shared("zrevrangebyscore"),
    shared("zrevrank"),
    shared("zscan"),
    shared("zscore"),
    shared("zunion"),
    shared("zunionstore"),
};

static_assert(std::is_sorted(std::begin(rows), std::end(rows),
                             [](const command_row& a, const command_row& b) {
                                 return a.name < b.name;
                             }),
              "the command table must stay sorted by name");
static_assert(std::adjacent_find(std::begin(rows), std::end(rows),
                                 [](const command_row& a, const command_row& b) {
                                     return a.name == b.name;
                                 }) == std::end(rows),
              "a command appears once in the table");

// Longest key looked up: a command name, `|`, a subcommand. Longer names are in no row.
constexpr std::size_t max_key = 64;

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// XREAD [COUNT n] [BLOCK ms] STREAMS …; XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK]
// [CLAIM ms] STREAMS …: options are read in pairs so that a group, consumer or count named
// "block" is not taken for the option; keys after STREAMS are never read.
bool has_block_option(std::span<const std::string_view> args) {
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto a = args[i];
        if (equals_ignoring_case(a, "block")) return true;
        if (equals_ignoring_case(a, "streams")) return false;
        if (equals_ignoring_case(a, "group")) {
            i += 2;
        } else if (equals_ignoring_case(a, "count") || equals_ignoring_case(a, "claim")) {
            i += 1;
        }
    }
    return false;
}

// HELLO [protover [AUTH user pass] [SETNAME name]].
classification classify_hello(std::span<const std::string_view> args) {
    constexpr classification pinned_state{route::dedicated, pin_reason::connection_state};
    if (args.empty()) return {route::shareable, pin_reason::none};    // information only
    if (args.size() > 1 || args[0].size() != 1) return pinned_state;  // AUTH, SETNAME, "02"
    const int version = args[0][0] - '0';
    if (version != 2 && version != 3) return pinned_state;  // Redis answers NOPROTO
    return {route::shareable, pin_reason::none, version};
}

}  // namespace

std::string_view to_string(pin_reason reason) {
    switch (reason) {
        case pin_reason::none:
            return "none";
        case pin_reason::transaction:
            return "transaction";
        case pin_reason::pubsub:
            return "pubsub";
        case pin_reason::blocking:
            return "blocking";
        case pin_reason::connection_state:
            return "connection_state";
        case pin_reason::admin:
            return "admin";
        case pin_reason::unknown:
            return "unknown";
    }
    return "unknown";
}

std::span<const command_row> command_table() {
    return rows;
}

const command_row* find_command(std::string_view name) {
    if (name.size() > max_key) return nullptr;
    std::array<char, max_key> buffer{};
    std::transform(name.begin(), name.end(), buffer.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const std::string_view key(buffer.data(), name.size());
    const auto* it =
        std::lower_bound(std::begin(rows), std::end(rows), key,
                         [](const command_row& row, std::string_view k) { return row.name < k; });
    return it != std::end(rows) && it->name == key ? it : nullptr;
}

bool depends_on_arguments(std::string_view name) {
    const auto* row = find_command(name);
    return row != nullptr && row->how != rule::fixed;
}

classification classify(std::string_view name, std::span<const std::string_view> args) {
    const auto* row = find_command(name);
    if (row == nullptr || name.find('|') != std::string_view::npos) {
        return {route::dedicated, pin_reason::unknown};
    }
    switch (row->how) {
        case rule::fixed:
            break;
        case rule::subcommand: {
            if (args.empty()) break;
            if (name.size() + 1 + args[0].size() > max_key) {
                return {route::dedicated, pin_reason::unknown};
            }
            std::array<char, max_key> key{};
            auto* end = std::copy(name.begin(), name.end(), key.begin());
            *end++ = '|';
            end = std::copy(args[0].begin(), args[0].end(), end);
            const auto* sub =
                find_command({key.data(), static_cast<std::size_t>(end - key.data())});
            if (sub == nullptr) return {route::dedicated, pin_reason::unknown};
            return {sub->where, sub->reason};
        }
        case rule::block_option:
            if (has_block_option(args)) return {route::dedicated, pin_reason::blocking};
            break;
        case rule::hello:
            return classify_hello(args);
    }
    return {row->where, row->reason};
}

}  // namespace redis_sidecar::mux
