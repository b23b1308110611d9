#include "redis_sidecar/config/address.hpp"

#include <gtest/gtest.h>

namespace redis_sidecar::config {
namespace {

struct address_case {
    const char* text;
    const char* host;
    std::optional<std::uint16_t> port;
    std::optional<bool> tls = std::nullopt;
    std::optional<std::string> username = std::nullopt;
    std::optional<std::string> password = std::nullopt;
    std::optional<unsigned> db = std::nullopt;
};

void PrintTo(const address_case& c, std::ostream* os) {
    *os << c.text;
}

class valid_address : public ::testing::TestWithParam<address_case> {};

TEST_P(valid_address, is_taken_apart) {
    const auto& c = GetParam();
    const auto a = parse_address(c.text);
    EXPECT_EQ(a.host, c.host);
    EXPECT_EQ(a.port, c.port);
    EXPECT_EQ(a.tls, c.tls);
    EXPECT_EQ(a.username, c.username);
    EXPECT_EQ(a.password ? std::optional<std::string>(a.password->reveal()) : std::nullopt,
              c.password);
    EXPECT_EQ(a.db, c.db);
    EXPECT_EQ(a.from_url, c.tls.has_value());
}

INSTANTIATE_TEST_SUITE_P(
    forms, valid_address,
    ::testing::Values(
        address_case{"redis.internal:6380", "redis.internal", 6380},
        address_case{"redis.internal", "redis.internal", std::nullopt},
        address_case{"  Master.Foo.USE1.Cache.AmazonAWS.com:6379\n",
                     "master.foo.use1.cache.amazonaws.com", 6379},
        address_case{"10.0.0.5:6379", "10.0.0.5", 6379}, address_case{"[::1]:6380", "::1", 6380},
        address_case{"[2001:DB8::5]", "2001:db8::5", std::nullopt},
        address_case{"2001:db8::5", "2001:db8::5", std::nullopt},
        address_case{"::1", "::1", std::nullopt},
        address_case{"redis://cache:6379", "cache", 6379, false},
        address_case{"redis://cache", "cache", std::nullopt, false},
        address_case{"rediss://cache:6380/2", "cache", 6380, true, std::nullopt, std::nullopt, 2},
        address_case{"REDISS://Cache/", "cache", std::nullopt, true},
        address_case{"rediss://:tok%40en%2Fx@cache:6379", "cache", 6379, true, std::nullopt,
                     "tok@en/x"},
        address_case{"rediss://app:p%3Ass@cache:6379/0", "cache", 6379, true, "app", "p:ss", 0u},
        address_case{"redis://us%65r:pa@ss@cache", "cache", std::nullopt, false, "user", "pa@ss"},
        address_case{"rediss://alice@cache", "cache", std::nullopt, true, "alice"},
        address_case{"redis://[::1]:7000/3", "::1", 7000, false, std::nullopt, std::nullopt, 3},
        address_case{"valkeys://cache:6380", "cache", 6380, true},
        address_case{"valkey://cache", "cache", std::nullopt, false},
        address_case{"rediss://cache:6380/1?ssl_cert_reqs=none", "cache", 6380, true, std::nullopt,
                     std::nullopt, 1}));

struct invalid_case {
    const char* text;
    const char* reason;
};

void PrintTo(const invalid_case& c, std::ostream* os) {
    *os << c.text;
}

class invalid_address : public ::testing::TestWithParam<invalid_case> {};

TEST_P(invalid_address, is_refused_with_a_reason) {
    try {
        parse_address(GetParam().text);
        FAIL() << "accepted " << GetParam().text;
    } catch (const address_error& e) {
        EXPECT_NE(std::string(e.what()).find(GetParam().reason), std::string::npos) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(
    forms, invalid_address,
    ::testing::Values(invalid_case{"", "empty"}, invalid_case{"   ", "empty"},
                      invalid_case{":6379", "no host"}, invalid_case{"cache:0", "1-65535"},
                      invalid_case{"cache:65536", "1-65535"}, invalid_case{"cache:abc", "1-65535"},
                      invalid_case{"cache:", "1-65535"},
                      invalid_case{"http://cache:6379", "unknown URL scheme 'http://'"},
                      invalid_case{"unix:///tmp/redis.sock", "unknown URL scheme"},
                      invalid_case{"rediss://cache:6379/x", "not a database number"},
                      invalid_case{"rediss://cache:6379/-1", "not a database number"},
                      invalid_case{"rediss://:%zz@cache", "percent-encoding in the URL's password"},
                      invalid_case{"rediss://:abc%4@cache", "percent-encoding"},
                      invalid_case{"rediss://", "no host"}, invalid_case{"[::1", "without ']'"},
                      invalid_case{"[cache]:6379", "not an IPv6 address"},
                      invalid_case{"[::1]x", "after ']'"},
                      invalid_case{"2001:db8::zz", "not an IPv6 address"},
                      invalid_case{"ca che:6379", "not a valid host name"},
                      invalid_case{"user:pw@cache:6379", "expected host:port"}));

TEST(address, errors_never_quote_user_info) {
    try {
        parse_address("rediss://user:TopSecret%zz@cache");
        FAIL();
    } catch (const address_error& e) {
        EXPECT_EQ(std::string(e.what()).find("TopSecret"), std::string::npos) << e.what();
    }
}

TEST(join_host_port, brackets_ipv6) {
    EXPECT_EQ(join_host_port("cache", 6379), "cache:6379");
    EXPECT_EQ(join_host_port("::1", 6380), "[::1]:6380");
}

}  // namespace
}  // namespace redis_sidecar::config
