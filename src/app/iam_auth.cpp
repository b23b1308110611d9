#include "iam_auth.hpp"

#include <boost/asio/io_context.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

#include "aws_http.hpp"
#include "redis_sidecar/config/resolver.hpp"
#include "redis_sidecar/config/values.hpp"
#include "redis_sidecar/log/logger.hpp"

namespace redis_sidecar::app {

namespace {

using clock = std::chrono::system_clock;
using namespace std::chrono_literals;

/// A token file larger than this is not a token.
constexpr std::size_t max_token_file = 64 * 1024;

// A mounted token file's content, trimmed; throws aws_error naming the file.
std::string read_token_file(const std::string& path, const char* variable) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw aws::aws_error("token_file", std::string(variable) + ": cannot read " + path);
    }
    std::string text(max_token_file + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_token_file) {
        throw aws::aws_error("token_file",
                             std::string(variable) + ": " + path + " is larger than 64 KiB");
    }
    auto trimmed = std::string(config::trim(text));
    if (trimmed.empty()) {
        throw aws::aws_error("token_file", std::string(variable) + ": " + path + " is empty");
    }
    return trimmed;
}

double seconds(clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

}  // namespace

aws::iam_target iam_target_from(const config::settings& s) {
    return {.cache_name = s.iam.cache_name,
            .user = s.upstream.username.value_or(""),
            .region = s.iam.region,
            .serverless = s.iam.serverless};
}

aws::credential_source iam_source_from(const config::settings& s,
                                       const std::map<std::string, std::string>& env) {
    try {
        return aws::choose_source(env, s.iam.region);
    } catch (const aws::aws_error& e) {
        throw config::config_error(e.what());
    }
}

one_token iam_token_once(const config::settings& s, const std::map<std::string, std::string>& env) {
    boost::asio::io_context io;
    const auto source = iam_source_from(s, env);
    iam_auth iam(io.get_executor(), source, iam_target_from(s), s.pool.connection_timeout);
    one_token out;
    out.source = source.describe();
    iam.on_token([&](const config::secret& token) {
        out.token = token;
        out.credentials_ttl_seconds = iam.stats().credentials_ttl_seconds;
        iam.stop();
        io.stop();
    });
    iam.on_error([&](const std::string& code, const std::string& why) {
        out.error = why;
        out.error_code = code;
        iam.stop();
        io.stop();
    });
    iam.start();
    io.run();
    return out;
}

int iam_token_command(const config::settings& s, const std::map<std::string, std::string>& env) {
    const auto t = iam_token_once(s, env);
    if (!t.token) {
        std::cerr << "redis-sidecar iam-token: " << t.error << "\n";
        return 1;
    }
    // The one place a token is printed: the user asked for it, on stdout.
    std::cout << t.token->reveal() << "\n";
    return 0;
}

iam_auth::iam_auth(boost::asio::any_io_executor ex, aws::credential_source source,
                   aws::iam_target target, std::chrono::milliseconds http_timeout)
    : ex_(ex),
      source_(std::move(source)),
      target_(std::move(target)),
      http_timeout_(http_timeout),
      timer_(ex) {
    stats_.source = std::string(source_.label());
}

void iam_auth::start() {
    running_ = true;
    log::info("IAM authentication", {{"credentials", source_.describe()},
                                     {"cache", target_.cache_name},
                                     {"user", target_.user},
                                     {"region", target_.region},
                                     {"serverless", target_.serverless ? "true" : "false"}});
    if (source_.from == aws::credential_source::kind::environment) {
        credentials_ = source_.fixed;
        obtained_ = clock::now();
        sign();
        return;
    }
    fetch();
}

void iam_auth::stop() {
    running_ = false;
    timer_.cancel();
}

