#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace redis_sidecar::config {

/// Drops leading and trailing white space (space, tab, CR, LF, VT, FF).
std::string_view trim(std::string_view s);

/// true/false/1/0/yes/no/on/off in any case; nullopt for anything else.
std::optional<bool> parse_bool(std::string_view s);

/// "250ms", "5s", "2m", "1h" or a bare number of seconds ("20", "0.5"); nullopt when malformed,
/// negative or absurdly large (more than a day).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);

/// The canonical form parse_duration reads back: "5s" for whole seconds, "250ms" otherwise.
std::string format_duration(std::chrono::milliseconds d);

/// A decimal port 1..65535; nullopt otherwise.
std::optional<std::uint16_t> parse_port(std::string_view s);

/// A port range "first-last" (first <= last; a single port "N" is N-N); nullopt otherwise.
std::optional<std::pair<std::uint16_t, std::uint16_t>> parse_port_range(std::string_view s);

/// A decimal integer in [min, max]; nullopt otherwise (no sign, no white space inside).
std::optional<std::uint64_t> parse_uint(std::string_view s, std::uint64_t min, std::uint64_t max);

/// What an ElastiCache endpoint's name says about the cache behind it.
struct elasticache_endpoint {
    std::string cache_name;  ///< the replication group id or serverless cache name
    bool serverless = false;
    /// From the name's region label ("use1" → us-east-1, or a region as is); empty when unknown.
    std::string region;
};

/// Reads `master.<rg>.<id>.<region code>.cache.amazonaws.com` (also replica., clustercfg. and
/// node names `<rg>-0001-001.<rg>.…`) and `<name>-<id>.serverless.<region
/// code>.cache.amazonaws.com` (and the .amazonaws.com.cn forms); nullopt for any other name.
std::optional<elasticache_endpoint> parse_elasticache_endpoint(std::string_view host);

}  // namespace redis_sidecar::config
