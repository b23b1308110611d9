#pragma once

#include "redis_sidecar/config/resolver.hpp"

namespace redis_sidecar::app {

/// `redis-sidecar check`: DNS → TCP → TLS → AUTH → PING → ROLE, each step reported with a
/// hint on failure, human-readable or JSON. Returns the process exit code (0: all passed).
int run_check(const config::settings& s, bool json_output);

}  // namespace redis_sidecar::app
