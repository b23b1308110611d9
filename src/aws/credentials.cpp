#include "redis_sidecar/aws/credentials.hpp"

#include <algorithm>
#include <array>
#include <ctime>

#include <nlohmann/json.hpp>

#include "redis_sidecar/config/values.hpp"

namespace redis_sidecar::aws {

namespace {

using namespace std::chrono_literals;

/// Replies larger than this are not credentials.
constexpr std::size_t max_reply_for_parse = 64 * 1024;

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string get(const std::map<std::string, std::string>& env, const char* name) {
    const auto it = env.find(name);
    if (it == env.end()) return {};
    const auto& v = it->second;
    const auto first = v.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    return v.substr(first, v.find_last_not_of(" \t\r\n") - first + 1);
}

// The text of the first <tag>…</tag> in `xml` (no entities but &amp; &lt; &gt; &quot; &apos;).
std::optional<std::string> xml_text(std::string_view xml, std::string_view tag) {
    const auto open = "<" + std::string(tag) + ">";
    const auto close = "</" + std::string(tag) + ">";
    const auto a = xml.find(open);
    if (a == std::string_view::npos) return std::nullopt;
    const auto b = xml.find(close, a + open.size());
    if (b == std::string_view::npos) return std::nullopt;
    const auto raw = xml.substr(a + open.size(), b - a - open.size());
    std::string out;
    static constexpr std::array<std::pair<std::string_view, char>, 5> entities{
        {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}}};
    for (std::size_t i = 0; i < raw.size();) {
        bool replaced = false;
        if (raw[i] == '&') {
            for (const auto& [e, c] : entities) {
                if (raw.substr(i, e.size()) == e) {
                    out += c;
                    i += e.size();
                    replaced = true;
                    break;
                }
            }
        }
        if (!replaced) out += raw[i++];
    }
    return out;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string out;
    for (const auto& [k, v] : fields) {
        if (!out.empty()) out += '&';
        out += uri_encode(k) + "=" + uri_encode(v);
    }
    return out;
}

credentials checked(credentials c, const char* what) {
    if (c.access_key_id.empty() || c.secret_access_key.empty()) {
        throw aws_error("bad_reply",
                        std::string(what) + " reply has no AccessKeyId/SecretAccessKey");
    }
    if (!c.expiration) {
        throw aws_error("bad_reply", std::string(what) + " reply has no valid Expiration");
    }
    return c;
}

bool is_loopback_or_agent(const std::string& host) {
    if (host == "localhost" || host == "::1") return true;
    if (host == "169.254.170.2" || host == "169.254.170.23" || lower(host) == "fd00:ec2::23") {
        return true;
    }
    // 127.0.0.0/8 as a dotted quad.
    std::string_view rest = host;
    for (int i = 0; i < 4; ++i) {
        const auto dot = rest.find('.');
        if ((dot == std::string_view::npos) != (i == 3)) return false;
        const auto octet = config::parse_uint(rest.substr(0, dot), 0, 255);
        if (!octet || (i == 0 && *octet != 127)) return false;
        rest = i == 3 ? std::string_view() : rest.substr(dot + 1);
    }
    return true;
}

}  // namespace

