// SigV4 presigning: AWS's published example, and the shape of an ElastiCache IAM token.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "redis_sidecar/aws/sigv4.hpp"

namespace aws = redis_sidecar::aws;
using redis_sidecar::config::secret;

namespace {

std::chrono::system_clock::time_point at(std::time_t t) {
    return std::chrono::system_clock::from_time_t(t);
}

// The query parameters of a presigned URL (still encoded), by name.
std::map<std::string, std::string> query_of(const std::string& url) {
    std::map<std::string, std::string> q;
    auto rest = url.substr(url.find('?') + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        q[pair.substr(0, eq)] = pair.substr(eq + 1);
        rest = amp == std::string::npos ? "" : rest.substr(amp + 1);
    }
    return q;
}

aws::credentials example_keys() {
    aws::credentials c;
    c.access_key_id = "AKIAIOSFODNN7EXAMPLE";
    c.secret_access_key = secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    return c;
}

}  // namespace

TEST(sigv4, digests) {
    EXPECT_EQ(aws::sha256_hex(""),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(aws::uri_encode("a b/c~d_e-f.g+h=i&j%"), "a%20b%2Fc~d_e-f.g%2Bh%3Di%26j%25");
    EXPECT_EQ(aws::amz_date(at(1369353600)), "20130524T000000Z");
}

// "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", Amazon S3 API
// Reference: GET /test.txt on examplebucket, 24 May 2013, valid 86400 s.
TEST(sigv4, matches_aws_published_presigned_url_example) {
    aws::presign_request r;
    r.host = "examplebucket.s3.amazonaws.com";
    r.path = "/test.txt";
    r.region = "us-east-1";
    r.service = "s3";
    r.expires = std::chrono::seconds(86400);
    r.payload_hash = "UNSIGNED-PAYLOAD";
    const auto url = aws::presign(r, example_keys(), at(1369353600));
    EXPECT_EQ(query_of(url).at("X-Amz-Signature"),
              "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        << url;
    EXPECT_EQ(url.substr(0, url.find('?')), "examplebucket.s3.amazonaws.com/test.txt");
}

TEST(sigv4, elasticache_token_carries_what_elasticache_checks) {
    auto c = example_keys();
    c.session_token = secret("FQoGZXIvYXdzE+/session=");
    const aws::iam_target t{.cache_name = "my-cache", .user = "app-user", .region = "eu-west-1"};
    const auto token = aws::elasticache_token(t, c, at(1764676800));  // 2025-12-02T12:00:00Z
    EXPECT_EQ(token.rfind("my-cache/?Action=connect&User=app-user&X-Amz-Algorithm=", 0), 0U)
        << token;
    EXPECT_EQ(token.find("http"), std::string::npos);
    const auto q = query_of(token);
    EXPECT_EQ(q.at("X-Amz-Credential"),
              "AKIAIOSFODNN7EXAMPLE%2F20251202%2Feu-west-1%2Felasticache%2Faws4_request");
    EXPECT_EQ(q.at("X-Amz-Date"), "20251202T120000Z");
    EXPECT_EQ(q.at("X-Amz-Expires"), "900");
    EXPECT_EQ(q.at("X-Amz-SignedHeaders"), "host");
    EXPECT_EQ(q.at("X-Amz-Security-Token"), "FQoGZXIvYXdzE%2B%2Fsession%3D");
    EXPECT_EQ(q.count("ResourceType"), 0U);
    EXPECT_EQ(q.at("X-Amz-Signature").size(), 64U);

    // Serverless signs ResourceType too: another signature, not just another parameter.
    auto serverless = t;
    serverless.serverless = true;
    const auto s_token = aws::elasticache_token(serverless, c, at(1764676800));
    EXPECT_EQ(query_of(s_token).at("ResourceType"), "ServerlessCache");
    EXPECT_NE(query_of(s_token).at("X-Amz-Signature"), q.at("X-Amz-Signature"));
    // Everything signed changes the signature: the time, the user, the key.
    EXPECT_NE(query_of(aws::elasticache_token(t, c, at(1764676801))).at("X-Amz-Signature"),
              q.at("X-Amz-Signature"));
    auto other_user = t;
    other_user.user = "app-user2";
    EXPECT_NE(query_of(aws::elasticache_token(other_user, c, at(1764676800))).at("X-Amz-Signature"),
              q.at("X-Amz-Signature"));
    // Without a session token, none is sent.
    EXPECT_EQ(query_of(aws::elasticache_token(t, example_keys(), at(1764676800)))
                  .count("X-Amz-Security-Token"),
              0U);
}
