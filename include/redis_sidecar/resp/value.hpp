#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redis_sidecar::resp {

/// One RESP2/RESP3 reply held whole, as a tree: for the few replies the sidecar must change
/// (cluster topology, MOVED/ASK), not for the data path, which only frames bytes (scanner).
/// `type` is the RESP type byte. Line types (`+ - : , ( # _`) keep their line in `text`;
/// blob types (`$ ! =`) their payload in `text`; a null bulk/array is `$`/`*` with `null` set.
/// Aggregates (`* ~ > % |`) keep their elements in `items`: a map or attribute holds keys and
/// values alternately. An attribute (`|`) is followed, inside `items`' last element, by the
/// value it annotates.
struct value {
    char type = '_';
    std::string text;
    std::vector<value> items;
    bool null = false;

    bool is_string() const { return type == '$' || type == '+' || type == '='; }
    bool is_aggregate() const {
        return type == '*' || type == '~' || type == '>' || type == '%' || type == '|';
    }
    bool is_map() const { return type == '%' || type == '|'; }
};

/// Limits of parse_value: what a reply the sidecar holds whole may be.
struct value_limits {
    std::size_t max_depth = 32;          ///< nesting of aggregates
    std::size_t max_elements = 1 << 20;  ///< values in the whole tree
};

/// Parses exactly one complete value from `bytes`, which must hold nothing else. nullopt when it
/// is not one well-formed RESP value (streamed types `$? *?` are refused too) or exceeds
/// `limits`; `error` then says why.
std::optional<value> parse_value(std::string_view bytes, std::string& error,
                                 const value_limits& limits = {});

/// The RESP bytes of `v` (appended to `out`).
void serialize(const value& v, std::string& out);
std::string serialize(const value& v);

}  // namespace redis_sidecar::resp
