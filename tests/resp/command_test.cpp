#include "redis_sidecar/resp/command.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <string>
#include <vector>

#include "redis_sidecar/resp/scanner.hpp"

namespace redis_sidecar::resp {
namespace {

using namespace std::string_literals;

// ---------------------------------------------------------------------------------------------
// format_command

struct format_case {
    std::string name;
    std::vector<std::string> args;
    std::string bytes;
};

std::ostream& operator<<(std::ostream& os, const format_case& c) {
    return os << c.name;
}

class format_command_test : public ::testing::TestWithParam<format_case> {};

std::vector<std::string_view> views(const std::vector<std::string>& args) {
    return {args.begin(), args.end()};
}

TEST_P(format_command_test, exact_bytes) {
    const auto args = views(GetParam().args);
    EXPECT_EQ(format_command(args), GetParam().bytes);
}

TEST_P(format_command_test, scanner_sees_one_command_frame) {
    const std::string bytes = format_command(views(GetParam().args));
    scanner s(direction::command);
    const scan_result r = s.scan(bytes);
    EXPECT_EQ(r.status, scan_status::frame_done);
    EXPECT_EQ(r.consumed, bytes.size());
    EXPECT_EQ(s.info().argc, static_cast<std::int64_t>(GetParam().args.size()));
    std::string lower = GetParam().args.front().substr(0, command_name_capacity);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(s.info().command_name(), lower);
}

TEST_P(format_command_test, round_trips_through_reply_reader) {
    // A command is an array of bulk strings: reading it back as a reply yields the arguments.
    reply_reader reader;
    reader.feed(format_command(views(GetParam().args)));
    std::error_code ec;
    const std::optional<reply> r = reader.next(ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->type, reply_type::array);
    ASSERT_EQ(r->elements.size(), GetParam().args.size());
    for (std::size_t k = 0; k < r->elements.size(); ++k) {
        EXPECT_EQ(r->elements[k].type, reply_type::string);
        EXPECT_EQ(r->elements[k].str, GetParam().args[k]);
    }
}

INSTANTIATE_TEST_SUITE_P(
    all, format_command_test,
    ::testing::Values(
        format_case{"ping", {"PING"}, "*1\r\n$4\r\nPING\r\n"},
        format_case{
            "set", {"SET", "key", "value"}, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"},
        format_case{
            "hello_auth",
            {"HELLO", "3", "AUTH", "default", "s3cr3t"},
            "*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$6\r\ns3cr3t\r\n"},
        format_case{"empty_argument", {"ECHO", ""}, "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"},
        format_case{"binary_argument",
                    {"SET", "k", "a\r\n\0b"s},
                    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\r\n\0b\r\n"s},
        format_case{"client_setname",
                    {"CLIENT", "SETNAME", "redis-sidecar"},
                    "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$13\r\nredis-sidecar\r\n"}),
    [](const auto& info) { return info.param.name; });

TEST(format_command, initializer_list_overload) {
    EXPECT_EQ(format_command({"SELECT", "2"}), "*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n");
}

TEST(format_command, large_argument) {
    const std::string big(1 << 20, 'x');
    const std::string bytes = format_command({"SET", "k", big});
    EXPECT_EQ(bytes.size(), 4 + 9 + 7 + 10 + big.size() + 2);
    EXPECT_EQ(bytes.substr(bytes.size() - 4), "xx\r\n");
}

// ---------------------------------------------------------------------------------------------
// reply_reader

reply status(std::string s) {
    return {reply_type::status, std::move(s), 0, {}};
}
reply err(std::string s) {
    return {reply_type::error, std::move(s), 0, {}};
}
reply str(std::string s) {
    return {reply_type::string, std::move(s), 0, {}};
}
reply integer(long long v) {
    return {reply_type::integer, {}, v, {}};
}
reply nil() {
    return {};
}
reply array(std::vector<reply> e) {
    return {reply_type::array, {}, 0, std::move(e)};
}

struct reader_case {
    std::string name;
    std::string input;
    std::vector<reply> replies;
    std::optional<error> failure = std::nullopt;  // after the replies
};

std::ostream& operator<<(std::ostream& os, const reader_case& c) {
    return os << c.name;
}

struct reader_outcome {
    std::vector<reply> replies;
    std::error_code ec;
};

/// Feeds the input in pieces of the given sizes (cycled), draining replies after each.
reader_outcome read_all(std::string_view input, const std::vector<std::size_t>& pieces) {
    reply_reader reader;
    reader_outcome out;
    std::size_t k = 0;
    auto drain = [&] {
        while (!out.ec) {
            std::optional<reply> r = reader.next(out.ec);
            if (!r) break;
            out.replies.push_back(std::move(*r));
        }
    };
    while (!input.empty() && !out.ec) {
        const std::size_t n = std::min(pieces[k++ % pieces.size()], input.size());
        reader.feed(input.substr(0, n));
        input.remove_prefix(n);
        drain();
    }
    drain();
    return out;
}

class reply_reader_test : public ::testing::TestWithParam<reader_case> {};

TEST_P(reply_reader_test, whole_bytewise_and_random_splits) {
    const reader_case& c = GetParam();
    std::vector<std::vector<std::size_t>> splits = {{c.input.size() + 1}, {1}, {2, 3}};
    std::mt19937 rng(42);
    for (int k = 0; k < 8; ++k) {
        std::vector<std::size_t> pieces;
        std::uniform_int_distribution<std::size_t> d(1, 13);
        for (int p = 0; p < 16; ++p) pieces.push_back(d(rng));
        splits.push_back(pieces);
    }
    for (const auto& pieces : splits) {
        const reader_outcome got = read_all(c.input, pieces);
        EXPECT_EQ(got.replies, c.replies) << "first piece " << pieces.front();
        if (c.failure) {
            EXPECT_EQ(got.ec, make_error_code(*c.failure)) << got.ec.message();
        } else {
            EXPECT_FALSE(got.ec) << got.ec.message();
        }
    }
}

std::string nested(std::size_t depth) {
    std::string s;
    for (std::size_t k = 0; k < depth; ++k) s += "*1\r\n";
    return s + ":1\r\n";
}

reply nested_reply(std::size_t depth) {
    reply r = integer(1);
    for (std::size_t k = 0; k < depth; ++k) r = array({r});
    return r;
}

INSTANTIATE_TEST_SUITE_P(
    all, reply_reader_test,
    ::testing::Values(
        reader_case{"status", "+OK\r\n", {status("OK")}},
        reader_case{"error", "-ERR unknown command 'FOO'\r\n", {err("ERR unknown command 'FOO'")}},
        reader_case{"integer", ":42\r\n:-7\r\n", {integer(42), integer(-7)}},
        reader_case{"bulk", "$3\r\nfoo\r\n", {str("foo")}},
        reader_case{"bulk_empty", "$0\r\n\r\n", {str("")}},
        reader_case{"bulk_binary", "$5\r\na\r\n\0b\r\n"s, {str("a\r\n\0b"s)}},
        reader_case{"bulk_null", "$-1\r\n", {nil()}}, reader_case{"array_null", "*-1\r\n", {nil()}},
        reader_case{"array_empty", "*0\r\n", {array({})}},
        reader_case{"array_nested",
                    "*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n+x\r\n",
                    {array({str("a"), array({integer(1), nil()}), status("x")})}},
        reader_case{
            "role_reply",
            "*3\r\n$6\r\nmaster\r\n:3129659\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$4\r\n9001\r\n"
            "$7\r\n3129242\r\n",
            {array({str("master"), integer(3129659),
                    array({array({str("127.0.0.1"), str("9001"), str("3129242")})})})}},
        reader_case{"pipeline",
                    "+OK\r\n$5\r\nhello\r\n:1\r\n-WRONGPASS invalid\r\n",
                    {status("OK"), str("hello"), integer(1), err("WRONGPASS invalid")}},
        reader_case{"depth_8", nested(8), {nested_reply(8)}},
        reader_case{"depth_9", nested(9), {}, error::nesting_too_deep},
        reader_case{"bad_type", "+OK\r\n?\r\n", {status("OK")}, error::invalid_reply_type},
        reader_case{"resp3_map", "%1\r\n+a\r\n+b\r\n", {}, error::invalid_reply_type},
        reader_case{"bad_bulk_length", "$abc\r\n", {}, error::invalid_bulk_length},
        reader_case{"huge_array_header", "*2147483647\r\n", {}, error::multibulk_too_long},
        reader_case{"huge_bulk_header", "$600000000\r\n", {}, error::bulk_too_long},
        reader_case{"missing_crlf", "$3\r\nfooXY", {}, error::expected_crlf}),
    [](const auto& info) { return info.param.name; });

TEST(reply_reader, needs_more_then_completes) {
    reply_reader reader;
    std::error_code ec;
    reader.feed("*2\r\n$3\r\nfo");
    EXPECT_FALSE(reader.next(ec).has_value());
    EXPECT_FALSE(ec);
    reader.feed("o\r\n:5\r\n");
    const std::optional<reply> r = reader.next(ec);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, array({str("foo"), integer(5)}));
    EXPECT_FALSE(reader.next(ec).has_value());
    EXPECT_FALSE(ec);
}

TEST(reply_reader, buffer_bound) {
    reply_reader reader(16);
    std::error_code ec;
    reader.feed("+OK\r\n");
    reader.feed("$20\r\n01234567890123456789\r\n");  // 5 + 27 bytes > 16
    const std::optional<reply> first = reader.next(ec);
    ASSERT_TRUE(first.has_value()) << "replies before the error still come out";
    EXPECT_EQ(*first, status("OK"));
    EXPECT_FALSE(reader.next(ec).has_value());
    EXPECT_EQ(ec, make_error_code(error::reply_too_large));
    EXPECT_FALSE(reader.error_detail().empty());
}

TEST(reply_reader, error_is_sticky) {
    reply_reader reader;
    std::error_code ec;
    reader.feed("!\r\n");
    EXPECT_FALSE(reader.next(ec).has_value());
    EXPECT_EQ(ec, make_error_code(error::invalid_reply_type));
    reader.feed("+OK\r\n");
    EXPECT_FALSE(reader.next(ec).has_value());
    EXPECT_EQ(ec, make_error_code(error::invalid_reply_type));
}

TEST(reply_reader, movable) {
    reply_reader a;
    a.feed("+OK\r\n");
    reply_reader b(std::move(a));
    std::error_code ec;
    const std::optional<reply> r = b.next(ec);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, status("OK"));
    a = std::move(b);
    a.feed(":1\r\n");
    EXPECT_EQ(a.next(ec), integer(1));
}

TEST(reply_reader, many_replies_no_leak) {
    // Under LeakSanitizer this proves hiredis' reply objects and reader are freed.
    reply_reader reader;
    std::error_code ec;
    for (int k = 0; k < 1000; ++k) {
        reader.feed("*2\r\n$3\r\nfoo\r\n*1\r\n:1\r\n");
        ASSERT_TRUE(reader.next(ec).has_value());
    }
    reader.feed("*3\r\n$3\r\nfo");  // a partial reply left in the reader at destruction
}

}  // namespace
}  // namespace redis_sidecar::resp
