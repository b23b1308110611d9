// redis-sidecar: subcommand dispatch. Exceptions end start-up here, as one clear line.

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "redis_sidecar/config/resolver.hpp"
#include "redis_sidecar/log/logger.hpp"
#include "check.hpp"
#include "sidecar.hpp"

#ifndef REDIS_SIDECAR_VERSION
#define REDIS_SIDECAR_VERSION "0.0.0"
#endif

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
  version   print the version

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
    auto r = config::resolve({config::environment_map(), args});
    log::configure(r.values.log.level, r.values.log.format);
    for (const auto& w : r.warnings) log::warn(w);
    return r;
}

int config_command(const std::vector<std::string>& args) {
    const auto r = resolve_or_explain(args);
    std::cout << config::to_json(r.values).dump(2) << "\n";
    return exit_ok;
}

// `check [--output text|json] [FLAGS]`
int check_command(std::vector<std::string> args) {
    bool json_output = false;
    for (auto it = args.begin(); it != args.end();) {
        std::string value;
        if (*it == "--output" && it + 1 != args.end()) {
            value = *(it + 1);
            it = args.erase(it, it + 2);
        } else if (it->rfind("--output=", 0) == 0) {
            value = it->substr(9);
            it = args.erase(it);
        } else {
            ++it;
            continue;
        }
        if (value != "json" && value != "text") {
            std::cerr << "redis-sidecar check: --output takes text or json\n";
            return exit_usage;
        }
        json_output = value == "json";
    }
    const auto r = resolve_or_explain(args);
    return redis_sidecar::app::run_check(r.values, json_output);
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
        std::cout << "usage: redis-sidecar " << command << " [FLAGS]\n\nflags:\n"
                  << config::flags_help();
        return exit_ok;
    }
    try {
        if (command == "version") {
            std::cout << "redis-sidecar " << REDIS_SIDECAR_VERSION << "\n";
            return exit_ok;
        }
        if (command == "config") return config_command(args);
        if (command == "check") return check_command(args);
        if (command == "run") {
            config::inputs in{config::environment_map(), args};
            auto r = config::resolve(in);
            log::configure(r.values.log.level, r.values.log.format);
            for (const auto& w : r.warnings) log::warn(w);
            redis_sidecar::app::sidecar s(std::move(r), std::move(in));
            return s.run();
        }
        std::cerr << "redis-sidecar: unknown subcommand '" << command << "' (see --help)\n";
        return exit_usage;
    } catch (const config::config_error& e) {
        std::cerr << "redis-sidecar: invalid configuration: " << e.what() << "\n";
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "redis-sidecar: " << e.what() << "\n";
        return exit_failure;
    }
}
