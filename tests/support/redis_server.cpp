#include "support/redis_server.hpp"

#include "support/eventually.hpp"
#include "support/net.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <stdexcept>

namespace redis_sidecar::testing {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

/// How long stop() lets the server shut down on SIGTERM before SIGKILL.
constexpr auto stop_grace = 5s;
/// Attempts at start() when a freshly chosen port turns out to be taken.
constexpr int port_attempts = 5;
/// Bound on one readiness PING.
constexpr auto ping_timeout = 2s;
/// How much of the log a failing test prints.
constexpr std::size_t log_dump_limit = 8192;

}  // namespace

std::string redis_config_quote(const std::string& value) {
    std::string q = "\"";
    for (char c : value) {
        if (c == '"' || c == '\\') q += '\\';
        if (c == '\n') {
            q += "\\n";
            continue;
        }
        q += c;
    }
    return q + "\"";
}

redis_server::redis_server(redis_server_options options, test_pki* pki)
    : options_(std::move(options)),
      pki_(pki),
      dir_("rs-redis"),
      config_path_(dir_.file("redis.conf")),
      log_path_(dir_.file("redis.log")),
      port_(options_.port.value_or(0)) {}

redis_server::~redis_server() {
    stop();
    if (::testing::Test::HasFailure() && process_.pid() > 0) {
        std::cerr << "[support] redis-server on port " << port_ << " log (" << log_path_ << "):\n"
                  << tail_of(log(), log_dump_limit) << "\n";
    }
}

test_pki& redis_server::pki() const {
    if (pki_ == nullptr) pki_ = &test_pki::shared();
    return *pki_;
}

void redis_server::write_config() {
    std::string c;
    auto line = [&c](const std::string& s) { c += s + "\n"; };
    line("bind " + options_.bind_address);
    if (options_.tls) {
        const cert_files server = pki().server_cert(options_.cert_name);
        line("port 0");  // TLS only: no plain-text port at all
        line("tls-port " + std::to_string(port_));
        line("tls-cert-file " + redis_config_quote(server.cert));
        line("tls-key-file " + redis_config_quote(server.key));
        line("tls-ca-cert-file " + redis_config_quote(pki().ca_cert()));
        // Redis defaults to requiring client certificates; say what we mean either way.
        line(std::string("tls-auth-clients ") + (options_.tls_auth_clients ? "yes" : "no"));
    } else {
        line("port " + std::to_string(port_));
    }
    line("daemonize no");
    line("supervised no");
    line("save \"\"");
    line("appendonly no");
    line("dir " + redis_config_quote(dir_.path()));
    line("logfile " + redis_config_quote(log_path_));
    line("loglevel notice");
    line("always-show-logo no");
    line("enable-debug-command yes");
    // SIGTERM is acted on in serverCron: at the default hz 10 every stop() would take ~100 ms.
    line("hz 100");
    if (options_.requirepass) line("requirepass " + redis_config_quote(*options_.requirepass));
    for (const auto& user : options_.acl_users) line(user);
    for (const auto& extra : options_.extra_config_lines) line(extra);
    dir_.write_file("redis.conf", c, 0600);
}

void redis_server::start() {
    if (running()) throw std::runtime_error("redis_server: start() while running");
    const auto deadline = clock::now() + options_.start_timeout;
    const bool fixed_port = port_ != 0;
    for (int attempt = 1;; ++attempt) {
        if (!fixed_port && attempt > 1) port_ = 0;
        if (port_ == 0) port_ = free_tcp_port();
        write_config();
        const std::size_t log_offset = log().size();
        process_.start({options_.server_binary, config_path_}, base_env());
        if (wait_ready(deadline, log_offset)) return;

        const bool exited = !process_.running();
        process_.stop();
        const std::string text = log();
        const bool port_taken = exited && text.find("in use") != std::string::npos;
        if (port_taken && !fixed_port && attempt < port_attempts && clock::now() < deadline) {
            continue;
        }
        throw std::runtime_error(
            "redis_server: " +
            std::string(exited ? "exited during start-up" : "did not answer PING in time") +
            " (port " + std::to_string(port_) + ", config " + config_path_ + "); log:\n" +
            tail_of(text, log_dump_limit) + "\nstderr:\n" + process_.err());
    }
}

bool redis_server::wait_ready(clock::time_point deadline, std::size_t log_offset) {
    auto left = [&] {
        return std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
    };
    // The log line comes once every listener is bound; a taken port makes the server exit
    // instead. (Polling the port itself could be fooled by whoever took it.)
    bool up = eventually(
        [&] {
            return !process_.running() ||
                   log().find("Ready to accept connections", log_offset) != std::string::npos;
        },
        left(), 10ms);
    if (!up || !process_.running()) return false;
    // Then PING through redis-cli, which proves that TLS and auth work too.
    return eventually(
               [&] {
                   if (!process_.running()) return true;
                   const process_result r = cli(
                       {"PING"}, std::clamp<std::chrono::milliseconds>(left(), 1ms, ping_timeout));
                   const std::string all = r.output();
                   return all.find("PONG") != std::string::npos ||
                          all.find("NOAUTH") != std::string::npos ||
                          all.find("WRONGPASS") != std::string::npos ||
                          all.find("NOPERM") != std::string::npos;
               },
               left(), 20ms) &&
           process_.running();
}

void redis_server::stop() {
    process_.stop(stop_grace);
}

void redis_server::kill(int sig) {
    process_.send_signal(sig);
    if (sig == SIGKILL) process_.wait_exit(stop_grace);
}

void redis_server::restart() {
    stop();
    start();
}

std::vector<std::string> redis_server::tls_and_address_args() const {
    std::vector<std::string> args{"-h", host(), "-p", std::to_string(port_)};
    if (options_.tls) {
        args.insert(args.end(), {"--tls", "--cacert", pki().ca_cert()});
        if (options_.tls_auth_clients) {
            const cert_files& client = pki().client_cert();
            args.insert(args.end(), {"--cert", client.cert, "--key", client.key});
        }
    }
    return args;
}

std::vector<std::string> redis_server::connection_args() const {
    std::vector<std::string> args = tls_and_address_args();
    if (options_.requirepass) {
        args.insert(args.end(), {"--no-auth-warning", "-a", *options_.requirepass});
    }
    return args;
}

process_result redis_server::cli(const std::vector<std::string>& args,
                                 std::chrono::milliseconds timeout) const {
    std::vector<std::string> argv{options_.cli_binary, "-e"};
    const std::vector<std::string> conn = connection_args();
    argv.insert(argv.end(), conn.begin(), conn.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, base_env(), timeout);
}

process_result redis_server::cli_as(const std::string& user, const std::string& password,
                                    const std::vector<std::string>& args,
                                    std::chrono::milliseconds timeout) const {
    std::vector<std::string> argv{options_.cli_binary, "-e"};
    const std::vector<std::string> conn = tls_and_address_args();
    argv.insert(argv.end(), conn.begin(), conn.end());
    argv.insert(argv.end(), {"--no-auth-warning", "--user", user, "--pass", password});
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, base_env(), timeout);
}

std::string redis_server::log() const {
    return read_file(log_path_);
}

}  // namespace redis_sidecar::testing
