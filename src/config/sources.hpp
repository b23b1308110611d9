#pragma once

// Private to the config module: reads raw values from flags, the environment (X or X_FILE), the
// secrets directory and the YAML file, each tagged with where it came from.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis_sidecar/config/resolver.hpp"

namespace redis_sidecar::config::detail {

/// Where a raw value came from: `source` goes into settings::sources ("env:REDIS_DB"),
/// `name` into messages ("REDIS_DB", "REDIS_DB_FILE (/run/x)", "--db", "cfg.yaml: upstream.db").
struct origin {
    std::string source;
    std::string name;
};

/// A trimmed, non-empty text value and its origin.
struct raw {
    std::string text;
    origin from;
};

/// One command-line flag the resolver understands.
struct flag_spec {
    const char* name;  ///< with the leading "--"
    bool boolean;      ///< may be given bare, meaning true
    const char* help;
};

/// Every flag, for parsing and --help.
const std::vector<flag_spec>& flag_specs();

/// Largest file read as a value (a password, a user name): secrets are small, and a bound keeps
/// a wrong mount from being read whole into memory.
inline constexpr std::size_t max_value_file_bytes = 64 * 1024;

/// Largest YAML configuration file.
inline constexpr std::size_t max_yaml_file_bytes = 1024 * 1024;

/// Reads a file of at most `limit` bytes; throws config_error naming `what`.
std::string read_small_file(const std::string& path, std::size_t limit, const std::string& what);

class source_reader {
public:
    explicit source_reader(const inputs& in);

    std::optional<raw> flag(std::string_view name) const;
    /// NAME, or NAME_FILE read from disk (both set is an error); empty values count as unset.
    std::optional<raw> env(const std::string& name) const;
    /// A file's contents in the secrets directory; empty files are skipped with a warning.
    std::optional<raw> secret_file(const std::string& file, std::vector<std::string>& warnings) const;
    /// The path of a file in the secrets directory, when it exists.
    std::optional<raw> secret_path(const std::string& file) const;
    /// A scalar of the YAML file by dotted key.
    std::optional<raw> yaml(const std::string& key) const;

private:
    void parse_flags(const std::vector<std::string>& args);
    void load_yaml(const std::string& path);

    const inputs& in_;
    std::map<std::string, std::string, std::less<>> flags_;
    std::map<std::string, std::string> yaml_;
    std::string yaml_path_;
    std::string secrets_dir_;
};

}  // namespace redis_sidecar::config::detail