void iam_auth::fetch() {
    if (fetching_ || !running_) return;
    aws::http_request request;
    try {
        if (source_.from == aws::credential_source::kind::web_identity) {
            // Re-read every time: the kubelet rotates the projected token.
            request = aws::web_identity_request(
                source_, read_token_file(source_.token_file, "AWS_WEB_IDENTITY_TOKEN_FILE"));
        } else {
            const auto authorization =
                source_.authorization_file.empty()
                    ? source_.authorization.reveal()
                    : read_token_file(source_.authorization_file,
                                      "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
            request = aws::container_request(source_, authorization);
        }
    } catch (const aws::aws_error& e) {
        failed(e.code(), e.what());
        return;
    }
    fetching_ = true;
    ++stats_.credential_fetches;
    http_fetch(ex_, std::move(request), source_.ca_bundle, http_timeout_,
               [this](const std::string& error, const aws::http_response& r) {
                   fetching_ = false;
                   if (running_) on_fetched(error, r);
               });
}

void iam_auth::on_fetched(const std::string& transport_error, const aws::http_response& r) {
    if (!transport_error.empty()) {
        failed("http", "AWS credentials from " + source_.describe() + ": " + transport_error);
        return;
    }
    try {
        auto c = source_.from == aws::credential_source::kind::web_identity
                     ? aws::parse_web_identity_response(r)
                     : aws::parse_container_response(r);
        const auto now = clock::now();
        if (c.expiration && *c.expiration <= now) {
            throw aws::aws_error("expired", "the credentials received have already expired");
        }
        const bool first = !credentials_;
        credentials_ = std::move(c);
        obtained_ = now;
        failures_ = 0;
        stats_.last_error.clear();
        stats_.last_error_message.clear();
        log::write(
            first ? log::level::info : log::level::debug, "AWS credentials obtained",
            {{"source", std::string(source_.label())},
             {"access_key_id", credentials_->access_key_id},
             {"expires_in_s",
              std::to_string(static_cast<long long>(seconds(*credentials_->expiration - now)))}});
        sign();
    } catch (const aws::aws_error& e) {
        failed(e.code(), e.what());
    }
}

void iam_auth::failed(const std::string& code, const std::string& message) {
    ++failures_;
    ++stats_.credential_failures;
    stats_.last_error = code;
    stats_.last_error_message = message;
    const auto delay = aws::retry_delay(failures_);
    log::warn("cannot obtain AWS credentials for IAM authentication",
              {{"error", code},
               {"detail", message},
               {"retry_in_ms", std::to_string(delay.count())},
               {"have_valid_credentials", credentials_ && (!credentials_->expiration ||
                                                           *credentials_->expiration > clock::now())
                                              ? "true"
                                              : "false"}});
    schedule(clock::now() + delay);
    if (on_error_) on_error_(code, message);
}

void iam_auth::sign() {
    if (!credentials_ || !running_) return;
    const auto now = clock::now();
    token_ = config::secret(aws::elasticache_token(target_, *credentials_, now));
    signed_at_ = now;
    ++stats_.tokens_signed;
    if (on_token_) on_token_(*token_);
    auto next = now + aws::token_refresh;
    if (const auto at = aws::refresh_at(*credentials_, obtained_); at && *at < next) next = *at;
    schedule(std::max(next, now + 1s));  // credentials that live a second do not make a loop
}

void iam_auth::schedule(clock::time_point when) {
    timer_.expires_after(std::max(clock::duration::zero(), when - clock::now()));
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec && running_) on_timer();
    });
}

void iam_auth::on_timer() {
    const auto now = clock::now();
    const auto at = credentials_ ? aws::refresh_at(*credentials_, obtained_) : std::nullopt;
    if (!credentials_ || (at && now >= *at)) {
        fetch();  // signs when they arrive; retries with backoff when they do not
        // Meanwhile a token older than token_refresh is replaced with the current credentials,
        // unless they are about to expire (a token signed with them dies with them).
        if (credentials_ && now - signed_at_ >= aws::token_refresh &&
            (!credentials_->expiration || *credentials_->expiration > now + 20s)) {
            token_ = config::secret(aws::elasticache_token(target_, *credentials_, now));
            signed_at_ = now;
            ++stats_.tokens_signed;
            if (on_token_) on_token_(*token_);
        }
        return;
    }
    sign();
}

void iam_auth::token_refused() {
    const auto now = std::chrono::steady_clock::now();
    if (last_forced_ && now - *last_forced_ < min_forced_refresh) return;
    last_forced_ = now;
    ++stats_.tokens_refused;
    log::error(
        "ElastiCache refused the IAM token; fetching credentials again. If it persists: is "
        "the user IAM-enabled (user id equal to its name, authentication mode iam), does the "
        "role allow elasticache:Connect on the cache and the user, and is REDIS_IAM_CACHE_NAME "
        "the replication group id or serverless cache name (REDIS_IAM_SERVERLESS for Serverless)?",
        {{"user", target_.user},
         {"cache", target_.cache_name},
         {"region", target_.region},
         {"serverless", target_.serverless ? "true" : "false"},
         {"credentials", std::string(source_.label())}});
    if (source_.from == aws::credential_source::kind::environment) {
        sign();
    } else {
        timer_.cancel();
        fetch();
    }
}

void iam_auth::set_user(const std::string& user) {
    if (user == target_.user) return;
    target_.user = user;
    log::info("IAM user changed; signing a token for it", {{"user", user}});
    sign();
}

iam_stats iam_auth::stats() const {
    auto s = stats_;
    const auto now = clock::now();
    if (credentials_ && credentials_->expiration) {
        s.credentials_ttl_seconds = seconds(*credentials_->expiration - now);
    }
    if (token_) s.token_age_seconds = seconds(now - signed_at_);
    return s;
}

nlohmann::json iam_auth::status() const {
    const auto s = stats();
    nlohmann::json j = {{"credentials_source", s.source},
                        {"cache_name", target_.cache_name},
                        {"user", target_.user},
                        {"region", target_.region},
                        {"serverless", target_.serverless},
                        {"credential_fetches", s.credential_fetches},
                        {"credential_failures", s.credential_failures},
                        {"tokens_signed", s.tokens_signed},
                        {"tokens_refused", s.tokens_refused},
                        {"last_error", s.last_error.empty() ? nlohmann::json(nullptr)
                                                            : nlohmann::json(s.last_error)},
                        {"last_error_message", s.last_error_message.empty()
                                                   ? nlohmann::json(nullptr)
                                                   : nlohmann::json(s.last_error_message)}};
    j["credentials_expire_in_seconds"] =
        s.credentials_ttl_seconds ? nlohmann::json(*s.credentials_ttl_seconds) : nullptr;
    j["token_age_seconds"] = s.token_age_seconds ? nlohmann::json(*s.token_age_seconds) : nullptr;
    return j;
}

}  // namespace redis_sidecar::app
