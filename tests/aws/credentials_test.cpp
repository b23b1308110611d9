// The credential chain's choices, endpoints and reply parsers, and the refresh schedule.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "redis_sidecar/aws/credentials.hpp"

namespace aws = redis_sidecar::aws;
using env_map = std::map<std::string, std::string>;
using namespace std::chrono_literals;

namespace {

std::string error_of(const env_map& env) {
    try {
        aws::choose_source(env, "us-east-1");
    } catch (const aws::aws_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(credential_source, sdk_order_environment_then_web_identity_then_container) {
    env_map env{{"AWS_ACCESS_KEY_ID", "AKID"},
                {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"},
                {"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"},
                {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"}};
    auto s = aws::choose_source(env, "us-east-1");
    EXPECT_EQ(s.from, aws::credential_source::kind::environment);
    EXPECT_EQ(s.fixed.access_key_id, "AKID");
    EXPECT_EQ(s.fixed.secret_access_key.reveal(), "SECRET");
    EXPECT_FALSE(s.fixed.session_token);
    EXPECT_EQ(s.describe().find("SECRET"), std::string::npos);

    env.erase("AWS_ACCESS_KEY_ID");
    env.erase("AWS_SECRET_ACCESS_KEY");
    s = aws::choose_source(env, "eu-central-1");
    EXPECT_EQ(s.from, aws::credential_source::kind::web_identity);
    EXPECT_EQ(s.sts_url, "https://sts.eu-central-1.amazonaws.com");
    EXPECT_EQ(s.token_file, "/var/run/token");
    EXPECT_EQ(s.session_name.rfind("redis-sidecar-", 0), 0U);

    env.erase("AWS_ROLE_ARN");
    env.erase("AWS_WEB_IDENTITY_TOKEN_FILE");
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = "/var/run/pod-identity/token";
    s = aws::choose_source(env, "us-east-1");
    EXPECT_EQ(s.from, aws::credential_source::kind::container);
    EXPECT_EQ(s.container_url, "http://169.254.170.23/v1/credentials");
    EXPECT_EQ(s.authorization_file, "/var/run/pod-identity/token");
    EXPECT_EQ(s.label(), "container");
}

TEST(credential_source, half_set_or_missing_variables_are_named) {
    EXPECT_NE(error_of({{"AWS_ACCESS_KEY_ID", "A"}}).find("without AWS_SECRET_ACCESS_KEY"),
              std::string::npos);
    EXPECT_NE(error_of({{"AWS_SECRET_ACCESS_KEY", "S"}}).find("without AWS_ACCESS_KEY_ID"),
              std::string::npos);
    EXPECT_NE(error_of({{"AWS_ROLE_ARN", "arn"}}).find("without AWS_WEB_IDENTITY_TOKEN_FILE"),
              std::string::npos);
    EXPECT_NE(error_of({{"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"}}).find("without AWS_ROLE_ARN"),
              std::string::npos);
    EXPECT_NE(error_of({}).find("no AWS credentials are configured"), std::string::npos);
    // Plain http leaves the pod only to the agents' link-local addresses.
    EXPECT_NE(error_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/creds"}})
                  .find("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
              std::string::npos);
    EXPECT_EQ(error_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://10.0.0.1/creds"}}), "");
    EXPECT_EQ(error_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://[fd00:ec2::23]/v1"}}), "");
    EXPECT_EQ(error_of({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x"}}), "");
    EXPECT_NE(error_of({{"AWS_ROLE_ARN", "arn"},
                        {"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"},
                        {"AWS_ENDPOINT_URL_STS", "http://sts.example.com"}})
                  .find("AWS_ENDPOINT_URL_STS"),
              std::string::npos);
    EXPECT_EQ(error_of({{"AWS_ROLE_ARN", "arn"},
                        {"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"},
                        {"AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566"}}),
              "");
    EXPECT_NE(error_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://x"}}).find("not an http"),
              std::string::npos);
}

TEST(credential_source, sts_endpoint_overrides_and_legacy_global) {
    EXPECT_EQ(aws::sts_endpoint({}, "us-east-1"), "https://sts.us-east-1.amazonaws.com");
    EXPECT_EQ(aws::sts_endpoint({}, "cn-north-1"), "https://sts.cn-north-1.amazonaws.com.cn");
    EXPECT_EQ(aws::sts_endpoint({{"AWS_STS_REGIONAL_ENDPOINTS", "legacy"}}, "us-east-1"),
              "https://sts.amazonaws.com");
    EXPECT_EQ(aws::sts_endpoint({{"AWS_STS_REGIONAL_ENDPOINTS", "legacy"}}, "af-south-1"),
              "https://sts.af-south-1.amazonaws.com");
    EXPECT_EQ(aws::sts_endpoint({{"AWS_STS_REGIONAL_ENDPOINTS", "regional"}}, "us-east-1"),
              "https://sts.us-east-1.amazonaws.com");
    EXPECT_EQ(aws::sts_endpoint({{"AWS_ENDPOINT_URL", "https://a"}}, "us-east-1"), "https://a");
    EXPECT_EQ(aws::sts_endpoint(
                  {{"AWS_ENDPOINT_URL", "https://a"}, {"AWS_ENDPOINT_URL_STS", "https://b"}},
                  "us-east-1"),
              "https://b");
}

TEST(credential_source, urls) {
    auto u = aws::parse_url("https://sts.us-east-1.amazonaws.com", "X");
    EXPECT_EQ(u.host, "sts.us-east-1.amazonaws.com");
    EXPECT_EQ(u.port, "443");
    EXPECT_EQ(u.target, "/");
    u = aws::parse_url("http://[::1]:8080/v1/credentials?x=1", "X");
    EXPECT_EQ(u.host, "::1");
    EXPECT_EQ(u.port, "8080");
    EXPECT_EQ(u.target, "/v1/credentials?x=1");
    EXPECT_TRUE(aws::http_allowed(u));
    EXPECT_TRUE(aws::http_allowed(aws::parse_url("http://127.9.0.1/", "X")));
    EXPECT_FALSE(aws::http_allowed(aws::parse_url("http://127.0.0.1.example.com/", "X")));
    EXPECT_FALSE(aws::http_allowed(aws::parse_url("http://169.254.169.254/", "X")));
    EXPECT_THROW(aws::parse_url("https://user@host/", "X"), aws::aws_error);
    EXPECT_THROW(aws::parse_url("https://host:99999/", "X"), aws::aws_error);
    EXPECT_THROW(aws::parse_url("https://:1/", "X"), aws::aws_error);
}

TEST(web_identity, request_and_replies) {
    aws::credential_source s;
    s.from = aws::credential_source::kind::web_identity;
    s.role_arn = "arn:aws:iam::123456789012:role/app";
    s.session_name = "redis-sidecar-1";
    s.sts_url = "https://sts.us-east-1.amazonaws.com";
    const auto r = aws::web_identity_request(s, "eyJ.a+b/c=");
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.body,
              "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%"
              "3A123456789012%3Arole%2Fapp&RoleSessionName=redis-sidecar-1&WebIdentityToken=eyJ."
              "a%2Bb%2Fc%3D");

    const std::string ok =
        R"(<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>secret&amp;key</SecretAccessKey>
      <SessionToken>session-token</SessionToken>
      <Expiration>2026-12-02T13:04:05Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>)";
    const auto c = aws::parse_web_identity_response({200, ok});
    EXPECT_EQ(c.access_key_id, "ASIAEXAMPLE");
    EXPECT_EQ(c.secret_access_key.reveal(), "secret&key");
    ASSERT_TRUE(c.session_token);
    EXPECT_EQ(c.session_token->reveal(), "session-token");
    EXPECT_EQ(c.expiration, aws::parse_iso8601("2026-12-02T13:04:05Z"));

    const std::string denied =
        R"(<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>)"
        R"(<Message>Incorrect token audience</Message></Error></ErrorResponse>)";
    try {
        aws::parse_web_identity_response({400, denied});
        FAIL() << "an error reply parsed as credentials";
    } catch (const aws::aws_error& e) {
        EXPECT_EQ(e.code(), "InvalidIdentityToken");
        EXPECT_NE(std::string(e.what()).find("Incorrect token audience"), std::string::npos);
    }
    EXPECT_THROW(aws::parse_web_identity_response({200, "<x/>"}), aws::aws_error);
    EXPECT_THROW(aws::parse_web_identity_response({503, ""}), aws::aws_error);
    EXPECT_THROW(aws::parse_web_identity_response({200, std::string(70000, 'x')}), aws::aws_error);
}

TEST(container, request_and_replies) {
    aws::credential_source s;
    s.container_url = "http://169.254.170.23/v1/credentials";
    const auto r = aws::container_request(s, "pod-token");
    EXPECT_EQ(r.method, "GET");
    ASSERT_EQ(r.headers.size(), 2U);
    EXPECT_EQ(r.headers[1].first, "Authorization");
    EXPECT_EQ(r.headers[1].second, "pod-token");

    const auto c = aws::parse_container_response(
        {200, R"({"AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t",)"
              R"("AccountId":"1","Expiration":"2026-12-02T13:04:05.123Z"})"});
    EXPECT_EQ(c.access_key_id, "ASIA1");
    EXPECT_EQ(c.expiration, aws::parse_iso8601("2026-12-02T13:04:05Z"));
    EXPECT_THROW(aws::parse_container_response({200, "not json"}), aws::aws_error);
    EXPECT_THROW(aws::parse_container_response({200, R"({"AccessKeyId":"A"})"}), aws::aws_error);
    try {
        aws::parse_container_response({401, R"({"code":"AccessDeniedException"})"});
        FAIL();
    } catch (const aws::aws_error& e) {
        EXPECT_EQ(e.code(), "AccessDeniedException");
    }
}

TEST(schedule, refresh_ahead_of_expiry_and_backoff) {
    EXPECT_FALSE(aws::parse_iso8601("2026-13-02T13:04:05Z"));
    EXPECT_FALSE(aws::parse_iso8601("4961-12-02T13:04:05Z"));  // beyond system_clock (fuzzing)
    EXPECT_FALSE(aws::parse_iso8601("2026-12-02 13:04:05"));
    EXPECT_FALSE(aws::parse_iso8601("2026-12-02T13:04:05+02:00"));
    const auto t0 = *aws::parse_iso8601("2026-12-02T12:00:00Z");
    aws::credentials c;
    EXPECT_FALSE(aws::refresh_at(c, t0));  // long-term keys
    c.expiration = t0 + 1h;
    EXPECT_EQ(aws::refresh_at(c, t0), t0 + 55min);
    c.expiration = t0 + 20s;  // short-lived: half the lifetime ahead
    EXPECT_EQ(aws::refresh_at(c, t0), t0 + 10s);
    EXPECT_EQ(aws::retry_delay(1), 1s);
    EXPECT_EQ(aws::retry_delay(2), 2s);
    EXPECT_EQ(aws::retry_delay(6), 32s);
    EXPECT_EQ(aws::retry_delay(7), 60s);
    EXPECT_EQ(aws::retry_delay(100), 60s);
}
