#include "redis_sidecar/aws/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <stdexcept>

namespace redis_sidecar::aws {

namespace {

std::string hex(const unsigned char* data, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[data[i] >> 4U];
        out += digits[data[i] & 0xFU];
    }
    return out;
}

std::string hex(std::string_view raw) {
    return hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

std::string format_utc(std::chrono::system_clock::time_point t, const char* format) {
    const auto tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    std::array<char, 32> buf{};
    const auto n = std::strftime(buf.data(), buf.size(), format, &tm);
    return {buf.data(), n};
}

}  // namespace

std::string sha256_hex(std::string_view data) {
    std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
    return hex(digest.data(), digest.size());
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int n = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
             &n) == nullptr) {
        throw std::runtime_error("HMAC-SHA256 failed (OpenSSL)");
    }
    return {reinterpret_cast<const char*>(out.data()), n};
}

std::string uri_encode(std::string_view s) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out += ch;
        } else {
            out += '%';
            out += digits[c >> 4U];
            out += digits[c & 0xFU];
        }
    }
    return out;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
    return format_utc(t, "%Y%m%dT%H%M%SZ");
}

std::string presign(const presign_request& r, const credentials& c,
                    std::chrono::system_clock::time_point now) {
    const auto stamp = amz_date(now);
    const auto day = stamp.substr(0, 8);
    const auto scope = day + "/" + r.region + "/" + r.service + "/aws4_request";

    auto query = r.query;
    query.emplace_back("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
    query.emplace_back("X-Amz-Credential", c.access_key_id + "/" + scope);
    query.emplace_back("X-Amz-Date", stamp);
    query.emplace_back("X-Amz-Expires", std::to_string(r.expires.count()));
    if (c.session_token) query.emplace_back("X-Amz-Security-Token", c.session_token->reveal());
    query.emplace_back("X-Amz-SignedHeaders", "host");
    std::vector<std::pair<std::string, std::string>> encoded;
    encoded.reserve(query.size());
    for (const auto& [k, v] : query) encoded.emplace_back(uri_encode(k), uri_encode(v));
    std::sort(encoded.begin(), encoded.end());
    std::string canonical_query;
    for (const auto& [k, v] : encoded) {
        if (!canonical_query.empty()) canonical_query += '&';
        canonical_query += k + "=" + v;
    }

    const auto canonical_request = "GET\n" + r.path + "\n" + canonical_query + "\nhost:" + r.host +
                                   "\n\nhost\n" + r.payload_hash;
    const auto string_to_sign =
        "AWS4-HMAC-SHA256\n" + stamp + "\n" + scope + "\n" + sha256_hex(canonical_request);
    auto key = hmac_sha256("AWS4" + c.secret_access_key.reveal(), day);
    key = hmac_sha256(key, r.region);
    key = hmac_sha256(key, r.service);
    key = hmac_sha256(key, "aws4_request");
    return r.host + r.path + "?" + canonical_query +
           "&X-Amz-Signature=" + hex(hmac_sha256(key, string_to_sign));
}

std::string elasticache_token(const iam_target& t, const credentials& c,
                              std::chrono::system_clock::time_point now) {
    presign_request r;
    r.host = t.cache_name;
    r.region = t.region;
    r.service = "elasticache";
    r.query = {{"Action", "connect"}, {"User", t.user}};
    if (t.serverless) r.query.emplace_back("ResourceType", "ServerlessCache");
    r.expires = token_validity;
    return presign(r, c, now);
}

}  // namespace redis_sidecar::aws
