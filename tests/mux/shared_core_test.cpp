#include "redis_sidecar/mux/shared_core.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace redis_sidecar::mux {
namespace {

std::string command(std::initializer_list<std::string_view> args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (auto a : args) {
        out += "$" + std::to_string(a.size()) + "\r\n";
        out += a;
        out += "\r\n";
    }
    return out;
}

std::string bulk(std::string_view s) {
    return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

/// What the clients received: their bytes and how many replies ended, per client.
struct received {
    std::map<client_id, std::string> bytes;
    std::map<client_id, std::size_t> replies;
    std::vector<routed_piece> pieces;  // views into the fed stream (kept alive by the caller)
};

/// Feeds `stream` cut at `cuts` (ascending offsets) and collects the routed pieces, checking
/// that they cover exactly the bytes fed, in order.
received feed(shared_core& core, std::string_view stream, const std::vector<std::size_t>& cuts) {
    received out;
    std::size_t start = 0;
    auto piece = [&](std::size_t end) {
        const auto bytes = stream.substr(start, end - start);
        std::vector<routed_piece> pieces;
        EXPECT_EQ(core.feed_upstream(bytes, pieces), feed_status::ok);
        std::string joined;
        for (const auto& p : pieces) {
            EXPECT_FALSE(p.bytes.empty());
            joined += p.bytes;
            out.bytes[p.client] += p.bytes;
            out.replies[p.client] += p.replies_completed;
            out.pieces.push_back(p);
        }
        EXPECT_EQ(joined, bytes);
        start = end;
    };
    for (auto cut : cuts) piece(cut);
    piece(stream.size());
    return out;
}

std::vector<std::size_t> every_byte(std::size_t size) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < size; ++i) cuts.push_back(i);
    return cuts;
}

std::vector<std::size_t> random_cuts(std::size_t size, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::size_t> cuts;
    if (size < 2) return cuts;
    std::uniform_int_distribution<std::size_t> step(1, 12);
    for (std::size_t at = step(rng); at < size; at += step(rng)) cuts.push_back(at);
    return cuts;
}

/// The ways a stream is fed: whole, byte by byte, and random splits with fixed seeds.
std::vector<std::vector<std::size_t>> splits(std::size_t size) {
    std::vector<std::vector<std::size_t>> out = {{}, every_byte(size)};
    for (unsigned seed = 1; seed <= 20; ++seed) out.push_back(random_cuts(size, seed));
    return out;
}

// Three clients interleave commands; each gets its own replies in its own order.
TEST(shared_core, interleaved_clients_get_their_own_replies_in_order) {
    struct step {
        client_id client;
        std::string command;
        std::string reply;
    };
    const std::vector<step> steps = {
        {1, command({"GET", "a"}), bulk("value-a")},
        {2, command({"INCR", "n"}), ":1\r\n"},
        {1, command({"SET", "b", "x"}), "+OK\r\n"},
        {3, "PING\r\n", "+PONG\r\n"},  // inline
        {2, command({"HGETALL", "h"}), "*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n$1\r\nw\r\n"},
        {1, command({"GET", "missing"}), "$-1\r\n"},
        {3, command({"LPUSH", "l"}), "-ERR wrong number of arguments for 'lpush' command\r\n"},
        {2, command({"GET", "c"}), bulk("")},
        {3, command({"MGET", "a", "z"}), "*2\r\n$7\r\nvalue-a\r\n*-1\r\n"},
    };
    std::string stream;
    std::map<client_id, std::string> want;
    std::map<client_id, std::size_t> want_count;
    for (const auto& s : steps) {
        stream += s.reply;
        want[s.client] += s.reply;
        ++want_count[s.client];
    }
    for (const auto& cuts : splits(stream.size())) {
        shared_core core;
        std::string expected_output;
        for (const auto& s : steps) {
            ASSERT_EQ(core.submit(s.client, s.command), submit_status::accepted);
            expected_output += s.command;
        }
        EXPECT_EQ(core.pending_output(), expected_output.size());
        EXPECT_EQ(core.take_output(), expected_output);
        EXPECT_EQ(core.take_output(), "");
        EXPECT_EQ(core.commands_in_flight(), steps.size());
        EXPECT_EQ(core.clients_in_flight(), 3u);
        EXPECT_EQ(core.in_flight(1), 3u);
        const auto got = feed(core, stream, cuts);
        EXPECT_EQ(got.bytes, want);
        EXPECT_EQ(got.replies, want_count);
        EXPECT_EQ(core.commands_in_flight(), 0u);
        EXPECT_EQ(core.bytes_in_flight(), 0u);
        EXPECT_EQ(core.clients_in_flight(), 0u);
        EXPECT_TRUE(core.drained(1) && core.drained(2) && core.drained(3));
        EXPECT_FALSE(core.mid_reply());
    }
}