url_parts parse_url(std::string_view url, std::string_view variable) {
    const auto fail = [&](const std::string& why) -> url_parts {
        throw aws_error("config", std::string(variable) + ": '" + std::string(url) + "' " + why);
    };
    url_parts u;
    const auto sep = url.find("://");
    if (sep == std::string_view::npos) return fail("is not an http:// or https:// URL");
    u.scheme = lower(url.substr(0, sep));
    if (u.scheme != "http" && u.scheme != "https") return fail("is not an http:// or https:// URL");
    auto rest = url.substr(sep + 3);
    const auto slash = rest.find_first_of("/?");
    auto authority = rest.substr(0, slash);
    u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (u.target.front() == '?') u.target.insert(0, "/");
    if (authority.find('@') != std::string_view::npos) return fail("must not carry user info");
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return fail("has an unclosed [IPv6] host");
        u.host = std::string(authority.substr(1, close - 1));
        authority.remove_prefix(close + 1);
        if (!authority.empty() && authority.front() != ':') return fail("has junk after ]");
        if (!authority.empty()) u.port = std::string(authority.substr(1));
    } else {
        const auto colon = authority.rfind(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
    }
    if (u.host.empty()) return fail("has no host");
    if (u.port.empty()) u.port = u.scheme == "https" ? "443" : "80";
    if (u.port.size() > 5 || !std::all_of(u.port.begin(), u.port.end(), ::isdigit) ||
        std::stoul(u.port) == 0 || std::stoul(u.port) > 65535) {
        return fail("has an invalid port");
    }
    return u;
}

bool http_allowed(const url_parts& u) {
    return u.scheme == "https" || is_loopback_or_agent(u.host);
}

std::string credential_source::describe() const {
    switch (from) {
        case kind::environment:
            return std::string("environment (AWS_ACCESS_KEY_ID") +
                   (fixed.session_token ? ", AWS_SESSION_TOKEN)" : ")");
        case kind::web_identity:
            return "web identity (role " + role_arn + ", token file " + token_file + ", STS " +
                   sts_url + ")";
        case kind::container:
            return "container credentials (" + container_url +
                   (authorization_file.empty() ? "" : ", token file " + authorization_file) + ")";
    }
    return {};
}

std::string_view credential_source::label() const {
    switch (from) {
        case kind::environment:
            return "environment";
        case kind::web_identity:
            return "web_identity";
        case kind::container:
            return "container";
    }
    return "unknown";
}

std::string sts_endpoint(const std::map<std::string, std::string>& env, std::string_view region) {
    if (auto v = get(env, "AWS_ENDPOINT_URL_STS"); !v.empty()) return v;
    if (auto v = get(env, "AWS_ENDPOINT_URL"); !v.empty()) return v;
    // The regions the global endpoint served before regional endpoints became the default.
    static constexpr std::array<std::string_view, 16> legacy_global{
        "ap-northeast-1", "ap-south-1",   "ap-southeast-1", "ap-southeast-2",
        "aws-global",     "ca-central-1", "eu-central-1",   "eu-north-1",
        "eu-west-1",      "eu-west-2",    "eu-west-3",      "sa-east-1",
        "us-east-1",      "us-east-2",    "us-west-1",      "us-west-2"};
    const bool legacy = lower(get(env, "AWS_STS_REGIONAL_ENDPOINTS")) == "legacy";
    if (legacy &&
        std::find(legacy_global.begin(), legacy_global.end(), region) != legacy_global.end()) {
        return "https://sts.amazonaws.com";
    }
    const bool china = region.rfind("cn-", 0) == 0;
    return "https://sts." + std::string(region) + (china ? ".amazonaws.com.cn" : ".amazonaws.com");
}

