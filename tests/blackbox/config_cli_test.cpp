// `redis-sidecar config` as a black box: environments in, JSON or one clear error out.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sidecar_binary.hpp"
#include "support/temp_dir.hpp"

namespace redis_sidecar::testing {
namespace {

using json = nlohmann::json;

TEST(config_cli, prints_resolved_json_with_sources) {
    temp_dir secrets;
    secrets.write_file("password", "from-secret-0123456789\n");
    const auto r = run_sidecar({"config"}, {{"REDIS_URL", "rediss://app@Cache.Example:6380/4"},
                                            {"REDIS_SIDECAR_SECRETS_DIR", secrets.path()},
                                            {"REDIS_SIDECAR_LOG_FORMAT", "text"}});
    ASSERT_EQ(r.exit_code, 0) << r;
    const auto j = json::parse(r.out);
    EXPECT_EQ(j["upstream"]["host"], "cache.example");
    EXPECT_EQ(j["upstream"]["port"], 6380);
    EXPECT_EQ(j["upstream"]["db"], 4);
    EXPECT_EQ(j["upstream"]["tls"]["enabled"], true);
    EXPECT_EQ(j["upstream"]["username"], "app");
    EXPECT_EQ(j["upstream"]["password"], "<redacted>");
    EXPECT_EQ(j["sources"]["upstream.password"], "file:" + secrets.path() + "/password");
    EXPECT_EQ(j["sources"]["upstream.db"], "url:REDIS_URL");
    EXPECT_EQ(r.output().find("from-secret-0123456789"), std::string::npos);
    // The user-without-password warning reaches stderr as a log line.
    EXPECT_NE(r.err.find("has a user name and no password"), std::string::npos) << r.err;
}

struct error_case {
    const char* name;
    env_map env;
    std::vector<std::string> args;
    const char* message;
};

void PrintTo(const error_case& c, std::ostream* os) {
    *os << c.name;
}

class config_cli_errors : public ::testing::TestWithParam<error_case> {};

TEST_P(config_cli_errors, exit_2_with_one_line_naming_the_cause) {
    const auto& c = GetParam();
    std::vector<std::string> args{"config"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const auto r = run_sidecar(args, c.env);
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_TRUE(r.out.empty()) << r;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r;
    EXPECT_EQ(r.err.find("hunter2-password"), std::string::npos) << r;
}

INSTANTIATE_TEST_SUITE_P(
    cases, config_cli_errors,
    ::testing::Values(
        error_case{"no_address", {}, {}, "no upstream address"},
        error_case{"bad_port", {{"REDIS_ADDR", "cache:99999"}}, {}, "REDIS_ADDR"},
        error_case{"url_with_secret_and_bad_port",
                   {{"REDIS_URL", "rediss://u:hunter2-password@cache:0"}},
                   {},
                   "REDIS_URL: port"},
        error_case{
            "contradiction",
            {{"REDIS_URL", "rediss://:hunter2-password@cache"}, {"REDIS_TLS_ENABLED", "off"}},
            {},
            "turns TLS off"},
        error_case{"unknown_flag", {{"REDIS_ADDR", "cache"}}, {"--bogus"}, "unknown flag --bogus"},
        error_case{"bad_bool",
                   {{"REDIS_ADDR", "cache"}, {"REDIS_TLS_SKIP_VERIFY", "sure"}},
                   {},
                   "REDIS_TLS_SKIP_VERIFY: 'sure' is not a boolean"}));

TEST(config_cli, version_and_help) {
    const auto v = run_sidecar({"version"}, {});
    EXPECT_EQ(v.exit_code, 0);
    EXPECT_EQ(v.out.rfind("redis-sidecar ", 0), 0u) << v;
    for (const auto* sub : {"config", "check", "run"}) {
        const auto h = run_sidecar({sub, "--help"}, {});
        EXPECT_EQ(h.exit_code, 0) << sub << h;
        EXPECT_NE(h.out.find("--addr"), std::string::npos) << sub << h;
    }
    const auto vh = run_sidecar({"version", "--help"}, {});
    EXPECT_EQ(vh.exit_code, 0) << vh;
    EXPECT_NE(vh.out.find("--output text|json"), std::string::npos) << vh;
    const auto top = run_sidecar({"--help"}, {});
    for (const auto* sub : {"run", "config", "check", "wait", "shutdown", "version"}) {
        EXPECT_NE(top.out.find(std::string("\n  ") + sub + " "), std::string::npos) << sub << top;
    }
    const auto bad = run_sidecar({"frobnicate"}, {});
    EXPECT_EQ(bad.exit_code, 2);
}

}  // namespace
}  // namespace redis_sidecar::testing
