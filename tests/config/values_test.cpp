#include "redis_sidecar/config/values.hpp"

#include <gtest/gtest.h>

namespace redis_sidecar::config {
namespace {

using namespace std::chrono_literals;

struct bool_case {
    const char* text;
    std::optional<bool> expected;
};

class parse_bool_test : public ::testing::TestWithParam<bool_case> {};

TEST_P(parse_bool_test, parses) {
    EXPECT_EQ(parse_bool(GetParam().text), GetParam().expected) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    all, parse_bool_test,
    ::testing::Values(bool_case{"true", true}, bool_case{"TRUE", true}, bool_case{"True", true},
                      bool_case{"1", true}, bool_case{"yes", true}, bool_case{"On", true},
                      bool_case{" on\n", true}, bool_case{"false", false},
                      bool_case{"FALSE", false}, bool_case{"0", false}, bool_case{"no", false},
                      bool_case{"off", false}, bool_case{"", std::nullopt},
                      bool_case{"2", std::nullopt}, bool_case{"enable", std::nullopt},
                      bool_case{"truee", std::nullopt}, bool_case{"y", std::nullopt}));

struct duration_case {
    const char* text;
    std::optional<std::chrono::milliseconds> expected;
};

class parse_duration_test : public ::testing::TestWithParam<duration_case> {};

TEST_P(parse_duration_test, parses) {
    EXPECT_EQ(parse_duration(GetParam().text), GetParam().expected) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    all, parse_duration_test,
    ::testing::Values(duration_case{"250ms", 250ms}, duration_case{"5s", 5s},
                      duration_case{"2m", 2min}, duration_case{"1h", 1h}, duration_case{"20", 20s},
                      duration_case{"0.5", 500ms}, duration_case{"1.5s", 1500ms},
                      duration_case{" 7s\n", 7s}, duration_case{"0", 0ms},
                      duration_case{"", std::nullopt}, duration_case{"s", std::nullopt},
                      duration_case{"-5s", std::nullopt}, duration_case{"5 s", std::nullopt},
                      duration_case{"5x", std::nullopt}, duration_case{"ms", std::nullopt},
                      duration_case{"25h", std::nullopt}, duration_case{"1e9", std::nullopt},
                      duration_case{"nan", std::nullopt}, duration_case{"inf", std::nullopt},
                      duration_case{"2.25s", 2250ms}, duration_case{"1.2.3s", std::nullopt},
                      duration_case{"1,5s", std::nullopt}, duration_case{"0x10", std::nullopt},
                      duration_case{"99999999999999999999999999999999999999999", std::nullopt}));

TEST(format_duration, reads_back) {
    for (auto d : {250ms, 5000ms, 1500ms, 60000ms, 1ms}) {
        EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
    }
    EXPECT_EQ(format_duration(5000ms), "5s");
    EXPECT_EQ(format_duration(250ms), "250ms");
}

TEST(parse_port, accepts_1_to_65535_only) {
    EXPECT_EQ(parse_port("1"), 1);
    EXPECT_EQ(parse_port("6379"), 6379);
    EXPECT_EQ(parse_port("65535"), 65535);
    EXPECT_EQ(parse_port(" 6380 "), 6380);
    for (auto bad :
         {"0", "65536", "-1", "+1", "63 79", "", "abc", "6379x", "99999999999999999999"}) {
        EXPECT_EQ(parse_port(bad), std::nullopt) << bad;
    }
}

TEST(trim, drops_surrounding_white_space_only) {
    EXPECT_EQ(trim("  a b \r\n"), "a b");
    EXPECT_EQ(trim("\t\n"), "");
    EXPECT_EQ(trim("x"), "x");
}

}  // namespace
}  // namespace redis_sidecar::config

TEST(elasticache_endpoint, names_say_the_cache_and_whether_serverless) {
    using redis_sidecar::config::parse_elasticache_endpoint;
    auto e = parse_elasticache_endpoint("orders-a1b2c3.serverless.eu-west-1.cache.amazonaws.com");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->cache_name, "orders");
    EXPECT_TRUE(e->serverless);
    EXPECT_EQ(e->region, "eu-west-1");
    e = parse_elasticache_endpoint("my-cache-abc123.serverless.use1.cache.amazonaws.com");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->cache_name, "my-cache");
    EXPECT_EQ(e->region, "us-east-1");
    EXPECT_EQ(parse_elasticache_endpoint("x-abc123.serverless.zzz9.cache.amazonaws.com")->region,
              "");
    EXPECT_EQ(parse_elasticache_endpoint("master.rg.abc123.apse2.cache.amazonaws.com")->region,
              "ap-southeast-2");
    for (const auto* host : {"master.orders-rg.abc123.use1.cache.amazonaws.com",
                             "replica.orders-rg.abc123.use1.cache.amazonaws.com",
                             "clustercfg.orders-rg.abc123.use1.cache.amazonaws.com",
                             "orders-rg-0002-001.orders-rg.abc123.use1.cache.amazonaws.com",
                             "Master.Orders-RG.abc123.euc1.cache.amazonaws.com.",
                             "master.orders-rg.abc123.cnn1.cache.amazonaws.com.cn"}) {
        e = parse_elasticache_endpoint(host);
        ASSERT_TRUE(e) << host;
        EXPECT_EQ(e->cache_name, "orders-rg") << host;
        EXPECT_FALSE(e->serverless) << host;
    }
    for (const auto* host :
         {"cache", "redis.internal", "cache.amazonaws.com", "a.b.cache.amazonaws.com",
          "orders.serverless.eu-west-1.cache.amazonaws.com", "x..y.z.cache.amazonaws.com",
          "master.orders-rg.abc123.use1.cache.amazonaws.com.evil.example"}) {
        EXPECT_FALSE(parse_elasticache_endpoint(host)) << host;
    }
}