// A client's pipelined replies that arrive together make one piece.
TEST(shared_core, back_to_back_replies_of_one_client_are_one_piece) {
    shared_core core;
    for (int i = 0; i < 3; ++i) ASSERT_EQ(core.submit(7, "PING\r\n"), submit_status::accepted);
    ASSERT_EQ(core.submit(8, "PING\r\n"), submit_status::accepted);
    const std::string stream = "+PONG\r\n+PONG\r\n+PONG\r\n+PONG\r\n";
    std::vector<routed_piece> pieces;
    ASSERT_EQ(core.feed_upstream(stream, pieces), feed_status::ok);
    ASSERT_EQ(pieces.size(), 2u);
    EXPECT_EQ(pieces[0].client, 7u);
    EXPECT_EQ(pieces[0].bytes, stream.substr(0, 21));
    EXPECT_EQ(pieces[0].replies_completed, 3u);
    EXPECT_EQ(pieces[1].client, 8u);
    EXPECT_EQ(pieces[1].replies_completed, 1u);
}

// A large reply goes to its client piece by piece as it arrives; the small replies behind it
// wait only for its bytes, and no byte of it is held.
TEST(shared_core, large_reply_streams_to_its_client_while_others_wait) {
    const std::string big(4 * 1024 * 1024, 'v');
    shared_core core;
    ASSERT_EQ(core.submit(1, command({"GET", "big"})), submit_status::accepted);
    ASSERT_EQ(core.submit(2, command({"GET", "small"})), submit_status::accepted);
    ASSERT_EQ(core.submit(3, "PING\r\n"), submit_status::accepted);
    const std::string stream = bulk(big) + bulk("s") + "+PONG\r\n";
    const std::size_t big_end = bulk(big).size();
    constexpr std::size_t chunk = 16 * 1024;  // a TLS record's worth
    std::size_t big_bytes = 0;
    std::size_t big_pieces = 0;
    std::map<client_id, std::string> got;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
        const auto bytes = std::string_view(stream).substr(at, chunk);
        std::vector<routed_piece> pieces;
        ASSERT_EQ(core.feed_upstream(bytes, pieces), feed_status::ok);
        ASSERT_FALSE(pieces.empty());
        if (at + bytes.size() < big_end) {  // inside the big reply: all of it goes to client 1
            ASSERT_EQ(pieces.size(), 1u);
            EXPECT_EQ(pieces[0].client, 1u);
            EXPECT_EQ(pieces[0].bytes.size(), bytes.size());
            EXPECT_EQ(pieces[0].replies_completed, 0u);
            EXPECT_TRUE(core.mid_reply());
            EXPECT_EQ(core.in_flight(2), 1u);
            // What of the value is still to come, from its $N header on.
            const std::size_t header = bulk(big).size() - big.size() - 2;
            const std::size_t seen = at + bytes.size();
            if (seen >= header) {
                EXPECT_EQ(core.reply_payload_remaining(), big.size() - (seen - header));
            }
        }
        for (const auto& p : pieces) {
            if (p.client == 1) {
                big_bytes += p.bytes.size();
                ++big_pieces;
            }
            got[p.client] += p.bytes;
        }
    }
    EXPECT_EQ(big_bytes, big_end);
    EXPECT_EQ(big_pieces, (big_end + chunk - 1) / chunk);
    EXPECT_EQ(got[1], bulk(big));
    EXPECT_EQ(got[2], bulk("s"));
    EXPECT_EQ(got[3], "+PONG\r\n");
    EXPECT_EQ(core.commands_in_flight(), 0u);
    EXPECT_EQ(core.reply_payload_remaining(), 0u);
}

