#include "redis_sidecar/config/resolver.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "support/temp_dir.hpp"

namespace redis_sidecar::config {
namespace {

using json = nlohmann::json;
using env_map = std::map<std::string, std::string>;
using redis_sidecar::testing::temp_dir;

json value_at(const json& j, const std::string& dotted) {
    std::string pointer = "/" + dotted;
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    return j.at(json::json_pointer(pointer));
}

std::string joined(const std::vector<std::string>& lines) {
    std::string all;
    for (const auto& l : lines) all += l + "\n";
    return all;
}

// One environment (and flags) → expected values and sources, or an expected error.
struct env_case {
    const char* name;
    env_map env;
    std::vector<std::pair<std::string, json>> values = {};
    std::vector<std::pair<std::string, std::string>> sources = {};
    const char* error = nullptr;    // substring of the config_error
    const char* warning = nullptr;  // substring of one warning
    std::vector<std::string> args = {};
};

void PrintTo(const env_case& c, std::ostream* os) {
    *os << c.name;
}

class env_table : public ::testing::TestWithParam<env_case> {};

TEST_P(env_table, resolves) {
    const auto& c = GetParam();
    if (c.error != nullptr) {
        try {
            resolve({c.env, c.args});
            FAIL() << "expected an error containing: " << c.error;
        } catch (const config_error& e) {
            EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << e.what();
        }
        return;
    }
    const auto r = resolve({c.env, c.args});
    const auto j = to_json(r.values);
    for (const auto& [key, expected] : c.values) {
        EXPECT_EQ(value_at(j, key), expected) << key << " in " << j.dump();
    }
    for (const auto& [key, expected] : c.sources) {
        EXPECT_EQ(j.at("sources").at(key), expected) << key;
    }
    if (c.warning != nullptr) {
        EXPECT_NE(joined(r.warnings).find(c.warning), std::string::npos) << "warnings:\n"
                                                                         << joined(r.warnings);
    }
}

const char* const token = "0123456789abcdefTOKEN";  // 21 characters, ElastiCache-valid

INSTANTIATE_TEST_SUITE_P(
    forms, env_table,
    ::testing::Values(
        env_case{"addr_host_port",
                 {{"REDIS_ADDR", "cache.internal:6380"}},
                 {{"upstream.host", "cache.internal"},
                  {"upstream.port", 6380},
                  {"upstream.tls.enabled", false},
                  {"upstream.db", 0},
                  {"upstream.password", nullptr},
                  {"upstream.username", nullptr}},
                 {{"upstream.host", "env:REDIS_ADDR"},
                  {"upstream.port", "env:REDIS_ADDR"},
                  {"upstream.tls.enabled", "default"},
                  {"upstream.password", "default"}}},
        env_case{"addr_host_only_gets_6379",
                 {{"REDIS_ADDR", "  Cache.Internal \n"}},
                 {{"upstream.host", "cache.internal"}, {"upstream.port", 6379}},
                 {{"upstream.port", "default"}}},
        env_case{"addr_bracketed_v6",
                 {{"REDIS_ADDR", "[::1]:7000"}},
                 {{"upstream.host", "::1"}, {"upstream.port", 7000}}},
        env_case{"addr_bare_v6",
                 {{"REDIS_ADDR", "fd00::10"}},
                 {{"upstream.host", "fd00::10"}, {"upstream.port", 6379}}},
        env_case{"addr_holding_a_url_is_taken_apart",
                 {{"REDIS_ADDR", "rediss://u:p-long-enough-1234@host:6380/2"}},
                 {{"upstream.host", "host"},
                  {"upstream.port", 6380},
                  {"upstream.tls.enabled", true},
                  {"upstream.username", "u"},
                  {"upstream.password", "<redacted>"},
                  {"upstream.db", 2}},
                 {{"upstream.username", "url:REDIS_ADDR"},
                  {"upstream.password", "url:REDIS_ADDR"},
                  {"upstream.tls.enabled", "url:REDIS_ADDR"},
                  {"upstream.db", "url:REDIS_ADDR"}},
                 nullptr,
                 "REDIS_ADDR holds a URL"},
        env_case{"url_token_only",
                 {{"REDIS_URL",
                   std::string("rediss://:") + token + "@master.x.cache.amazonaws.com:6379"}},
                 {{"upstream.tls.enabled", true},
                  {"upstream.password", "<redacted>"},
                  {"upstream.username", nullptr},
                  {"upstream.tls.server_name", "master.x.cache.amazonaws.com"}},
                 {{"upstream.password", "url:REDIS_URL"}, {"upstream.host", "url:REDIS_URL"}}},
        env_case{"host_and_port",
                 {{"REDIS_HOST", "cache"}, {"REDIS_PORT", "6390"}},
                 {{"upstream.host", "cache"}, {"upstream.port", 6390}},
                 {{"upstream.host", "env:REDIS_HOST"}, {"upstream.port", "env:REDIS_PORT"}}},
        env_case{"host_without_port",
                 {{"REDIS_HOST", "cache"}},
                 {{"upstream.port", 6379}},
                 {{"upstream.port", "default"}}},
        env_case{"port_without_host_is_ignored_with_a_warning",
                 {{"REDIS_ADDR", "cache:6379"}, {"REDIS_PORT", "7000"}},
                 {{"upstream.port", 6379}},
                 {},
                 nullptr,
                 "REDIS_PORT is set without REDIS_HOST"},
        env_case{"elasticache_style",
                 {{"ELASTICACHE_ENDPOINT", "my.abc.cache.amazonaws.com"},
                  {"ELASTICACHE_PORT", "6379"},
                  {"ELASTICACHE_AUTH_TOKEN", token},
                  {"REDIS_TLS_ENABLED", "true"}},
                 {{"upstream.host", "my.abc.cache.amazonaws.com"},
                  {"upstream.tls.enabled", true},
                  {"upstream.password", "<redacted>"}},
                 {{"upstream.host", "env:ELASTICACHE_ENDPOINT"},
                  {"upstream.port", "env:ELASTICACHE_PORT"},
                  {"upstream.password", "env:ELASTICACHE_AUTH_TOKEN"}}},
        env_case{"two_address_styles_disagree_precedence_decides",
                 {{"REDIS_ADDR", "a:6379"}, {"REDIS_URL", "redis://b:6379"}},
                 {{"upstream.host", "a"}},
                 {{"upstream.host", "env:REDIS_ADDR"}},
                 nullptr,
                 "REDIS_ADDR (a:6379) overrides REDIS_URL (b:6379)"},
        env_case{"url_password_and_redis_password_disagree",
                 {{"REDIS_URL", "rediss://:url-password-123456@cache"},
                  {"REDIS_PASSWORD", "env-password-1234567"}},
                 {{"upstream.password", "<redacted>"}},
                 {{"upstream.password", "env:REDIS_PASSWORD"}},
                 nullptr,
                 "upstream.password: REDIS_PASSWORD overrides a different value from REDIS_URL"},
        env_case{"rediss_with_tls_explicitly_off_is_an_error",
                 {{"REDIS_URL", "rediss://cache"}, {"REDIS_TLS_ENABLED", "false"}},
                 {},
                 {},
                 "REDIS_URL uses rediss:// (TLS) but REDIS_TLS_ENABLED turns TLS off"},
        env_case{"redis_scheme_with_tls_on_warns_and_uses_tls",
                 {{"REDIS_URL", "redis://cache"}, {"REDIS_TLS_ENABLED", "yes"}},
                 {{"upstream.tls.enabled", true}},
                 {{"upstream.tls.enabled", "env:REDIS_TLS_ENABLED"}},
                 nullptr,
                 "REDIS_TLS_ENABLED (true) overrides REDIS_URL (false)"},
        env_case{"redis_ssl_alias",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SSL", "True"}},
                 {{"upstream.tls.enabled", true}},
                 {{"upstream.tls.enabled", "env:REDIS_SSL"}}},
        env_case{"no_address", {{"REDIS_PASSWORD", "x"}}, {}, {}, "no upstream address"},
        env_case{"empty_values_count_as_unset",
                 {{"REDIS_ADDR", ""}, {"REDIS_HOST", " "}},
                 {},
                 {},
                 "no upstream address"},
        env_case{"port_zero",
                 {{"REDIS_ADDR", "cache:0"}},
                 {},
                 {},
                 "REDIS_ADDR: 'cache:0': port '0' is not in 1-65535"},
        env_case{"port_too_big",
                 {{"REDIS_HOST", "cache"}, {"REDIS_PORT", "70000"}},
                 {},
                 {},
                 "REDIS_PORT: '70000' is not in 1-65535"},
        env_case{"db_negative",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_DB", "-1"}},
                 {},
                 {},
                 "REDIS_DB: '-1' is not a database number"},
        env_case{"db_words",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_DB", "zero"}},
                 {},
                 {},
                 "REDIS_DB: 'zero' is not a database number"},
        env_case{"unknown_scheme",
                 {{"REDIS_URL", "memcached://cache:11211"}},
                 {},
                 {},
                 "REDIS_URL: 'memcached://cache:11211': unknown URL scheme 'memcached://'"},
        env_case{"bad_url_with_credentials_is_not_echoed",
                 {{"REDIS_URL", "rediss://user:hunter2@cache:99999"}},
                 {},
                 {},
                 "REDIS_URL: port '99999' is not in 1-65535"},
        env_case{"bad_boolean",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_TLS_ENABLED", "maybe"}},
                 {},
                 {},
                 "REDIS_TLS_ENABLED: 'maybe' is not a boolean"},
        env_case{"bad_duration",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_CONNECTION_TIMEOUT", "5 sec"}},
                 {},
                 {},
                 "REDIS_CONNECTION_TIMEOUT: '5 sec' is not a duration"},
        env_case{"durations",
                 {{"REDIS_ADDR", "cache"},
                  {"REDIS_CONNECTION_TIMEOUT", "20"},
                  {"REDIS_SOCKET_TIMEOUT", "250ms"},
                  {"REDIS_SOCKET_KEEPALIVE", "True"}},
                 {{"pool.connection_timeout", "20s"},
                  {"pool.socket_timeout", "250ms"},
                  {"pool.socket_keepalive", true}}},
        env_case{"pool_sizes",
                 {{"REDIS_ADDR", "cache"},
                  {"REDIS_MAX_CONNECTIONS", "50"},
                  {"REDIS_MIN_IDLE_CONNECTIONS", "5"}},
                 {{"pool.max_connections", 50}, {"pool.min_idle_connections", 5}}},
        env_case{"min_idle_above_max",
                 {{"REDIS_ADDR", "cache"},
                  {"REDIS_MAX_CONNECTIONS", "2"},
                  {"REDIS_MIN_IDLE_CONNECTIONS", "5"}},
                 {},
                 {},
                 "exceeds REDIS_MAX_CONNECTIONS"},
        env_case{"max_connections_zero",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_MAX_CONNECTIONS", "0"}},
                 {},
                 {},
                 "REDIS_MAX_CONNECTIONS: '0' is not a count"},
        env_case{
            "skip_verify_warns",
            {{"REDIS_ADDR", "cache"}, {"REDIS_TLS_ENABLED", "1"}, {"REDIS_TLS_SKIP_VERIFY", "on"}},
            {{"upstream.tls.verify", false}},
            {{"upstream.tls.verify", "env:REDIS_TLS_SKIP_VERIFY"}},
            nullptr,
            "verification is off"},
        env_case{"ip_with_tls_verify_warns",
                 {{"REDIS_ADDR", "10.1.2.3:6379"}, {"REDIS_TLS_ENABLED", "1"}},
                 {{"upstream.tls.server_name", "10.1.2.3"}},
                 {},
                 nullptr,
                 "is an IP address and REDIS_TLS_SERVER_NAME is not set"},
        env_case{"ip_with_server_name_is_fine",
                 {{"REDIS_ADDR", "10.1.2.3:6379"},
                  {"REDIS_TLS_ENABLED", "1"},
                  {"REDIS_TLS_SERVER_NAME", "Master.Cache.Example"}},
                 {{"upstream.tls.server_name", "master.cache.example"}},
                 {{"upstream.tls.server_name", "env:REDIS_TLS_SERVER_NAME"}}},
        env_case{"elasticache_without_tls_warns",
                 {{"REDIS_ADDR", "m.x.use1.cache.amazonaws.com:6379"}},
                 {},
                 {},
                 nullptr,
                 "is an ElastiCache endpoint and TLS is off"},
        env_case{"short_password_warns",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_PASSWORD", "short"}},
                 {},
                 {},
                 nullptr,
                 "shorter than 16 characters"},
        env_case{"listen_and_socket",
                 {{"REDIS_ADDR", "cache"},
                  {"REDIS_SIDECAR_LISTEN", "off"},
                  {"REDIS_SIDECAR_SOCKET", "/var/run/redis/redis.sock"}},
                 {{"listen.tcp", nullptr}, {"listen.unix", "/var/run/redis/redis.sock"}}},
        env_case{"no_listener_at_all",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_LISTEN", "off"}},
                 {},
                 {},
                 "local clients could not connect"},
        env_case{"listen_needs_a_port",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_LISTEN", "127.0.0.1"}},
                 {},
                 {},
                 "REDIS_SIDECAR_LISTEN: '127.0.0.1': expected host:port"},
        env_case{"relative_socket",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_SOCKET", "redis.sock"}},
                 {},
                 {},
                 "REDIS_SIDECAR_SOCKET: 'redis.sock' is not an absolute path"},
        env_case{"log_level",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_LOG_LEVEL", "DEBUG"}},
                 {{"log.level", "debug"}}},
        env_case{"bad_log_level",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_LOG_LEVEL", "loud"}},
                 {},
                 {},
                 "REDIS_SIDECAR_LOG_LEVEL: 'loud' is not one of debug, info, warn, error"},
        env_case{"lifecycle_and_clients",
                 {{"REDIS_ADDR", "cache"},
                  {"REDIS_SIDECAR_READINESS", "Primary"},
                  {"REDIS_SIDECAR_MIN_DRAIN", "0"},
                  {"REDIS_SIDECAR_MAX_DRAIN", "45s"},
                  {"REDIS_SIDECAR_MAX_CLIENTS", "500"},
                  {"REDIS_SIDECAR_CLIENT_PASSWORD", "local-client-password"}},
                 {{"lifecycle.readiness", "primary"},
                  {"lifecycle.min_drain", "0s"},
                  {"lifecycle.max_drain", "45s"},
                  {"listen.max_clients", 500},
                  {"listen.client_password", "<redacted>"}},
                 {{"listen.client_password", "env:REDIS_SIDECAR_CLIENT_PASSWORD"},
                  {"lifecycle.readiness", "env:REDIS_SIDECAR_READINESS"}}},
        env_case{"bad_readiness",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_READINESS", "always"}},
                 {},
                 {},
                 "REDIS_SIDECAR_READINESS: 'always' is not one of upstream, primary, local"},
        env_case{"client_auth_default_local",
                 {{"REDIS_ADDR", "cache"}},
                 {{"listen.client_auth", "local"}},
                 {{"listen.client_auth", "default"}}},
        env_case{"client_auth_passthrough",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_CLIENT_AUTH", "Passthrough"}},
                 {{"listen.client_auth", "passthrough"}},
                 {{"listen.client_auth", "env:REDIS_SIDECAR_CLIENT_AUTH"}}},
        env_case{"bad_client_auth",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_CLIENT_AUTH", "maybe"}},
                 {},
                 {},
                 "REDIS_SIDECAR_CLIENT_AUTH: 'maybe' is not one of local, passthrough"},
        env_case{"passthrough_with_client_password",
                 {{"REDIS_ADDR", "cache"},
                  {"REDIS_SIDECAR_CLIENT_AUTH", "passthrough"},
                  {"REDIS_SIDECAR_CLIENT_PASSWORD", "local-client-password"}},
                 {},
                 {},
                 "REDIS_SIDECAR_CLIENT_PASSWORD (a local password) cannot be set with it"},
        env_case{"cluster_settings",
                 {{"REDIS_ADDR", "cache"},
                  {"REDIS_SIDECAR_CLUSTER", "off"},
                  {"REDIS_SIDECAR_CLUSTER_PORTS", "9000-9099"}},
                 {{"cluster.mode", "off"}, {"cluster.ports", "9000-9099"}},
                 {{"cluster.mode", "env:REDIS_SIDECAR_CLUSTER"}}},
        env_case{"bad_cluster_ports",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_CLUSTER_PORTS", "7099-7000"}},
                 {},
                 {},
                 "REDIS_SIDECAR_CLUSTER_PORTS: '7099-7000' is not a port range"},
        env_case{"iam_derived_from_a_serverless_endpoint",
                 {{"REDIS_ADDR", "orders-a1b2c3.serverless.eu-west-1.cache.amazonaws.com:6379"},
                  {"REDIS_TLS_ENABLED", "true"},
                  {"REDIS_USERNAME", "app"},
                  {"REDIS_IAM_AUTH", "true"}},
                 {{"iam.enabled", true},
                  {"iam.cache_name", "orders"},
                  {"iam.serverless", true},
                  {"iam.region", "eu-west-1"}},
                 {{"iam.enabled", "env:REDIS_IAM_AUTH"},
                  {"iam.cache_name", "derived:upstream.host"},
                  {"iam.serverless", "derived:upstream.host"},
                  {"iam.region", "derived:upstream.host"}}},
        env_case{
            "iam_derived_from_a_configuration_endpoint",
            {{"REDIS_URL", "rediss://app@clustercfg.orders-rg.abc123.use1.cache.amazonaws.com"},
             {"AWS_DEFAULT_REGION", "us-east-1"},
             {"REDIS_IAM_AUTH", "yes"}},
            {{"iam.cache_name", "orders-rg"},
             {"iam.serverless", false},
             {"iam.region", "us-east-1"}},
            {{"iam.cache_name", "derived:upstream.host"},
             {"iam.region", "env:AWS_DEFAULT_REGION"}}},
        env_case{"iam_settings_given",
                 {{"REDIS_ADDR", "master.orders-rg.abc123.use1.cache.amazonaws.com"},
                  {"REDIS_TLS_ENABLED", "true"},
                  {"REDIS_USERNAME", "app"},
                  {"REDIS_IAM_AUTH", "true"},
                  {"REDIS_IAM_CACHE_NAME", "Other-Cache"},
                  {"REDIS_IAM_SERVERLESS", "true"},
                  {"AWS_REGION", "us-west-2"},
                  {"AWS_DEFAULT_REGION", "us-east-1"}},
                 {{"iam.cache_name", "other-cache"},
                  {"iam.serverless", true},
                  {"iam.region", "us-west-2"}},
                 {{"iam.cache_name", "env:REDIS_IAM_CACHE_NAME"},
                  {"iam.serverless", "env:REDIS_IAM_SERVERLESS"},
                  {"iam.region", "env:AWS_REGION"}}},
        env_case{"iam_with_a_password",
                 {{"REDIS_URL",
                   "rediss://app:a-password-0123456789@orders-a1b2c3.serverless."
                   "eu-west-1.cache.amazonaws.com"},
                  {"REDIS_IAM_AUTH", "true"}},
                 {},
                 {},
                 "REDIS_IAM_AUTH is on and a password is set (url:REDIS_URL)"},
        env_case{"iam_without_tls",
                 {{"REDIS_ADDR", "orders-a1b2c3.serverless.eu-west-1.cache.amazonaws.com"},
                  {"REDIS_USERNAME", "app"},
                  {"REDIS_IAM_AUTH", "true"}},
                 {},
                 {},
                 "REDIS_IAM_AUTH is on and TLS is off"},
        env_case{"iam_without_a_user",
                 {{"REDIS_ADDR", "orders-a1b2c3.serverless.eu-west-1.cache.amazonaws.com"},
                  {"REDIS_TLS_ENABLED", "true"},
                  {"REDIS_IAM_AUTH", "true"}},
                 {},
                 {},
                 "REDIS_IAM_AUTH is on and REDIS_USERNAME is not set"},
        env_case{"iam_without_a_cache_name",
                 {{"REDIS_ADDR", "cache.internal"},
                  {"REDIS_TLS_ENABLED", "true"},
                  {"REDIS_USERNAME", "app"},
                  {"AWS_REGION", "us-east-1"},
                  {"REDIS_IAM_AUTH", "true"}},
                 {},
                 {},
                 "REDIS_IAM_CACHE_NAME is not set; upstream host cache.internal is not an "
                 "ElastiCache endpoint name"},
        env_case{"iam_without_a_region",
                 {{"REDIS_ADDR", "master.orders-rg.abc123.xyz9.cache.amazonaws.com"},
                  {"REDIS_TLS_ENABLED", "true"},
                  {"REDIS_USERNAME", "app"},
                  {"REDIS_IAM_AUTH", "true"}},
                 {},
                 {},
                 "AWS_REGION (or AWS_DEFAULT_REGION) is not set"},
        env_case{"bad_iam_cache_name",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_IAM_CACHE_NAME", "my_cache"}},
                 {},
                 {},
                 "REDIS_IAM_CACHE_NAME: 'my_cache' is not an ElastiCache cache name"},
        env_case{"bad_region",
                 {{"REDIS_ADDR", "master.orders-rg.abc123.use1.cache.amazonaws.com"},
                  {"REDIS_TLS_ENABLED", "true"},
                  {"REDIS_USERNAME", "app"},
                  {"REDIS_IAM_AUTH", "true"},
                  {"AWS_REGION", "Frankfurt"}},
                 {},
                 {},
                 "iam.region: 'Frankfurt' (env:AWS_REGION) is not an AWS region"},
        // Without IAM the region is not used, so another tool's value ("local") is no error.
        env_case{"region_unused_without_iam",
                 {{"REDIS_ADDR", "cache"}, {"AWS_REGION", "local"}},
                 {{"iam.region", "local"}},
                 {{"iam.region", "env:AWS_REGION"}}},
        env_case{"bad_drain",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_MAX_DRAIN", "soon"}},
                 {},
                 {},
                 "REDIS_SIDECAR_MAX_DRAIN: 'soon' is not a duration"},
        env_case{
            "flags",
            {{"REDIS_ADDR", "cache"}},
            {{"upstream.db", 3}, {"upstream.tls.enabled", true}, {"listen.tcp", "127.0.0.1:7777"}},
            {{"upstream.db", "flag:--db"},
             {"upstream.tls.enabled", "flag:--tls-enabled"},
             {"listen.tcp", "flag:--listen"}},
            nullptr,
            nullptr,
            {"--db=3", "--tls-enabled", "--listen", "127.0.0.1:7777"}},
        env_case{"unknown_flag",
                 {{"REDIS_ADDR", "cache"}},
                 {},
                 {},
                 "unknown flag --nope",
                 nullptr,
                 {"--nope=1"}},
        env_case{"flag_without_value",
                 {{"REDIS_ADDR", "cache"}},
                 {},
                 {},
                 "flag --db needs a value",
                 nullptr,
                 {"--db"}},
        env_case{"both_x_and_x_file",
                 {{"REDIS_ADDR", "cache"},
                  {"REDIS_PASSWORD", "a"},
                  {"REDIS_PASSWORD_FILE", "/nonexistent"}},
                 {},
                 {},
                 "both REDIS_PASSWORD and REDIS_PASSWORD_FILE are set"},
        env_case{"unreadable_file",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_PASSWORD_FILE", "/nonexistent/pw"}},
                 {},
                 {},
                 "REDIS_PASSWORD_FILE: cannot read /nonexistent/pw"},
        env_case{"secrets_dir_missing",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_SECRETS_DIR", "/nonexistent"}},
                 {},
                 {},
                 "REDIS_SIDECAR_SECRETS_DIR: /nonexistent is not a readable directory"},
        env_case{"unreadable_ca_file",
                 {{"REDIS_ADDR", "cache"}, {"REDIS_TLS_CA_FILE", "/nonexistent/ca.crt"}},
                 {},
                 {},
                 "REDIS_TLS_CA_FILE: cannot read file /nonexistent/ca.crt"}));

// Precedence as a table: the same setting (upstream.db) given by a subset of sources.
struct precedence_case {
    bool flag, env, url, secrets_unused, yaml;
    unsigned expected;
    const char* source;  // with {yaml} standing for the YAML file's path
};

class precedence : public ::testing::TestWithParam<precedence_case> {};

TEST_P(precedence, highest_wins) {
    const auto& c = GetParam();
    temp_dir dir;
    const auto yaml = dir.write_file("sidecar.yaml", "upstream:\n  db: 5\n");
    env_map env{{"REDIS_ADDR", c.url ? "redis://cache/4" : "cache"}};
    if (c.env) env["REDIS_DB"] = "3";
    if (c.yaml) env["REDIS_SIDECAR_CONFIG"] = yaml;
    std::vector<std::string> args;
    if (c.flag) args = {"--db", "2"};
    const auto r = resolve({env, args});
    EXPECT_EQ(r.values.upstream.db, c.expected);
    std::string source = c.source;
    if (source == "yaml") source = "yaml:" + yaml;
    EXPECT_EQ(r.values.sources.at("upstream.db"), source);
}

INSTANTIATE_TEST_SUITE_P(
    db, precedence,
    ::testing::Values(precedence_case{true, true, true, false, true, 2, "flag:--db"},
                      precedence_case{false, true, true, false, true, 3, "env:REDIS_DB"},
                      precedence_case{false, false, true, false, true, 4, "url:REDIS_ADDR"},
                      precedence_case{false, false, false, false, true, 5, "yaml"},
                      precedence_case{false, false, false, false, false, 0, "default"},
                      precedence_case{true, false, false, false, true, 2, "flag:--db"}));

TEST(secrets, password_precedence_env_file_dir_yaml) {
    temp_dir dir;
    temp_dir secrets;
    secrets.write_file("password", "from-secrets-dir-0123456789\n");
    secrets.write_file("username", "dir-user\n");
    const auto pw_file = dir.write_file("pw", "from-env-file-0123456789\n");
    const auto yaml = dir.write_file("c.yaml", "upstream:\n  password: from-yaml-0123456789\n");
    env_map env{{"REDIS_ADDR", "cache"},
                {"REDIS_SIDECAR_SECRETS_DIR", secrets.path()},
                {"REDIS_SIDECAR_CONFIG", yaml}};

    auto r = resolve({env, {}});
    EXPECT_EQ(r.values.upstream.password->reveal(), "from-secrets-dir-0123456789");
    EXPECT_EQ(r.values.sources.at("upstream.password"), "file:" + secrets.path() + "/password");
    EXPECT_EQ(r.values.upstream.username, "dir-user");

    env["REDIS_PASSWORD_FILE"] = pw_file;
    r = resolve({env, {}});
    // The trailing newline of `kubectl create secret --from-file` is dropped.
    EXPECT_EQ(r.values.upstream.password->reveal(), "from-env-file-0123456789");
    EXPECT_EQ(r.values.sources.at("upstream.password"), "file:" + pw_file);
    EXPECT_NE(joined(r.warnings).find("overrides a different value from " + secrets.path()),
              std::string::npos)
        << joined(r.warnings);

    env.erase("REDIS_SIDECAR_SECRETS_DIR");
    env.erase("REDIS_PASSWORD_FILE");
    r = resolve({env, {}});
    EXPECT_EQ(r.values.upstream.password->reveal(), "from-yaml-0123456789");
    EXPECT_EQ(r.values.sources.at("upstream.password"), "yaml:" + yaml);
}

TEST(secrets, tls_files_from_secrets_dir) {
    temp_dir secrets;
    secrets.write_file("ca.crt", "PEM");
    secrets.write_file("tls.crt", "PEM");
    secrets.write_file("tls.key", "PEM");
    const auto r = resolve({{{"REDIS_ADDR", "cache"},
                             {"REDIS_TLS_ENABLED", "true"},
                             {"REDIS_SIDECAR_SECRETS_DIR", secrets.path()}},
                            {}});
    EXPECT_EQ(r.values.upstream.tls.ca_file, secrets.path() + "/ca.crt");
    EXPECT_EQ(r.values.upstream.tls.cert_file, secrets.path() + "/tls.crt");
    EXPECT_EQ(r.values.upstream.tls.key_file, secrets.path() + "/tls.key");
    EXPECT_EQ(r.values.sources.at("upstream.tls.ca_file"), "file:" + secrets.path() + "/ca.crt");
}

TEST(secrets, client_cert_without_key_is_an_error) {
    temp_dir dir;
    const auto cert = dir.write_file("tls.crt", "PEM");
    try {
        resolve({{{"REDIS_ADDR", "cache"}, {"REDIS_TLS_CERT_FILE", cert}}, {}});
        FAIL();
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find("without its key (REDIS_TLS_KEY_FILE)"),
                  std::string::npos);
    }
}

TEST(secrets, empty_file_is_an_error_naming_it) {
    temp_dir dir;
    const auto pw = dir.write_file("pw", "\n");
    try {
        resolve({{{"REDIS_ADDR", "cache"}, {"REDIS_PASSWORD_FILE", pw}}, {}});
        FAIL();
    } catch (const config_error& e) {
        EXPECT_EQ(std::string(e.what()), "REDIS_PASSWORD_FILE: " + pw + " is empty");
    }
}

TEST(secrets, oversized_file_is_refused_not_read) {
    temp_dir dir;
    const auto big = dir.write_file("pw", std::string(200 * 1024, 'x'));
    try {
        resolve({{{"REDIS_ADDR", "cache"}, {"REDIS_PASSWORD_FILE", big}}, {}});
        FAIL();
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find("is larger than"), std::string::npos) << e.what();
    }
}

