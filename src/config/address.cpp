#include "redis_sidecar/config/address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "redis_sidecar/config/values.hpp"

namespace redis_sidecar::config {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decoding of URL user info. The reason never quotes the text: it may be a password.
std::string percent_decode(std::string_view s, const char* what) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        const int hi = i + 2 < s.size() ? hex_digit(s[i + 1]) : -1;
        const int lo = i + 2 < s.size() ? hex_digit(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            throw address_error(std::string("invalid percent-encoding in the URL's ") + what);
        }
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

bool is_hostname(std::string_view h) {
    if (h.empty() || h.size() > 253 || h.front() == '.' || h.front() == '-') return false;
    return std::all_of(h.begin(), h.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '.' || c == '_';
    });
}

std::string checked_host(std::string_view h) {
    if (h.empty()) {
        throw address_error("no host (a bare \":port\" would make clients dial [::])");
    }
    if (is_ip_literal(h)) return lower(h);
    if (!is_hostname(h)) throw address_error("'" + std::string(h) + "' is not a valid host name");
    return lower(h);
}

std::uint16_t checked_port(std::string_view p) {
    auto port = parse_port(p);
    if (!port) throw address_error("port '" + std::string(p) + "' is not in 1-65535");
    return *port;
}

// host, host:port, [v6], [v6]:port, bare v6.
void parse_host_port(std::string_view s, parsed_address& out) {
    if (!s.empty() && s.front() == '[') {
        const auto close = s.find(']');
        if (close == std::string_view::npos) throw address_error("'[' without ']'");
        const auto inside = s.substr(1, close - 1);
        if (!is_ip_literal(inside) || inside.find(':') == std::string_view::npos) {
            throw address_error("'" + std::string(inside) + "' in brackets is not an IPv6 address");
        }
        out.host = lower(inside);
        auto rest = s.substr(close + 1);
        if (rest.empty()) return;
        if (rest.front() != ':') throw address_error("unexpected text after ']'");
        out.port = checked_port(rest.substr(1));
        return;
    }
    const auto colons = std::count(s.begin(), s.end(), ':');
    if (colons > 1) {  // a bare IPv6 address: no port possible without brackets
        if (!is_ip_literal(s)) {
            throw address_error("'" + std::string(s) +
                                "' is not an IPv6 address (write [v6addr]:port for a port)");
        }
        out.host = lower(s);
        return;
    }
    if (colons == 1) {
        const auto colon = s.find(':');
        out.host = checked_host(s.substr(0, colon));
        out.port = checked_port(s.substr(colon + 1));
        return;
    }
    out.host = checked_host(s);
}

void parse_url(std::string_view scheme, std::string_view rest, parsed_address& out) {
    const auto s = lower(scheme);
    if (s == "redis" || s == "valkey") {
        out.tls = false;
    } else if (s == "rediss" || s == "valkeys") {
        out.tls = true;
    } else {
        throw address_error("unknown URL scheme '" + std::string(scheme) +
                            "://' (expected redis://, rediss://, valkey:// or valkeys://)");
    }
    out.from_url = true;

    // authority ends at the first '/', '?' or '#'; user info ends at the last '@' before that.
    const auto authority_end = rest.find_first_of("/?#");
    auto authority = rest.substr(0, authority_end);
    auto tail =
        authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        const auto userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
        const auto colon = userinfo.find(':');
        if (colon == std::string_view::npos) {
            if (!userinfo.empty()) {
                out.username = percent_decode(userinfo, "user name");
                out.user_without_password = true;
            }
        } else {
            auto user = userinfo.substr(0, colon);
            if (!user.empty()) out.username = percent_decode(user, "user name");
            auto pass = percent_decode(userinfo.substr(colon + 1), "password");
            if (!pass.empty()) out.password = secret(std::move(pass));
        }
    }
    parse_host_port(authority, out);

    if (const auto q = tail.find_first_of("?#"); q != std::string_view::npos) {
        out.had_query = tail[q] == '?' && q + 1 < tail.size();
        tail = tail.substr(0, q);
    }
    if (!tail.empty()) {
        auto path = tail.substr(1);  // drop '/'
        if (!path.empty()) {
            auto db = parse_uint(path, 0, 1'000'000);
            if (!db || path.find_first_not_of("0123456789") != std::string_view::npos) {
                throw address_error("URL path '/" + std::string(path) +
                                    "' is not a database number");
            }
            out.db = static_cast<unsigned>(*db);
        }
    }
}

}  // namespace

bool is_ip_literal(std::string_view host) {
    std::string h(host);
    unsigned char buf[16];
    return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

// Appended piece by piece: `"[" + std::string(host)` inserts at the front of a temporary, and
// GCC 12 at -O3 reports that memmove as a -Wrestrict overlap (a false positive, GCC bug 105329).
std::string join_host_port(std::string_view host, std::uint16_t port) {
    const bool bracket = host.find(':') != std::string_view::npos;
    std::string out;
    out.reserve(host.size() + 8);
    if (bracket) out.push_back('[');
    out.append(host);
    if (bracket) out.push_back(']');
    out.push_back(':');
    out.append(std::to_string(port));
    return out;
}

parsed_address parse_address(std::string_view value) {
    value = trim(value);
    parsed_address out;
    if (value.empty()) throw address_error("empty address");
    if (const auto sep = value.find("://"); sep != std::string_view::npos) {
        parse_url(value.substr(0, sep), value.substr(sep + 3), out);
        return out;
    }
    if (value.find('@') != std::string_view::npos || value.find('/') != std::string_view::npos) {
        throw address_error("expected host:port (or a redis:// / rediss:// URL)");
    }
    parse_host_port(value, out);
    return out;
}

}  // namespace redis_sidecar::config
