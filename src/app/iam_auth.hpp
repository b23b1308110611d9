#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "redis_sidecar/aws/credentials.hpp"
#include "redis_sidecar/config/settings.hpp"

namespace redis_sidecar::app {

/// What the IAM driver has done, for /status and the metrics.
struct iam_stats {
    std::string source;  ///< "environment", "web_identity" or "container"
    std::uint64_t credential_fetches = 0;
    std::uint64_t credential_failures = 0;
    std::uint64_t tokens_signed = 0;
    std::uint64_t tokens_refused = 0;  ///< AUTH refusals the pools reported (forced refreshes)
    std::string last_error;            ///< code ("InvalidIdentityToken", "http", ...); "" if none
    std::string last_error_message;    ///< never a secret
    /// Seconds until the credentials expire; absent for long-term keys or before any.
    std::optional<double> credentials_ttl_seconds;
    std::optional<double> token_age_seconds;  ///< since the current token was signed
};

/// ElastiCache IAM for the pools: obtains AWS credentials (aws::choose_source's chain), signs a
/// token at start, every aws::token_refresh and whenever the credentials change, and hands each
/// new token to `on_token` (the pools use it as the password: new connections AUTH with it, idle
/// ones re-authenticate at their next health round, the previous token is the fallback).
/// Credentials are fetched again ahead of expiry (aws::refresh_at), after a failure with backoff
/// (aws::retry_delay), and once when the upstream refuses a token (token_refused()).
/// Single-threaded, on `ex`.
class iam_auth {
  public:
    using token_handler = std::function<void(const config::secret& token)>;

    iam_auth(boost::asio::any_io_executor ex, aws::credential_source source, aws::iam_target target,
             std::chrono::milliseconds http_timeout);

    /// Called with every new token (the first one too).
    void on_token(token_handler h) { on_token_ = std::move(h); }
    /// Called with every failure to obtain credentials (which is then retried with backoff).
    void on_error(std::function<void(const std::string& code, const std::string& message)> h) {
        on_error_ = std::move(h);
    }
    void start();
    void stop();
    /// A pool's AUTH with a current token was refused: fetch credentials again (at most once per
    /// min_forced_refresh) and sign, then let the pools retry before calling it a failure.
    void token_refused();
    /// REDIS_USERNAME changed (a rotated Secret): sign for the new user now.
    void set_user(const std::string& user);

    const std::optional<config::secret>& token() const { return token_; }
    /// The user tokens are signed for (AUTH must name the same one).
    const std::string& user() const { return target_.user; }
    iam_stats stats() const;
    nlohmann::json status() const;

    /// Forced refreshes after refusals, at most this often.
    static constexpr std::chrono::seconds min_forced_refresh{30};

  private:
    void fetch();
    void on_fetched(const std::string& transport_error, const aws::http_response& r);
    void failed(const std::string& code, const std::string& message);
    void sign();
    void schedule(std::chrono::system_clock::time_point when);
    void on_timer();

    boost::asio::any_io_executor ex_;
    aws::credential_source source_;
    aws::iam_target target_;
    std::chrono::milliseconds http_timeout_;
    boost::asio::steady_timer timer_;
    token_handler on_token_;
    std::function<void(const std::string&, const std::string&)> on_error_;
    std::optional<aws::credentials> credentials_;
    std::chrono::system_clock::time_point obtained_{};
    std::optional<config::secret> token_;
    std::chrono::system_clock::time_point signed_at_{};
    std::optional<std::chrono::steady_clock::time_point> last_forced_;
    unsigned failures_ = 0;
    bool fetching_ = false;
    bool running_ = false;
    iam_stats stats_;
};

/// The target a token is signed for, from the resolved settings.
aws::iam_target iam_target_from(const config::settings& s);

/// The credential source the environment names for IAM; an invalid one is a config::config_error
/// (exit 2, like every other setting).
aws::credential_source iam_source_from(const config::settings& s,
                                       const std::map<std::string, std::string>& env);

/// One token, obtained now (credentials fetched once, no retry): for `check` and `iam-token`.
struct one_token {
    std::optional<config::secret> token;  ///< absent on failure
    std::string error;                    ///< why not (never a secret)
    std::string error_code;               ///< aws_error's code ("InvalidIdentityToken", "http")
    std::string source;                   ///< the credential source's description
    std::optional<double> credentials_ttl_seconds;
};
one_token iam_token_once(const config::settings& s, const std::map<std::string, std::string>& env);

/// `redis-sidecar iam-token`: prints a fresh token for the resolved settings (as
/// `aws rds generate-db-auth-token` does for RDS). Exit 0, or 1 with the reason on stderr.
int iam_token_command(const config::settings& s, const std::map<std::string, std::string>& env);

}  // namespace redis_sidecar::app
