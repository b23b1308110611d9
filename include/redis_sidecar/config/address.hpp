#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "redis_sidecar/config/secret.hpp"

namespace redis_sidecar::config {

/// What one address-carrying value held. A plain "host:port" fills host and maybe port; a URL
/// can fill every field.
struct parsed_address {
    std::string host;                     ///< lower-cased name, IPv4, or IPv6 without brackets
    std::optional<std::uint16_t> port;    ///< absent when the value named none
    bool from_url = false;                ///< the value was a redis:// style URL
    std::optional<bool> tls;              ///< from the URL scheme: rediss/valkeys → true
    std::optional<std::string> username;  ///< from the URL's user info, percent-decoded
    std::optional<secret> password;       ///< from the URL's user info, percent-decoded
    std::optional<unsigned> db;           ///< from the URL's path
    bool had_query = false;               ///< the URL had a ?query, which is ignored
    bool user_without_password = false;   ///< "redis://name@host": a user name and no password
};

/// Thrown for a value that cannot be an address; what() never contains the value's user info.
class address_error : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Parses "host", "host:port", "[v6]", "[v6]:port", a bare IPv6 address, or a URL
/// "redis[s]://[user[:password]@]host[:port][/db]" (also valkey/valkeys). Surrounding white
/// space is dropped. Throws address_error with a reason (not naming the variable).
parsed_address parse_address(std::string_view value);

/// True when the text is an IPv4 or IPv6 literal (no brackets).
bool is_ip_literal(std::string_view host);

/// "host:port", with brackets around an IPv6 literal.
std::string join_host_port(std::string_view host, std::uint16_t port);

}  // namespace redis_sidecar::config