credential_source choose_source(const std::map<std::string, std::string>& env,
                                std::string_view region) {
    credential_source s;
    s.ca_bundle = get(env, "AWS_CA_BUNDLE");
    const auto key = get(env, "AWS_ACCESS_KEY_ID");
    const auto secret_key = get(env, "AWS_SECRET_ACCESS_KEY");
    if (!key.empty() || !secret_key.empty()) {
        if (key.empty()) {
            throw aws_error("config", "AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID");
        }
        if (secret_key.empty()) {
            throw aws_error("config", "AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY");
        }
        s.from = credential_source::kind::environment;
        s.fixed.access_key_id = key;
        s.fixed.secret_access_key = config::secret(secret_key);
        if (auto t = get(env, "AWS_SESSION_TOKEN"); !t.empty()) {
            s.fixed.session_token = config::secret(t);
        }
        s.fixed.source = "environment";
        return s;
    }
    const auto role = get(env, "AWS_ROLE_ARN");
    const auto token_file = get(env, "AWS_WEB_IDENTITY_TOKEN_FILE");
    if (!role.empty() || !token_file.empty()) {
        if (role.empty()) {
            throw aws_error("config", "AWS_WEB_IDENTITY_TOKEN_FILE is set without AWS_ROLE_ARN");
        }
        if (token_file.empty()) {
            throw aws_error("config", "AWS_ROLE_ARN is set without AWS_WEB_IDENTITY_TOKEN_FILE");
        }
        s.from = credential_source::kind::web_identity;
        s.role_arn = role;
        s.token_file = token_file;
        s.session_name = get(env, "AWS_ROLE_SESSION_NAME");
        if (s.session_name.empty()) {
            s.session_name = "redis-sidecar-" + std::to_string(std::time(nullptr));
        }
        s.sts_url = sts_endpoint(env, region);
        const auto variable =
            get(env, "AWS_ENDPOINT_URL_STS").empty()
                ? (get(env, "AWS_ENDPOINT_URL").empty() ? "the STS endpoint" : "AWS_ENDPOINT_URL")
                : "AWS_ENDPOINT_URL_STS";
        if (!http_allowed(parse_url(s.sts_url, variable))) {
            throw aws_error("config", std::string(variable) + ": '" + s.sts_url +
                                          "': plain http is allowed only to loopback");
        }
        return s;
    }
    auto full = get(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const auto relative = get(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    if (!full.empty() || !relative.empty()) {
        s.from = credential_source::kind::container;
        const char* variable = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
        if (full.empty()) {
            full = "http://169.254.170.2" + (relative.front() == '/' ? "" : "/" + relative);
            variable = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI";
        }
        if (!http_allowed(parse_url(full, variable))) {
            throw aws_error("config", std::string(variable) + ": '" + full +
                                          "': plain http is allowed only to loopback and the "
                                          "ECS / EKS Pod Identity agent addresses");
        }
        s.container_url = full;
        s.authorization_file = get(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        s.authorization = config::secret(get(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN"));
        return s;
    }
    throw aws_error("config",
                    "REDIS_IAM_AUTH is on but no AWS credentials are configured: set "
                    "AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (IRSA), "
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity) or "
                    "AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY");
}

http_request web_identity_request(const credential_source& s, std::string_view web_identity_token) {
    http_request r;
    r.method = "POST";
    r.url = s.sts_url;
    r.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                 {"Accept", "application/xml"}};
    r.body = form_encode({{"Action", "AssumeRoleWithWebIdentity"},
                          {"Version", "2011-06-15"},
                          {"RoleArn", s.role_arn},
                          {"RoleSessionName", s.session_name},
                          {"WebIdentityToken", std::string(web_identity_token)}});
    return r;
}

credentials parse_web_identity_response(const http_response& r) {
    if (r.body.size() > max_reply_for_parse) {
        throw aws_error("bad_reply", "STS reply is larger than 64 KiB");
    }
    if (r.status != 200) {
        const auto code = xml_text(r.body, "Code").value_or("http_" + std::to_string(r.status));
        const auto message = xml_text(r.body, "Message").value_or("");
        throw aws_error(code, "STS AssumeRoleWithWebIdentity failed: HTTP " +
                                  std::to_string(r.status) + " " + code +
                                  (message.empty() ? "" : ": " + message));
    }
    const auto creds = xml_text(r.body, "Credentials");
    if (!creds) throw aws_error("bad_reply", "STS reply has no <Credentials>");
    credentials c;
    c.access_key_id = xml_text(*creds, "AccessKeyId").value_or("");
    c.secret_access_key = config::secret(xml_text(*creds, "SecretAccessKey").value_or(""));
    if (auto t = xml_text(*creds, "SessionToken"); t && !t->empty()) {
        c.session_token = config::secret(*t);
    }
    c.expiration = parse_iso8601(xml_text(*creds, "Expiration").value_or(""));
    c.source = "web_identity";
    return checked(std::move(c), "STS");
}

http_request container_request(const credential_source& s, std::string_view authorization) {
    http_request r;
    r.method = "GET";
    r.url = s.container_url;
    r.headers = {{"Accept", "application/json"}};
    if (!authorization.empty()) r.headers.emplace_back("Authorization", authorization);
    return r;
}

credentials parse_container_response(const http_response& r) {
    if (r.body.size() > max_reply_for_parse) {
        throw aws_error("bad_reply", "container credentials reply is larger than 64 KiB");
    }
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    const auto field = [&j](const char* name) -> std::string {
        if (!j.is_object()) return {};
        const auto it = j.find(name);
        return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (r.status != 200) {
        auto code = field("code");
        if (code.empty()) code = "http_" + std::to_string(r.status);
        const auto message = field("message");
        throw aws_error(code, "container credentials request failed: HTTP " +
                                  std::to_string(r.status) +
                                  (message.empty() ? "" : ": " + message));
    }
    if (!j.is_object()) throw aws_error("bad_reply", "container credentials reply is not JSON");
    credentials c;
    c.access_key_id = field("AccessKeyId");
    c.secret_access_key = config::secret(field("SecretAccessKey"));
    if (auto t = field("Token"); !t.empty()) c.session_token = config::secret(t);
    c.expiration = parse_iso8601(field("Expiration"));
    c.source = "container";
    return checked(std::move(c), "container credentials");
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s) {
    // YYYY-MM-DDTHH:MM:SS, then optional fractional seconds, then Z or +00:00.
    if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':') {
        return std::nullopt;
    }
    const auto field = [&s](std::size_t at, std::size_t n, std::uint64_t min, std::uint64_t max) {
        const auto part = s.substr(at, n);
        const bool digits = std::all_of(part.begin(), part.end(),
                                        [](unsigned char c) { return std::isdigit(c) != 0; });
        return digits ? config::parse_uint(part, min, max) : std::nullopt;
    };
    // system_clock counts nanoseconds: about 292 years either side of 1970 fit.
    const auto year = field(0, 4, 1970, 2200);
    const auto month = field(5, 2, 1, 12);
    const auto day = field(8, 2, 1, 31);
    const auto hour = field(11, 2, 0, 23);
    const auto minute = field(14, 2, 0, 59);
    const auto second = field(17, 2, 0, 60);
    if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
    auto rest = s.substr(19);
    if (!rest.empty() && rest.front() == '.') {
        rest.remove_prefix(1);
        while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front())) != 0) {
            rest.remove_prefix(1);
        }
    }
    if (rest != "Z" && rest != "z" && rest != "+00:00") return std::nullopt;
    std::tm tm{};
    tm.tm_year = static_cast<int>(*year) - 1900;
    tm.tm_mon = static_cast<int>(*month) - 1;
    tm.tm_mday = static_cast<int>(*day);
    tm.tm_hour = static_cast<int>(*hour);
    tm.tm_min = static_cast<int>(*minute);
    tm.tm_sec = static_cast<int>(*second);
    const auto t = timegm(&tm);
    if (t == static_cast<std::time_t>(-1)) return std::nullopt;
    return std::chrono::system_clock::from_time_t(t);
}

std::optional<std::chrono::system_clock::time_point> refresh_at(
    const credentials& c, std::chrono::system_clock::time_point obtained) {
    if (!c.expiration) return std::nullopt;
    const auto lifetime = *c.expiration - obtained;
    const auto ahead = std::min<std::chrono::system_clock::duration>(5min, lifetime / 2);
    return *c.expiration - ahead;
}

std::chrono::milliseconds retry_delay(unsigned failures) {
    const unsigned shift = std::min(failures == 0 ? 0U : failures - 1, 6U);
    return std::min<std::chrono::milliseconds>(1000ms * (1U << shift), 60s);
}

}  // namespace redis_sidecar::aws
