#pragma once

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "redis_sidecar/aws/sigv4.hpp"

namespace redis_sidecar::aws {

/// A failure to configure or obtain credentials. `code` is a short label for metrics and logs
/// ("config", "http", "InvalidIdentityToken", ...); what() never holds a secret.
class aws_error : public std::runtime_error {
  public:
    aws_error(std::string code, const std::string& what)
        : std::runtime_error(what), code_(std::move(code)) {}
    const std::string& code() const { return code_; }

  private:
    std::string code_;
};

/// One HTTP exchange, as the injected transport performs it.
struct http_request {
    std::string method;  ///< "GET" or "POST"
    std::string url;     ///< http:// or https://host[:port]/path[?query]
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};
struct http_response {
    unsigned status = 0;
    std::string body;
};

/// A URL taken apart (only what the transport needs).
struct url_parts {
    std::string scheme;  ///< "http" or "https"
    std::string host;    ///< without brackets for IPv6
    std::string port;    ///< "443" / "80" when the URL has none
    std::string target;  ///< "/path?query", at least "/"
};
/// Throws aws_error("config", …) naming `variable` for anything but http(s)://host[:port][/…].
url_parts parse_url(std::string_view url, std::string_view variable);
/// The SDKs' rule: https anywhere; plain http only to loopback and the link-local addresses of
/// the ECS and EKS Pod Identity agents (169.254.170.2, 169.254.170.23, fd00:ec2::23).
bool http_allowed(const url_parts& u);

/// Where credentials come from, chosen from the environment in the SDKs' order.
struct credential_source {
    enum class kind { environment, web_identity, container };
    kind from = kind::environment;
    credentials fixed;          ///< environment: AWS_ACCESS_KEY_ID, ... (never refreshed)
    std::string role_arn;       ///< web identity: AWS_ROLE_ARN
    std::string token_file;     ///< web identity: AWS_WEB_IDENTITY_TOKEN_FILE (re-read each time)
    std::string session_name;   ///< web identity: AWS_ROLE_SESSION_NAME or redis-sidecar-<time>
    std::string sts_url;        ///< web identity: the STS endpoint
    std::string container_url;  ///< container: AWS_CONTAINER_CREDENTIALS_FULL_URI / RELATIVE_URI
    /// container: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read each time), else the token
    /// AWS_CONTAINER_AUTHORIZATION_TOKEN gives literally (empty: none).
    std::string authorization_file;
    config::secret authorization;
    std::string ca_bundle;  ///< AWS_CA_BUNDLE: the HTTPS trust store instead of the system's

    /// "environment (AWS_ACCESS_KEY_ID)", "web identity (role …, STS https://…)", ...: no secrets.
    std::string describe() const;
    /// "environment", "web_identity" or "container": a metric label.
    std::string_view label() const;
};

/// The first source the environment configures: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
/// (+ AWS_SESSION_TOKEN); AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (IRSA); then
/// AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI (EKS Pod Identity, ECS). Throws aws_error
/// ("config") naming the variable when one is half set or invalid, or when none is.
credential_source choose_source(const std::map<std::string, std::string>& env,
                                std::string_view region);

/// The STS endpoint: AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL, then the regional endpoint
/// https://sts.<region>.amazonaws.com (the global https://sts.amazonaws.com when
/// AWS_STS_REGIONAL_ENDPOINTS=legacy and the region is one the global endpoint served).
std::string sts_endpoint(const std::map<std::string, std::string>& env, std::string_view region);

/// STS AssumeRoleWithWebIdentity (unsigned, form-encoded POST) with the token file's content.
http_request web_identity_request(const credential_source& s, std::string_view web_identity_token);
/// Credentials from STS's XML reply; throws aws_error (code: STS's error code, or "http").
credentials parse_web_identity_response(const http_response& r);
/// The Pod Identity / ECS agent's GET, with `authorization` (may be empty) as Authorization.
http_request container_request(const credential_source& s, std::string_view authorization);
/// Credentials from the agent's JSON reply; throws aws_error.
credentials parse_container_response(const http_response& r);

/// "2026-12-02T13:04:05Z" (fractional seconds and a +00:00 offset accepted); nullopt otherwise.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s);

/// When credentials obtained at `obtained` should be fetched again: ahead of their expiry by
/// 5 minutes, or by half their lifetime when that is shorter; never for long-term keys.
std::optional<std::chrono::system_clock::time_point> refresh_at(
    const credentials& c, std::chrono::system_clock::time_point obtained);

/// The wait before retry number `failures` (1, 2, ...) of a failed fetch: 1 s doubling, at most
/// 60 s.
std::chrono::milliseconds retry_delay(unsigned failures);

/// A token is signed again this long after it was (as the AWS toolkits do); ElastiCache takes
/// it for token_validity, and a token is never given out within 20 s of that.
inline constexpr std::chrono::minutes token_refresh{5};

}  // namespace redis_sidecar::aws
