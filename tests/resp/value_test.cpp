#include "redis_sidecar/resp/value.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using redis_sidecar::resp::parse_value;
using redis_sidecar::resp::serialize;
using redis_sidecar::resp::value_limits;

namespace {

std::string round_trip(const std::string& bytes) {
    std::string error;
    auto v = parse_value(bytes, error);
    if (!v) return "error: " + error;
    return serialize(*v);
}

}  // namespace

TEST(resp_value, every_type_round_trips_byte_for_byte) {
    const std::vector<std::string> replies = {
        "+OK\r\n",
        "-MOVED 3999 node-1.example:6379\r\n",
        ":-12\r\n",
        "$5\r\nhe\r\no\r\n",
        "$0\r\n\r\n",
        "$-1\r\n",
        "*-1\r\n",
        "*0\r\n",
        "*3\r\n:1\r\n*1\r\n$1\r\na\r\n+x\r\n",
        "_\r\n",
        ",3.14\r\n",
        "#t\r\n",
        "(123456789012345678901234567890\r\n",
        "!3\r\nerr\r\n",
        "=8\r\ntxt:abcd\r\n",
        "%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n:2\r\n",
        "~2\r\n:1\r\n:2\r\n",
        ">2\r\n+message\r\n$1\r\nx\r\n",
        "|1\r\n+key\r\n+val\r\n:42\r\n",
    };
    for (const auto& r : replies) EXPECT_EQ(round_trip(r), r) << r;
}

TEST(resp_value, malformed_or_partial_input_is_refused_with_a_reason) {
    const std::vector<std::string> bad = {
        "",
        "+OK",
        "+OK\r\n+extra\r\n",
        "$5\r\nabc\r\n",
        "$3\r\nabcd\r\n",
        "$-2\r\n",
        "*2\r\n:1\r\n",
        "*x\r\n",
        "?\r\n",
        "$?\r\n;3\r\nabc\r\n;0\r\n",
        "*1000000000\r\n:1\r\n",
    };
    for (const auto& b : bad) {
        std::string error;
        EXPECT_FALSE(parse_value(b, error).has_value()) << b;
        EXPECT_FALSE(error.empty()) << b;
    }
}

TEST(resp_value, depth_and_size_are_bounded) {
    std::string deep;
    for (int i = 0; i < 40; ++i) deep += "*1\r\n";
    deep += ":1\r\n";
    std::string error;
    EXPECT_FALSE(parse_value(deep, error).has_value());
    EXPECT_EQ(error, "nested too deeply");

    value_limits small;
    small.max_elements = 3;
    EXPECT_FALSE(parse_value("*3\r\n:1\r\n:2\r\n:3\r\n", error, small).has_value());
    EXPECT_TRUE(parse_value("*2\r\n:1\r\n:2\r\n", error, small).has_value());
}