TEST(shared_core, command_limit_refuses_then_accepts_after_replies) {
    shared_options options;
    options.limits.max_commands = 3;
    shared_core core(options);
    const std::string get = command({"GET", "k"});
    for (client_id c = 1; c <= 3; ++c) ASSERT_EQ(core.submit(c, get), submit_status::accepted);
    EXPECT_EQ(core.submit(4, get), submit_status::full);
    EXPECT_EQ(core.submit(1, "PING\r\n"), submit_status::full);
    EXPECT_EQ(core.take_output(), get + get + get);  // writing frees nothing
    EXPECT_EQ(core.submit(4, get), submit_status::full);
    std::vector<routed_piece> pieces;
    ASSERT_EQ(core.feed_upstream("$1\r\n", pieces), feed_status::ok);  // half a reply
    EXPECT_EQ(core.submit(4, get), submit_status::full);
    ASSERT_EQ(core.feed_upstream("v\r\n", pieces), feed_status::ok);
    EXPECT_EQ(core.submit(4, get), submit_status::accepted);
    EXPECT_EQ(core.submit(5, get), submit_status::full);
    EXPECT_EQ(core.in_flight(1), 0u);
    EXPECT_EQ(core.in_flight(4), 1u);
}

TEST(shared_core, byte_limit_refuses_then_accepts_after_replies) {
    shared_options options;
    options.limits.max_bytes = 40;
    shared_core core(options);
    const std::string cmd = command({"GET", "0123456789"});  // 30 bytes
    ASSERT_EQ(cmd.size(), 30u);
    ASSERT_EQ(core.submit(1, cmd), submit_status::accepted);
    EXPECT_EQ(core.bytes_in_flight(), 30u);
    EXPECT_EQ(core.submit(2, cmd), submit_status::full);             // 60 > 40
    EXPECT_EQ(core.submit(2, "PING\r\n"), submit_status::accepted);  // 36
    EXPECT_EQ(core.submit(2, "PING 12\r\n"), submit_status::full);   // 45
    std::vector<routed_piece> pieces;
    ASSERT_EQ(core.feed_upstream("$-1\r\n", pieces), feed_status::ok);
    EXPECT_EQ(core.bytes_in_flight(), 6u);
    EXPECT_EQ(core.submit(3, cmd), submit_status::accepted);  // 36
    // A command larger than the bound goes only to an idle connection.
    const std::string huge = command({"SET", "k", std::string(100, 'x')});
    EXPECT_EQ(core.submit(4, huge), submit_status::full);
    ASSERT_EQ(core.feed_upstream("+PONG\r\n$-1\r\n", pieces), feed_status::ok);
    EXPECT_EQ(core.bytes_in_flight(), 0u);
    EXPECT_EQ(core.submit(4, huge), submit_status::accepted);
    EXPECT_EQ(core.submit(5, "PING\r\n"), submit_status::full);
}

TEST(shared_core, refuses_what_is_not_one_whole_command) {
    shared_core core;
    for (std::string_view bad : {"", "*1\r\n$4\r\nPI", "PING", "PING\r\nPING\r\n", "*1\r\n:1\r\n",
                                 "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n", "\r\n"}) {
        EXPECT_EQ(core.submit(1, bad), submit_status::not_one_command) << bad;
    }
    EXPECT_EQ(core.commands_in_flight(), 0u);
    EXPECT_EQ(core.take_output(), "");
    // The checker starts afresh after a refusal.
    EXPECT_EQ(core.submit(1, command({"PING"})), submit_status::accepted);
    EXPECT_EQ(core.submit(1, "*0\r\nPING\r\n"), submit_status::accepted);  // an empty one first
}

