#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "redis_sidecar/config/secret.hpp"

namespace redis_sidecar::aws {

/// AWS credentials: a key pair and, for temporary ones (STS, Pod Identity), a session token and
/// an expiry. The secret parts print as "<redacted>".
struct credentials {
    std::string access_key_id;
    config::secret secret_access_key;
    std::optional<config::secret> session_token;
    /// When they stop working; absent for long-term keys.
    std::optional<std::chrono::system_clock::time_point> expiration;
    /// Where they came from: "environment", "web_identity" or "container".
    std::string source;
};

/// Lower-case hex of SHA-256(data).
std::string sha256_hex(std::string_view data);
/// HMAC-SHA256(key, data), raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);
/// RFC 3986 percent-encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ as %XX.
std::string uri_encode(std::string_view s);
/// "20261202T120000Z" and "20261202".
std::string amz_date(std::chrono::system_clock::time_point t);

/// One request to presign with SigV4 query parameters (GET, only `host` signed).
struct presign_request {
    std::string host;        ///< the signed `host` header, as is
    std::string path = "/";  ///< already URI-encoded
    std::string region;      ///< "us-east-1"
    std::string service;     ///< "elasticache"
    /// The request's own query parameters (unencoded); SigV4's are added.
    std::vector<std::pair<std::string, std::string>> query;
    std::chrono::seconds expires{900};
    /// The payload hash in the canonical request: SHA-256 of the empty body, or S3's
    /// "UNSIGNED-PAYLOAD".
    std::string payload_hash = sha256_hex("");
};

/// `<host><path>?<query>&X-Amz-Signature=<hex>`: the presigned URL without its scheme, the query in
/// canonical (sorted, encoded) order, X-Amz-Security-Token included when the credentials have
/// a session token.
std::string presign(const presign_request& r, const credentials& c,
                    std::chrono::system_clock::time_point now);

/// What an ElastiCache IAM token is for.
struct iam_target {
    std::string cache_name;  ///< replication group id or serverless cache name, lower case
    std::string user;        ///< the IAM-enabled ElastiCache user (its id equals its name)
    std::string region;
    bool serverless = false;  ///< adds ResourceType=ServerlessCache (signed)
};

/// How long ElastiCache accepts a token after its X-Amz-Date.
inline constexpr std::chrono::seconds token_validity{900};

/// The AUTH password for `t`: presign(GET http://<cache>/?Action=connect&User=<user>
/// [&ResourceType=ServerlessCache]) for service "elasticache", valid token_validity.
std::string elasticache_token(const iam_target& t, const credentials& c,
                              std::chrono::system_clock::time_point now);

}  // namespace redis_sidecar::aws
