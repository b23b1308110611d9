#include "redis_sidecar/upstream/error.hpp"

#include <gtest/gtest.h>
#include <boost/asio/error.hpp>

namespace redis_sidecar::upstream {
namespace {

TEST(classify_reply, names_each_redis_error) {
    EXPECT_EQ(classify_reply("WRONGPASS invalid username-password pair or user is disabled."),
              error::wrongpass);
    EXPECT_EQ(classify_reply("ERR invalid password"), error::wrongpass);
    EXPECT_EQ(classify_reply("NOAUTH Authentication required."), error::noauth);
    EXPECT_EQ(classify_reply("NOPERM this user has no permissions to run the 'ping' command"),
              error::noperm);
    EXPECT_EQ(classify_reply("LOADING Redis is loading the dataset in memory"), error::loading);
    EXPECT_EQ(classify_reply("READONLY You can't write against a read only replica."),
              error::readonly);
    EXPECT_EQ(classify_reply("ERR max number of clients reached"), error::max_clients);
    EXPECT_EQ(classify_reply("ERR max number of clients + cluster connections reached"),
              error::max_clients);
    EXPECT_EQ(classify_reply("ERR unknown command 'FOO'"), error::server_error);
}

TEST(classify, maps_asio_errors) {
    auto std_code = [](auto e) { return std::error_code(boost::system::error_code(e)); };
    EXPECT_EQ(classify(std_code(boost::asio::error::host_not_found)), error::dns_failure);
    EXPECT_EQ(classify(std_code(boost::asio::error::connection_refused)),
              error::connection_refused);
    EXPECT_EQ(classify(std_code(boost::asio::error::timed_out)), error::timeout);
    EXPECT_EQ(classify(std_code(boost::asio::error::connection_reset)), error::io_error);
    EXPECT_EQ(classify(make_error_code(error::noperm)), error::noperm);
}

TEST(error, every_value_has_a_label_and_message) {
    for (int v = 1; v < error_count; ++v) {
        const auto e = static_cast<error>(v);
        EXPECT_NE(label(e), "unknown") << v;
        EXPECT_NE(make_error_code(e).message(), "unknown upstream error") << v;
    }
}

}  // namespace
}  // namespace redis_sidecar::upstream