TEST(shared_core, broken_counts_commands_per_client) {
    shared_core core;
    const std::string get = command({"GET", "k"});
    for (client_id c : {5, 6, 5, 7, 5, 6}) ASSERT_EQ(core.submit(c, get), submit_status::accepted);
    core.take_output();
    ASSERT_EQ(core.submit(8, get), submit_status::accepted);  // submitted, not yet written
    std::vector<routed_piece> pieces;
    ASSERT_EQ(core.feed_upstream("$1\r\na\r\n", pieces), feed_status::ok);  // 5's first
    const auto lost = core.broken();
    ASSERT_EQ(lost.size(), 4u);
    EXPECT_EQ(lost[0].client, 6u);
    EXPECT_EQ(lost[0].commands, 2u);
    EXPECT_EQ(lost[1].client, 5u);
    EXPECT_EQ(lost[1].commands, 2u);
    EXPECT_EQ(lost[2].client, 7u);
    EXPECT_EQ(lost[2].commands, 1u);
    EXPECT_EQ(lost[3].client, 8u);
    EXPECT_EQ(lost[3].commands, 1u);
    for (const auto& l : lost) EXPECT_FALSE(l.partial_reply);
    EXPECT_TRUE(core.is_broken());
    EXPECT_EQ(core.commands_in_flight(), 0u);
    EXPECT_EQ(core.bytes_in_flight(), 0u);
    EXPECT_EQ(core.pending_output(), 0u);
    EXPECT_TRUE(core.drained(5));
    EXPECT_EQ(core.submit(5, get), submit_status::broken);
    EXPECT_EQ(core.feed_upstream("+OK\r\n", pieces), feed_status::violation);
    EXPECT_TRUE(core.broken().empty());
}

TEST(shared_core, broken_mid_reply_marks_the_front_client) {
    shared_core core;
    ASSERT_EQ(core.submit(1, command({"GET", "big"})), submit_status::accepted);
    ASSERT_EQ(core.submit(2, command({"GET", "k"})), submit_status::accepted);
    std::vector<routed_piece> pieces;
    ASSERT_EQ(core.feed_upstream("$100\r\nabc", pieces), feed_status::ok);
    ASSERT_EQ(pieces.size(), 1u);
    EXPECT_EQ(pieces[0].client, 1u);
    EXPECT_EQ(pieces[0].replies_completed, 0u);
    const auto lost = core.broken();
    ASSERT_EQ(lost.size(), 2u);
    EXPECT_EQ(lost[0].client, 1u);
    EXPECT_TRUE(lost[0].partial_reply);
    EXPECT_EQ(lost[1].client, 2u);
    EXPECT_FALSE(lost[1].partial_reply);
}

TEST(shared_core, nothing_lost_when_nothing_in_flight) {
    shared_core core;
    EXPECT_TRUE(core.broken().empty());
    EXPECT_EQ(core.submit(1, "PING\r\n"), submit_status::broken);
}

struct violation_case {
    std::string_view name;
    bool resp3;
    std::string stream;  // replies to GETs of clients 1 and 2, then the fault
    // Bytes of whole replies before the fault, and the most bytes routed before it is found: a
    // fault inside a frame (a push behind an attribute, a broken bulk) is found after the
    // frame's first bytes went out when they came in an earlier read, before they went out
    // when they came in the same read.
    std::size_t whole_replies;
    std::size_t max_routed;
};

class violation_test : public ::testing::TestWithParam<violation_case> {};

