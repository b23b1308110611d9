#pragma once

// `wait` and `shutdown`: commands run beside a sidecar (an init step, a preStop hook, a Job)
// that talk to its admin server on loopback.

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace redis_sidecar::app {

/// `wait [--timeout 30s] [--http-addr A]`: 0 once /startupz answers 200; 1 with one line on
/// stderr saying what was last seen when the timeout passes.
int wait_command(std::vector<std::string> args);

/// `shutdown [--timeout 5s] [--http-addr A]`: POST /quitquitquit; 0 when the sidecar accepted
/// (it drains, then exits), 1 with one line on stderr otherwise.
int shutdown_command(std::vector<std::string> args);

/// A command line that cannot be used (exit 2); what() is one line.
class usage_error : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// `--help` of wait and shutdown.
extern const char* const wait_help;
extern const char* const shutdown_help;

/// Removes `--name VALUE` or `--name=VALUE` from args (the last one wins); throws usage_error
/// when the flag has no value.
std::optional<std::string> take_flag(std::vector<std::string>& args, const std::string& name);

}  // namespace redis_sidecar::app
