#pragma once

// The one list of settings. Each row names a setting everywhere it appears: the dotted key of
// `config`'s JSON, of the YAML file and of settings::sources; its flag; its environment
// variables; its file in the secrets directory; how its text is read; where it is stored; its
// help. Resolution, flag parsing, --help, YAML validation, the JSON, the secret watcher's
// directories and the README's table (checked by a test) all read this table.

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/config/resolver.hpp"
#include "redis_sidecar/config/settings.hpp"

namespace redis_sidecar::config {

namespace detail {
struct raw;
}

/// One setting's value as read from one source, before it is stored in `settings`.
using value = std::variant<bool, unsigned, std::string, std::chrono::milliseconds,
                           std::optional<std::string>, secret>;

/// The member of `settings` a row stores into. A `value` fits the member of its own type or an
/// optional of it.
using member =
    std::variant<bool*, unsigned*, std::uint16_t*, std::string*, std::chrono::milliseconds*,
                 std::optional<std::string>*, std::optional<secret>*>;

/// One setting. Sources are read flag, variables (in order), the value a URL carried, the secrets
/// directory, YAML; the first one given wins. Every member has a default so rows name only what
/// they have.
struct setting {
    /// Dotted key of the JSON, the YAML file and settings::sources. The rows that only locate
    /// other sources (`config_file`, `secrets_dir`) have an undotted key and no `at`.
    std::string_view key = {};
    std::string_view flag = {};              ///< "--db"; empty for none (secrets have none)
    std::vector<std::string_view> env = {};  ///< highest first; each may be given as NAME_FILE
    std::string_view secret_file = {};       ///< its file in the secrets directory; empty: none
    bool yaml = true;                        ///< may be set in the YAML file, under `key`
    /// Reads one trimmed, non-empty text; throws config_error naming where it came from.
    /// Null for the rows resolved by hand: the upstream address (upstream.host, upstream.port).
    value (*parse)(const detail::raw&) = nullptr;
    /// When set, the only accepted texts (any case); the value is the lower-cased text.
    std::vector<std::string_view> choices = {};
    /// What a redis:// URL given for the address says about this setting, if anything.
    std::optional<value> (*from_url)(const parsed_address&) = nullptr;
    member (*at)(settings&) = nullptr;  ///< where the value lives
    /// When nothing sets this row, it takes the value (and the source) of this key.
    std::string_view default_from = {};
    bool inverted = false;       ///< the flag and the variables say the opposite ("skip verify")
    bool secret = false;         ///< a password: never printed, not even in warnings
    std::string_view help = {};  ///< one line, for --help and the README
};

/// Every setting, in the order --help and the README list them.
std::span<const setting> table();

/// The row of a key; throws std::out_of_range for a key not in the table.
const setting& setting_for(std::string_view key);

/// A row's value in `s` as `config` prints it: a secret as "<redacted>", a duration as "5s", an
/// empty file name or an absent value as null.
nlohmann::json json_of(const setting& row, const settings& s);

/// Directories holding the files the configuration is read from (each NAME_FILE of a row, the
/// secrets directory, the YAML file), for a watcher; no file is read.
std::vector<std::string> watched_directories(const inputs& in);

}  // namespace redis_sidecar::config