// The violation is found however the stream is split; broken() marks the front client's reply
// partial exactly when bytes of it were routed.
TEST_P(violation_test, reported_after_the_bytes_before_it) {
    const auto& c = GetParam();
    for (const auto& cuts : splits(c.stream.size())) {
        shared_options options;
        options.resp3 = c.resp3;
        shared_core core(options);
        ASSERT_EQ(core.submit(1, command({"GET", "a"})), submit_status::accepted);
        ASSERT_EQ(core.submit(2, command({"GET", "b"})), submit_status::accepted);
        std::size_t routed = 0;
        bool violated = false;
        std::size_t start = 0;
        auto all = cuts;
        all.push_back(c.stream.size());
        for (auto end : all) {
            std::vector<routed_piece> pieces;
            const auto status =
                core.feed_upstream(std::string_view(c.stream).substr(start, end - start), pieces);
            for (const auto& p : pieces) routed += p.bytes.size();
            start = end;
            if (status == feed_status::violation) {
                violated = true;
                break;
            }
        }
        ASSERT_TRUE(violated) << c.name;
        EXPECT_GE(routed, c.whole_replies) << c.name;
        EXPECT_LE(routed, c.max_routed) << c.name;
        EXPECT_TRUE(core.submit(3, "PING\r\n") == submit_status::broken);
        const auto lost = core.broken();
        if (lost.empty()) {  // unsolicited: every command had its reply
            EXPECT_EQ(routed, c.whole_replies) << c.name;
        } else {
            EXPECT_EQ(lost.front().partial_reply, routed > c.whole_replies) << c.name;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(
    cases, violation_test,
    ::testing::Values(
        violation_case{"push", true, "$1\r\na\r\n>2\r\n$7\r\nmessage\r\n$1\r\nx\r\n", 7, 7},
        violation_case{"push_after_attribute", true,
                       "|1\r\n+key\r\n+val\r\n>2\r\n$7\r\nmessage\r\n$1\r\nx\r\n", 0, 16},
        violation_case{"resp3_type_on_resp2", false, "$1\r\na\r\n%0\r\n", 7, 7},
        violation_case{"garbage", true, "$1\r\na\r\n@oops\r\n", 7, 7},
        violation_case{"bad_bulk_end", true, "$1\r\nab\r\n", 0, 5},
        violation_case{"unsolicited", true, "$1\r\na\r\n$1\r\nb\r\n+OK\r\n", 14, 14},
        violation_case{"unsolicited_push", true, "$1\r\na\r\n$1\r\nb\r\n>1\r\n+x\r\n", 14, 14}),
    [](const ::testing::TestParamInfo<violation_case>& info) {
        return std::string(info.param.name);
    });

// RESP3 replies of every type are framed as one reply each, however they are split.
TEST(shared_core, resp3_replies_framed_whole) {
    const std::vector<std::string> replies = {
        "%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n*2\r\n#t\r\n_\r\n",  // map
        "|1\r\n+ttl\r\n:3600\r\n$5\r\nvalue\r\n",                   // attribute + value
        "~3\r\n+a\r\n+b\r\n+c\r\n",                                 // set
        ",3.14\r\n",                                                // double
        "(3492890328409238509324850943850943825024385\r\n",         // big number
        "=15\r\ntxt:Some string\r\n",                               // verbatim
        "!21\r\nSYNTAX invalid syntax\r\n",                         // blob error
        "$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n",     // streamed string
        "*?\r\n:1\r\n%?\r\n+k\r\n+v\r\n.\r\n.\r\n",                 // streamed aggregates
        "_\r\n",                                                    // null
        "#f\r\n",                                                   // boolean
        "*3\r\n*1\r\n*1\r\n%1\r\n+deep\r\n|1\r\n+a\r\n+b\r\n:1\r\n_\r\n:2\r\n",  // nested
    };
    std::string stream;
    std::map<client_id, std::string> want;
    std::map<client_id, std::size_t> want_count;
    for (std::size_t i = 0; i < replies.size(); ++i) {
        const client_id c = 1 + i % 3;
        stream += replies[i];
        want[c] += replies[i];
        ++want_count[c];
    }
    for (const auto& cuts : splits(stream.size())) {
        shared_options options;
        options.resp3 = true;
        shared_core core(options);
        for (std::size_t i = 0; i < replies.size(); ++i) {
            ASSERT_EQ(core.submit(1 + i % 3, command({"GET", "k"})), submit_status::accepted);
        }
        const auto got = feed(core, stream, cuts);
        EXPECT_EQ(got.bytes, want);
        EXPECT_EQ(got.replies, want_count);
        EXPECT_EQ(core.commands_in_flight(), 0u);
    }
}

TEST(shared_core, drained_per_client) {
    shared_core core;
    EXPECT_TRUE(core.drained(1));
    ASSERT_EQ(core.submit(1, "PING\r\n"), submit_status::accepted);
    ASSERT_EQ(core.submit(2, "PING\r\n"), submit_status::accepted);
    ASSERT_EQ(core.submit(1, "PING\r\n"), submit_status::accepted);
    EXPECT_EQ(core.in_flight(1), 2u);
    EXPECT_FALSE(core.drained(1));
    std::vector<routed_piece> pieces;
    ASSERT_EQ(core.feed_upstream("+PONG\r\n+PONG\r\n", pieces), feed_status::ok);
    EXPECT_EQ(core.in_flight(1), 1u);
    EXPECT_TRUE(core.drained(2));
    ASSERT_EQ(core.feed_upstream("+PO", pieces), feed_status::ok);
    EXPECT_FALSE(core.drained(1));  // mid-reply: not yet
    ASSERT_EQ(core.feed_upstream("NG\r\n", pieces), feed_status::ok);
    EXPECT_TRUE(core.drained(1));
}

}  // namespace
}  // namespace redis_sidecar::mux
