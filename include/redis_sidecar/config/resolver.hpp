#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "redis_sidecar/config/settings.hpp"

namespace redis_sidecar::config {

/// A configuration that cannot be used. what() is one line naming the variable, flag or file and
/// why; it never contains a secret.
class config_error : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Everything the resolver reads besides files.
struct inputs {
    std::map<std::string, std::string> env;  ///< the process environment (or a test's)
    std::vector<std::string> args;           ///< command-line flags after the subcommand
};

/// A resolved configuration and what the user should hear about it.
struct resolution {
    settings values;
    std::vector<std::string> warnings;  ///< one line each, secrets never included
};

/// Resolves flags > environment (X or X_FILE) > secrets directory > YAML file > defaults into
/// validated settings. Throws config_error.
resolution resolve(const inputs& in);

/// The admin HTTP address (`http.addr`) alone, picked as resolve() picks it (--http-addr,
/// REDIS_SIDECAR_HTTP_ADDR or its _FILE, the YAML file, the default) without needing an upstream:
/// for `wait` and `shutdown`, which run beside the sidecar, often in another container. Throws
/// config_error.
std::string resolve_http_addr(const inputs& in);

/// The process environment as a map.
std::map<std::string, std::string> environment_map();

/// The `config` JSON: the settings (password "<redacted>" or null) plus "sources".
nlohmann::json to_json(const settings& s);

/// Every flag of the settings table with its help, variable and default, wrapped at 100
/// columns, for --help.
std::string flags_help();

}  // namespace redis_sidecar::config
