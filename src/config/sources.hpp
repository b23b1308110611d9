#pragma once

// Private to the config module: reads raw values from flags, the environment (X or X_FILE), the
// secrets directory and the YAML file, each tagged with where it came from.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis_sidecar/config/resolver.hpp"
#include "redis_sidecar/config/table.hpp"

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

/// Reads a row's text: its parser, or one of its choices.
value parse(const setting& row, const raw& v);
/// A decimal in [min, max]; the error names the origin, the value and `what` it should be.
unsigned as_uint(const raw& v, std::uint64_t min, std::uint64_t max, const char* what);
/// A boolean row, whose flag may be given bare ("--tls-enabled").
bool takes_bare_flag(const setting& row);
/// A row whose value is a file name: its secrets-directory file is used by name, not read.
bool names_a_file(const setting& row);

/// "a, b, c"
std::string join(const std::vector<std::string_view>& words, std::string_view separator);

/// The flags after the subcommand by name ("--db" → "3"), checked against the table's flags: an
/// unknown flag or one without a value is an error. A boolean flag may be given bare.
std::map<std::string, std::string, std::less<>> parse_flags(const std::vector<std::string>& args);

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
    std::optional<raw> env(std::string_view name) const;
    /// A file's contents in the secrets directory; empty files are skipped with a warning.
    std::optional<raw> secret_file(std::string_view file, std::vector<std::string>& warnings) const;
    /// The path of a file in the secrets directory, when it exists.
    std::optional<raw> secret_path(std::string_view file) const;
    /// A scalar of the YAML file by dotted key.
    std::optional<raw> yaml(std::string_view key) const;
    /// The row's flag, else its first variable given.
    std::optional<raw> flag_or_env(const setting& row) const;

    const std::string& secrets_dir() const { return secrets_dir_; }  ///< empty: none
    const std::string& yaml_path() const { return yaml_path_; }      ///< empty: none

  private:
    void load_yaml(const std::string& path);

    const inputs& in_;
    std::map<std::string, std::string, std::less<>> flags_;
    std::map<std::string, std::string, std::less<>> yaml_;
    std::string yaml_path_;
    std::string secrets_dir_;
};

}  // namespace redis_sidecar::config::detail
