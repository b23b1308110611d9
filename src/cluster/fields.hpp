#pragma once

// Reading fields of topology replies (internal to the cluster module).

#include <charconv>
#include <string>
#include <string_view>

#include "redis_sidecar/resp/value.hpp"

namespace redis_sidecar::cluster::detail {

/// A RESP3 map, or a RESP2 array of key/value pairs (how RESP2 sends maps).
inline bool is_map_like(const resp::value& v) {
    if (v.type == '%') return true;
    return v.type == '*' && !v.null && v.items.size() % 2 == 0;
}

/// The value under `key` in a map-like value, or nullptr.
inline const resp::value* field(const resp::value& map, std::string_view key) {
    for (std::size_t i = 0; i + 1 < map.items.size(); i += 2) {
        if (map.items[i].is_string() && map.items[i].text == key) return &map.items[i + 1];
    }
    return nullptr;
}

inline resp::value* field(resp::value& map, std::string_view key) {
    for (std::size_t i = 0; i + 1 < map.items.size(); i += 2) {
        if (map.items[i].is_string() && map.items[i].text == key) return &map.items[i + 1];
    }
    return nullptr;
}

/// A string's text ("" for anything else).
inline std::string text(const resp::value* v) {
    return v != nullptr && v->is_string() && !v->null ? v->text : std::string();
}

/// An integer, also one sent as a string.
inline bool integer(const resp::value& v, long long& out) {
    if (v.type != ':' && !v.is_string()) return false;
    const auto& s = v.text;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

}  // namespace redis_sidecar::cluster::detail
