#include "lifecycle_cli.hpp"

#include <algorithm>
#include <iostream>
#include <thread>

#include "admin_client.hpp"
#include "redis_sidecar/config/resolver.hpp"
#include "redis_sidecar/config/values.hpp"

namespace redis_sidecar::app {

namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;

/// `wait`'s default bound, as Cloud SQL Auth Proxy's `wait` has.
constexpr std::chrono::milliseconds default_wait_timeout = 30s;
/// Pause between two /startupz requests while waiting.
constexpr std::chrono::milliseconds wait_poll_interval = 100ms;
/// Bound of one /startupz request (a sidecar that accepts and never answers is retried).
constexpr std::chrono::milliseconds wait_request_timeout = 1s;
/// `shutdown`'s default bound on its one request.
constexpr std::chrono::milliseconds default_shutdown_timeout = 5s;

std::chrono::milliseconds take_timeout(std::vector<std::string>& args,
                                       std::chrono::milliseconds fallback) {
    const auto text = take_flag(args, "--timeout");
    if (!text) return fallback;
    const auto d = config::parse_duration(*text);
    if (!d) {
        throw usage_error("--timeout: '" + *text +
                          "' is not a duration (250ms, 5s, 2m or a number of seconds)");
    }
    return *d;
}

std::string admin_addr(const std::vector<std::string>& args) {
    return reachable_admin_addr(config::resolve_http_addr({config::environment_map(), args}));
}

// The first line of a body, for a message.
std::string first_line(std::string_view body) {
    body = config::trim(body.substr(0, body.find('\n')));
    return std::string(body.substr(0, 200));
}

std::string describe(const admin_answer& a, std::string_view target) {
    if (a.status == 0) return a.error;
    std::string out = std::string(target) + " answered " + std::to_string(a.status);
    if (const auto line = first_line(a.body); !line.empty()) out += " (" + line + ")";
    return out;
}

}  // namespace

const char* const wait_help = R"(usage: redis-sidecar wait [--timeout 30s] [--http-addr HOST:PORT]

Waits until the sidecar running beside it has started (its /startupz answers 200: settings
valid, first upstream connection authenticated), for an application container or an init step
that must not start before it. Exits 0 then, or 1 with the last answer seen at the timeout.

flags:
  --timeout DURATION            give up after this long (30s; 250ms, 5s, 2m)
  --http-addr HOST:PORT         the sidecar's admin address; like REDIS_SIDECAR_HTTP_ADDR
                                (a wildcard address is reached on loopback)
  --config FILE                 read http.addr from this YAML file; like REDIS_SIDECAR_CONFIG
)";

const char* const shutdown_help =
    R"(usage: redis-sidecar shutdown [--timeout 5s] [--http-addr HOST:PORT]

Asks the sidecar running beside it to drain and exit (POST /quitquitquit, which it answers only
on loopback), for a preStop hook or a Job's last step. Exits 0 once the sidecar accepted; it then
drains (REDIS_SIDECAR_MIN_DRAIN, REDIS_SIDECAR_MAX_DRAIN) and exits on its own.

flags:
  --timeout DURATION            bound on the request (5s)
  --http-addr HOST:PORT         the sidecar's admin address; like REDIS_SIDECAR_HTTP_ADDR
  --config FILE                 read http.addr from this YAML file; like REDIS_SIDECAR_CONFIG
)";

std::optional<std::string> take_flag(std::vector<std::string>& args, const std::string& name) {
    std::optional<std::string> value;
    for (auto it = args.begin(); it != args.end();) {
        if (*it == name) {
            if (it + 1 == args.end()) throw usage_error("flag " + name + " needs a value");
            value = *(it + 1);
            it = args.erase(it, it + 2);
        } else if (it->rfind(name + "=", 0) == 0) {
            value = it->substr(name.size() + 1);
            it = args.erase(it);
        } else {
            ++it;
        }
    }
    return value;
}

int wait_command(std::vector<std::string> args) {
    const auto timeout = take_timeout(args, default_wait_timeout);
    const auto addr = admin_addr(args);
    const auto start = clock::now();
    const auto deadline = start + timeout;
    std::string last;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        const auto budget = std::clamp(left, 1ms, wait_request_timeout);
        const auto answer = admin_request(addr, false, "/startupz", budget);
        if (answer.status == 200) {
            const std::chrono::duration<double> took = clock::now() - start;
            std::cout << "redis-sidecar wait: the sidecar at " << addr << " has started ("
                      << static_cast<long>(took.count() * 1000) << " ms)\n";
            return exit_ok;
        }
        // A request the deadline cut short proves nothing: an earlier answer stays the last one.
        const bool cut_short =
            answer.status == 0 && answer.error == "timed out" && budget < wait_request_timeout;
        if (!cut_short || last.empty()) last = describe(answer, "/startupz");
        const auto now = clock::now();
        if (now >= deadline) break;
        std::this_thread::sleep_for(std::min<clock::duration>(wait_poll_interval, deadline - now));
    }
    std::cerr << "redis-sidecar wait: the sidecar at " << addr << " did not start within "
              << config::format_duration(timeout) << "; last: " << last
              << (last.find("refused") != std::string::npos
                      ? " (is it running, and is its admin address REDIS_SIDECAR_HTTP_ADDR / "
                        "--http-addr?)"
                      : "")
              << "\n";
    return exit_failure;
}

int shutdown_command(std::vector<std::string> args) {
    const auto timeout = take_timeout(args, default_shutdown_timeout);
    const auto addr = admin_addr(args);
    const auto answer = admin_request(addr, true, "/quitquitquit", timeout);
    if (answer.status == 200) {
        std::cout << "redis-sidecar shutdown: the sidecar at " << addr << " is draining\n";
        return exit_ok;
    }
    std::cerr << "redis-sidecar shutdown: the sidecar at " << addr
              << " did not accept: " << describe(answer, "POST /quitquitquit")
              << (answer.status == 403 ? "; it answers only loopback clients: run shutdown "
                                         "in the sidecar's pod"
                                       : "")
              << "\n";
    return exit_failure;
}

}  // namespace redis_sidecar::app
