// redis-sidecar: subcommand dispatch. Exceptions end start-up here, as one clear line.

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "check.hpp"
#include "iam_auth.hpp"
#include "lifecycle_cli.hpp"
#include "redis_sidecar/config/resolver.hpp"
#include "redis_sidecar/log/logger.hpp"
#include "sidecar.hpp"
#include "version.hpp"

namespace {

namespace config = redis_sidecar::config;
namespace log = redis_sidecar::log;

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

const char* const usage = R"(usage: redis-sidecar [SUBCOMMAND] [FLAGS]

A Redis / Valkey / ElastiCache sidecar: plain RESP on localhost, pooled TLS upstream.

subcommands:
  run       serve local clients (the default)
  config    print the resolved settings as JSON (exit 2 with one message when invalid)
  check     diagnose the upstream step by step: DNS, TCP, TLS, AUTH, PING, ROLE
  wait      exit 0 once the running sidecar has started (/startupz 200); --timeout 30s
  shutdown  ask the running sidecar to drain and exit (POST /quitquitquit on loopback)
  version   print the version, git commit and the OpenSSL linked in (--output text|json)
  iam-token print a fresh ElastiCache IAM token for the settings (REDIS_USERNAME, the cache
            name, the region, the pod's AWS credentials), to try with redis-cli --user --pass

Settings come from flags, environment variables (each also as NAME_FILE), the secrets
directory (REDIS_SIDECAR_SECRETS_DIR), a YAML file (REDIS_SIDECAR_CONFIG) and defaults, in that
order of precedence. See README.md for every variable.

flags:
)";

bool wants_help(const std::vector<std::string>& args) {
    for (const auto& a : args) {
        if (a == "--help" || a == "-h") return true;
    }
    return false;
}

config::resolution resolve_or_explain(const std::vector<std::string>& args) {
    const auto env = config::environment_map();
    auto r = config::resolve({env, args});
    log::configure(r.values.log.level, r.values.log.format);
    for (const auto& w : r.warnings) log::warn(w);
    // With IAM, the AWS variables are settings too: a half-set pair is an error now, not later.
    if (r.values.iam.enabled) redis_sidecar::app::iam_source_from(r.values, env);
    return r;
}

// `iam-token [FLAGS]`: IAM is on for this command whatever the settings say.
int iam_token_command(std::vector<std::string> args) {
    args.emplace_back("--iam-auth");
    const auto r = resolve_or_explain(args);
    return redis_sidecar::app::iam_token_command(r.values, config::environment_map());
}

int config_command(const std::vector<std::string>& args) {
    const auto r = resolve_or_explain(args);
    std::cout << config::to_json(r.values).dump(2) << "\n";
    return exit_ok;
}

// `--output text|json`: true for json; throws config_error for anything else.
bool take_json_output(std::vector<std::string>& args) {
    const auto value = redis_sidecar::app::take_flag(args, "--output");
    if (value && *value != "json" && *value != "text") {
        throw redis_sidecar::app::usage_error("--output takes text or json");
    }
    return value && *value == "json";
}

// `check [--output text|json] [FLAGS]`
int check_command(std::vector<std::string> args) {
    const bool json_output = take_json_output(args);
    const auto r = resolve_or_explain(args);
    return redis_sidecar::app::run_check(r.values, json_output);
}

// `version [--output text|json]`
int version_command(std::vector<std::string> args) {
    const bool json_output = take_json_output(args);
    if (!args.empty()) {
        throw redis_sidecar::app::usage_error("unknown argument " + args.front() +
                                              " (version takes only --output)");
    }
    const auto b = redis_sidecar::app::this_build();
    if (json_output) {
        std::cout << redis_sidecar::app::to_json(b).dump(2) << "\n";
    } else {
        std::cout << redis_sidecar::app::to_text(b);
    }
    return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string command = "run";
    if (!args.empty() && args.front().rfind("-", 0) != 0) {
        command = args.front();
        args.erase(args.begin());
    }
    if (command == "help" || (command == "run" && wants_help(args) && argc == 2)) {
        std::cout << usage << config::flags_help();
        return exit_ok;
    }
    if (wants_help(args)) {
        if (command == "wait") {
            std::cout << redis_sidecar::app::wait_help;
        } else if (command == "shutdown") {
            std::cout << redis_sidecar::app::shutdown_help;
        } else if (command == "version") {
            std::cout << "usage: redis-sidecar version [--output text|json]\n\n"
                         "The version, the git commit and the versions of OpenSSL (linked into "
                         "the binary) and hiredis.\n";
        } else {
            std::cout << "usage: redis-sidecar " << command << " [FLAGS]\n\nflags:\n"
                      << config::flags_help();
        }
        return exit_ok;
    }
    try {
        if (command == "version") return version_command(args);
        if (command == "config") return config_command(args);
        if (command == "check") return check_command(args);
        if (command == "wait") return redis_sidecar::app::wait_command(args);
        if (command == "shutdown") return redis_sidecar::app::shutdown_command(args);
        if (command == "iam-token") return iam_token_command(args);
        if (command == "run") {
            config::inputs in{config::environment_map(), args};
            auto r = resolve_or_explain(args);
            redis_sidecar::app::sidecar s(std::move(r), std::move(in));
            return s.run();
        }
        std::cerr << "redis-sidecar: unknown subcommand '" << command << "' (see --help)\n";
        return exit_usage;
    } catch (const redis_sidecar::app::usage_error& e) {
        std::cerr << "redis-sidecar " << command << ": " << e.what() << "\n";
        return exit_usage;
    } catch (const config::config_error& e) {
        std::cerr << "redis-sidecar: invalid configuration: " << e.what() << "\n";
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "redis-sidecar: " << e.what() << "\n";
        return exit_failure;
    }
}
