// The bridge parses the arguments of the few commands it answers itself (AUTH, HELLO, QUIT).

#include "redis_sidecar/bridge/args.hpp"

#include <gtest/gtest.h>

namespace redis_sidecar::bridge {
namespace {

using args = std::vector<std::string>;

struct inline_case {
    std::string line;
    args expected;
    friend void PrintTo(const inline_case& c, std::ostream* os) {
        *os << ::testing::PrintToString(c.line);
    }
};

class split_inline_test : public ::testing::TestWithParam<inline_case> {};

TEST_P(split_inline_test, splits_like_sdssplitargs) {
    EXPECT_EQ(split_inline(GetParam().line), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    cases, split_inline_test,
    ::testing::Values(inline_case{"AUTH secret\r\n", {"AUTH", "secret"}},
                      inline_case{"auth  user\tpass\n", {"auth", "user", "pass"}},
                      inline_case{"\r\n\nQUIT\r\n", {"QUIT"}},
                      inline_case{"AUTH \"a b\\\"c\\n\\x41\"\r\n", {"AUTH", "a b\"c\nA"}},
                      inline_case{"AUTH 'it\\'s'\r\n", {"AUTH", "it's"}},
                      inline_case{"AUTH \"\"\r\n", {"AUTH", ""}},
                      inline_case{"HELLO 3 AUTH default pw\r\nPING\r\n",
                                  {"HELLO", "3", "AUTH", "default", "pw"}},
                      // Every isspace() byte separates, \v and \f too (found by bridge_core_fuzz:
                      // an argument loop that stopped on one never advanced).
                      inline_case{"AUTH\vsecret\f\r\n", {"AUTH", "secret"}},
                      // Empty multibulk commands before an inline one are skipped too.
                      inline_case{"*-3\r\n*0\r\n \r\nCLIENT GETNAME\r\n", {"CLIENT", "GETNAME"}}));

TEST(split_multibulk, takes_binary_arguments_as_they_are) {
    static constexpr char bytes[] = "*3\r\n$4\r\nAUTH\r\n$4\r\nuser\r\n$5\r\np\r\n\0w\r\n";
    const std::string frame(bytes, sizeof bytes - 1);
    EXPECT_EQ(split_multibulk(frame), (args{"AUTH", "user", std::string("p\r\n\0w", 5)}));
}

TEST(split_multibulk, skips_empty_commands_before_it) {
    EXPECT_EQ(split_multibulk("*0\r\n*1\r\n$4\r\nQUIT\r\n"), args{"QUIT"});
    EXPECT_EQ(split_multibulk("*-1\r\n*2\r\n$4\r\nAUTH\r\n$0\r\n\r\n"), (args{"AUTH", ""}));
    // Blank inline lines and any negative length (Redis ignores both) before it.
    EXPECT_EQ(split_multibulk("\r\n  \n*-10\r\n*1\r\n$5\r\nRESET\r\n"), args{"RESET"});
}

}  // namespace
}  // namespace redis_sidecar::bridge