TEST(yaml, full_shape) {
    temp_dir dir;
    const auto path = dir.write_file("c.yaml", R"(
upstream:
  host: Cache.Example
  port: 6380
  username: app
  db: 1
  tls: {enabled: true, verify: true, server_name: other.example}
pool:
  max_connections: 10
  min_idle_connections: 1
  connection_timeout: 2s
  socket_timeout: 750ms
  socket_keepalive: false
listen: {tcp: "127.0.0.1:7000", unix: /tmp/rs.sock}
http: {addr: "127.0.0.1:9999"}
log: {level: warn, format: text}
)");
    const auto r = resolve({{{"REDIS_SIDECAR_CONFIG", path}}, {}});
    const auto j = to_json(r.values);
    EXPECT_EQ(value_at(j, "upstream.host"), "cache.example");
    EXPECT_EQ(value_at(j, "upstream.port"), 6380);
    EXPECT_EQ(value_at(j, "upstream.tls.server_name"), "other.example");
    EXPECT_EQ(value_at(j, "pool.socket_timeout"), "750ms");
    EXPECT_EQ(value_at(j, "listen.unix"), "/tmp/rs.sock");
    EXPECT_EQ(value_at(j, "http.addr"), "127.0.0.1:9999");
    for (const auto& key :
         {"upstream.host", "upstream.port", "pool.max_connections", "log.format"}) {
        EXPECT_EQ(j.at("sources").at(key), "yaml:" + path) << key;
    }
}

