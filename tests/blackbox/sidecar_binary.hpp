#pragma once

// Runs the built redis-sidecar binary the way a pod would: a clean environment plus the test's.

#include <string>
#include <vector>

#include "support/process.hpp"

namespace redis_sidecar::testing {

inline testing::process_result run_sidecar(
    const std::vector<std::string>& args, env_map env,
    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::vector<std::string> argv{REDIS_SIDECAR_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    auto full = base_env();
    for (auto& [k, v] : env) full[k] = v;
    return run_process(argv, full, timeout);
}

}  // namespace redis_sidecar::testing
