// What must come back after the pool's RESET + re-authentication (upstream::reset_reader), fed
// whole, byte by byte and in every two-piece split: the result may not depend on how the bytes
// arrive.

#include "redis_sidecar/upstream/reset_reader.hpp"

#include <gtest/gtest.h>

#include "redis_sidecar/upstream/error.hpp"

namespace redis_sidecar::upstream {
namespace {

const std::string hello_map = "*4\r\n$6\r\nserver\r\n$5\r\nredis\r\n$4\r\nrole\r\n$6\r\nmaster\r\n";

handshake reauth(bool select) {
    config::upstream_settings up;
    up.username = "app";
    up.password = config::secret("pw");
    up.db = select ? 2 : 0;
    return make_handshake(up, "n", {.hello = true, .ping = false});
}

/// Feeds `bytes` in the given piece size (0: whole) to a fresh reader.
std::optional<reset_result> run(const std::string& bytes, std::size_t piece,
                                std::optional<std::uint64_t> owed, bool select = false) {
    reset_reader r(resp::scanner(resp::direction::reply), owed, reauth(select));
    if (piece == 0) return r.feed(bytes);
    std::optional<reset_result> out;
    for (std::size_t at = 0; at < bytes.size() && !out; at += piece) {
        out = r.feed(std::string_view(bytes).substr(at, piece));
    }
    return out;
}

/// The same outcome (or none) however the bytes arrive.
std::optional<reset_result> every_way(const std::string& bytes, std::optional<std::uint64_t> owed,
                                      bool select = false) {
    const auto whole = run(bytes, 0, owed, select);
    for (const std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{7}}) {
        const auto split = run(bytes, piece, owed, select);
        EXPECT_EQ(split.has_value(), whole.has_value()) << "piece " << piece;
        if (split && whole) {
            EXPECT_EQ(split->ec, whole->ec) << "piece " << piece << ": " << split->why;
        }
    }
    return whole;
}

TEST(reset_reader, writes_reset_then_the_reauthentication) {
    reset_reader r(resp::scanner(resp::direction::reply), 0, reauth(true));
    EXPECT_EQ(r.commands(), resp::format_command({"RESET"}) + reauth(true).commands);
}

TEST(reset_reader, clean_after_the_owed_replies_reset_and_the_handshake) {
    auto out = every_way("+RESET\r\n" + hello_map, 0);
    ASSERT_TRUE(out);
    EXPECT_FALSE(out->ec) << out->why;
    // Two owed replies (one of them large and nested), a RESP3 push between them, SELECT.
    out = every_way(
        ":1\r\n>2\r\n$7\r\nmessage\r\n$1\r\nx\r\n*2\r\n*1\r\n$3\r\nabc\r\n:2\r\n"
        "+RESET\r\n" +
            hello_map + "+OK\r\n",
        2, true);
    ASSERT_TRUE(out);
    EXPECT_FALSE(out->ec) << out->why;
    // Left request/reply (subscribed): everything up to "+RESET" is skipped.
    out = every_way("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n+RESET\r\n" + hello_map,
                    std::nullopt);
    ASSERT_TRUE(out);
    EXPECT_FALSE(out->ec) << out->why;
}

TEST(reset_reader, more_bytes_needed_is_no_outcome) {
    EXPECT_FALSE(every_way("+RESET\r\n" + hello_map.substr(0, 20), 0));
    EXPECT_FALSE(every_way(":1\r\n", 1));
}

TEST(reset_reader, refusals_are_classified) {
    struct row {
        std::string name;
        std::string bytes;
        std::optional<std::uint64_t> owed;
        error expected;
    };
    const std::vector<row> rows = {
        {"malformed", "?RESET\r\n", 0, error::protocol_error},
        {"wrong type where RESET's belongs", ":1\r\n", 0, error::protocol_error},
        {"an array header where RESET's belongs, refused at once", "*10000000\r\n", 0,
         error::protocol_error},
        {"a 4 GB bulk where RESET's belongs", "$4294967296\r\n", 0, error::protocol_error},
        {"another status before RESET's", "+OK\r\n", 0, error::protocol_error},
        {"HELLO refused", "+RESET\r\n-WRONGPASS invalid username-password pair\r\n", 0,
         error::wrongpass},
        {"HELLO answered with an integer", "+RESET\r\n:1\r\n", 0, error::protocol_error},
        {"HELLO's reply with ten million elements", "+RESET\r\n*10000000\r\n", 0,
         error::protocol_error},
        {"no RESET (Redis < 6.2)", "-ERR unknown command 'RESET'\r\n", 0, error::server_error},
    };
    for (const auto& r : rows) {
        const auto out = every_way(r.bytes, r.owed);
        ASSERT_TRUE(out) << r.name;
        EXPECT_EQ(out->ec, make_error_code(r.expected)) << r.name << ": " << out->why;
        EXPECT_EQ(out->expected, r.expected == error::server_error) << r.name;
        EXPECT_FALSE(out->why.empty()) << r.name;
    }
    // Bytes behind the last reply in the same read: the connection would be out of step. (Bytes
    // in a later read reach the pool's idle reader, which closes the connection.)
    const auto behind = run("+RESET\r\n" + hello_map + "+OK\r\n", 0, 0);
    ASSERT_TRUE(behind);
    EXPECT_EQ(behind->ec, make_error_code(error::protocol_error)) << behind->why;
    // SELECT after HELLO must answer +OK.
    const auto out = every_way("+RESET\r\n" + hello_map + ":0\r\n", 0, true);
    ASSERT_TRUE(out);
    EXPECT_EQ(out->ec, make_error_code(error::protocol_error)) << out->why;
    EXPECT_NE(out->why.find("SELECT"), std::string::npos) << out->why;
}

TEST(reset_reader, an_outcome_is_final) {
    reset_reader r(resp::scanner(resp::direction::reply), 0, reauth(false));
    const auto first = r.feed(":1\r\n");
    ASSERT_TRUE(first);
    const auto again = r.feed("+RESET\r\n" + hello_map);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->ec, first->ec);
}

}  // namespace
}  // namespace redis_sidecar::upstream