TEST(yaml, unknown_key_is_an_error_naming_it) {
    temp_dir dir;
    const auto path = dir.write_file("c.yaml", "upstream:\n  hots: cache\n");
    try {
        resolve({{{"REDIS_SIDECAR_CONFIG", path}}, {}});
        FAIL();
    } catch (const config_error& e) {
        EXPECT_EQ(std::string(e.what()), path + ": unknown key 'upstream.hots'");
    }
}

TEST(yaml, syntax_error_names_the_line) {
    temp_dir dir;
    const auto path = dir.write_file("c.yaml", "upstream:\n  host: [unclosed\n");
    try {
        resolve({{{"REDIS_SIDECAR_CONFIG", path}}, {}});
        FAIL();
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find(path + ": not valid YAML at line"), std::string::npos)
            << e.what();
    }
}

// Every path that could print: JSON, warnings, errors. The secret must appear in none.
TEST(secrets, never_printed) {
    const std::string pw = "Sup3r-Secret-Token-Value";
    temp_dir dir;
    const auto pw_file = dir.write_file("pw", pw + "\n");
    const auto yaml = dir.write_file("c.yaml", "upstream:\n  password: " + pw + "x\n");
    const std::vector<std::pair<env_map, std::vector<std::string>>> cases = {
        {{{"REDIS_ADDR", "cache"}, {"REDIS_PASSWORD", pw}}, {}},
        {{{"REDIS_URL", "rediss://u:" + pw + "@cache:6380"}, {"REDIS_PASSWORD", pw + "2"}}, {}},
        {{{"REDIS_ADDR", "rediss://:" + pw + "@cache"}, {"REDIS_PASSWORD_FILE", pw_file}}, {}},
        {{{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_CONFIG", yaml}, {"ELASTICACHE_AUTH_TOKEN", pw}},
         {}},
        // Error paths.
        {{{"REDIS_URL", "rediss://u:" + pw + "@cache:0"}}, {}},
        {{{"REDIS_URL", "rediss://u:" + pw + "%zz@cache"}}, {}},
        {{{"REDIS_URL", "ftp://u:" + pw + "@cache"}}, {}},
        {{{"REDIS_URL", "rediss://:" + pw + "@cache"}, {"REDIS_TLS_ENABLED", "no"}}, {}},
        {{{"REDIS_ADDR", "u:" + pw + "@cache:6379"}}, {}},
        {{{"REDIS_ADDR", "cache"}, {"REDIS_PASSWORD", pw}, {"REDIS_PASSWORD_FILE", pw_file}}, {}},
    };
    for (const auto& [env, args] : cases) {
        std::string printed;
        try {
            const auto r = resolve({env, args});
            printed = to_json(r.values).dump() + joined(r.warnings);
            std::ostringstream os;
            os << *r.values.upstream.password;
            printed += os.str();
            EXPECT_EQ(os.str(), "<redacted>");
        } catch (const config_error& e) {
            printed = e.what();
        }
        EXPECT_EQ(printed.find(pw), std::string::npos) << printed;
        EXPECT_EQ(printed.find("Secret-Token"), std::string::npos) << printed;
    }
}

// `wait` and `shutdown` need only the admin address, picked as resolve() picks it, with no
// upstream configured.
TEST(http_addr_alone, same_precedence_and_no_upstream_needed) {
    temp_dir dir;
    const auto path = dir.write_file("c.yaml", "http:\n  addr: 127.0.0.1:9101\n");
    EXPECT_EQ(resolve_http_addr({{}, {}}), "0.0.0.0:9090");
    EXPECT_EQ(resolve_http_addr({{{"REDIS_SIDECAR_CONFIG", path}}, {}}), "127.0.0.1:9101");
    EXPECT_EQ(
        resolve_http_addr(
            {{{"REDIS_SIDECAR_CONFIG", path}, {"REDIS_SIDECAR_HTTP_ADDR", "127.0.0.2:9102"}}, {}}),
        "127.0.0.2:9102");
    EXPECT_EQ(resolve_http_addr(
                  {{{"REDIS_SIDECAR_HTTP_ADDR", "127.0.0.2:9102"}}, {"--http-addr", "[::1]:9103"}}),
              "[::1]:9103");
    // The same value resolve() gives for a full configuration.
    const inputs full{{{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_HTTP_ADDR", "127.0.0.3:9104"}}, {}};
    EXPECT_EQ(resolve_http_addr(full), resolve(full).values.http.addr);
    try {
        resolve_http_addr({{{"REDIS_SIDECAR_HTTP_ADDR", "nowhere"}}, {}});
        FAIL();
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find("REDIS_SIDECAR_HTTP_ADDR: 'nowhere'"),
                  std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace redis_sidecar::config
