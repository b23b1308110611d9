#pragma once

#include "support/pki.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace redis_sidecar::testing {

/// How a redis_server is configured. Every field has a working default: a plain, password-less
/// server on a free loopback port. Set fields by name (`options.tls = true;`): GCC 12 with
/// -Wextra -Werror rejects designated initializers that leave fields out
/// (-Wmissing-field-initializers).
struct redis_server_options {
    /// Serve TLS only (`port 0`, `tls-port N`) with the PKI's server certificate `cert_name`.
    bool tls = false;
    /// With tls: require a client certificate signed by the PKI's CA (`tls-auth-clients yes`);
    /// cli() then presents the PKI's client certificate. Redis' own default is yes; ours is no.
    bool tls_auth_clients = false;
    /// `requirepass`: the default user's password. cli() authenticates with it.
    std::optional<std::string> requirepass;
    /// Raw ACL lines, e.g. "user app on >app-secret-password ~* +@all". Log in with cli_as().
    std::vector<std::string> acl_users;
    /// Which of the PKI's server certificates to serve (see test_pki; issue others first with
    /// test_pki::issue_server_cert()).
    std::string cert_name = "localhost";
    /// Appended verbatim at the end of the config file (a later line wins over ours).
    std::vector<std::string> extra_config_lines;
    /// The loopback address to listen on (any of 127.0.0.0/8): two servers on different
    /// addresses can share a port, so a host name can move between them (failover tests).
    std::string bind_address = "127.0.0.1";
    /// Listen on this port instead of a free one. After the first start() the port is kept
    /// anyway, so restart() comes back on the same port.
    std::optional<std::uint16_t> port;
    /// Bound on start(): process start plus the first answered PING.
    std::chrono::milliseconds start_timeout = std::chrono::seconds(10);
    /// The server and client programs (Debian's redis-server/redis-tools by default).
    std::string server_binary = "/usr/bin/redis-server";
    std::string cli_binary = "/usr/bin/redis-cli";
};

/// A value in redis.conf syntax: double-quoted, with backslash, quote and newline escaped.
std::string redis_config_quote(const std::string& value);

/// A real redis-server on 127.0.0.1, in its own temp dir (config, log, working dir), with no
/// persistence (`save ""`, `appendonly no`; data does not survive restart()) and
/// `enable-debug-command yes` (so tests can use DEBUG SLEEP) and `hz 100` (so SIGTERM is acted on
/// within 10 ms rather than 100 ms; override with extra_config_lines). Stopped and reaped by the
/// destructor; its log is printed if the test has failed. Not thread-safe.
///
///     redis_server_options options;
///     options.tls = true;
///     options.requirepass = "secret";
///     redis_server server(options);
///     server.start();
///     EXPECT_EQ(trim(server.cli({"SET", "k", "v"}).out), "OK");
class redis_server {
  public:
    /// `pki` must outlive the server; nullptr means test_pki::shared() (made only if tls).
    explicit redis_server(redis_server_options options = {}, test_pki* pki = nullptr);
    ~redis_server();

    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    /// Writes the config, starts the server and waits until it answers PING (or answers with an
    /// authentication error, which proves it is serving) within options().start_timeout. Without
    /// a fixed port, a port taken by someone else in the meantime is retried with another one.
    /// Throws std::runtime_error carrying the server's log on failure.
    void start();

    /// SIGTERM (and SIGCONT), up to 5 s to exit, then SIGKILL; reaps. No-op if not running.
    void stop();

    /// Sends `sig` to the server: SIGKILL (then waits for it and reaps it, so the port is free
    /// when this returns), SIGSTOP (it keeps its sockets and answers nothing), SIGCONT.
    void kill(int sig);

    /// stop() then start() on the same port.
    void restart();

    /// True if the server process is alive (stopped counts as alive).
    bool running() { return process_.running(); }

    /// The port it listens on (the TLS port with tls). 0 before the first start().
    std::uint16_t port() const { return port_; }
    /// options().bind_address, "127.0.0.1" by default.
    std::string host() const { return options_.bind_address; }
    /// "127.0.0.1:PORT", the form REDIS_ADDR takes.
    std::string address() const { return host() + ":" + std::to_string(port_); }
    /// The server's pid; -1 if never started.
    pid_t pid() const { return process_.pid(); }

    /// Runs `redis-cli -e <connection_args()> args...` (as the default user, with requirepass if
    /// set). `-e` makes an error reply exit 1, with the error on stderr; replies go to stdout
    /// one per line ("raw" format, since stdout is not a terminal).
    process_result cli(const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

    /// Like cli(), logged in as ACL user `user` with `password`.
    process_result cli_as(const std::string& user, const std::string& password,
                          const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

    /// Host, port, TLS and default-user flags, understood by both redis-cli and
    /// redis-benchmark: `-h 127.0.0.1 -p N [--tls --cacert CA [--cert C --key K]]
    /// [--no-auth-warning -a PASS]`.
    std::vector<std::string> connection_args() const;

    /// The whole server log so far (all starts).
    std::string log() const;
    /// The log file's path.
    const std::string& log_path() const { return log_path_; }
    /// The server's temp dir (config, log, working dir).
    const std::string& dir() const { return dir_.path(); }
    /// The PKI whose CA signed the server's certificate (pki().ca_cert() is what clients trust).
    test_pki& pki() const;
    const redis_server_options& options() const { return options_; }

  private:
    std::vector<std::string> tls_and_address_args() const;
    void write_config();
    bool wait_ready(std::chrono::steady_clock::time_point deadline, std::size_t log_offset);

    redis_server_options options_;
    mutable test_pki* pki_;
    temp_dir dir_;
    std::string config_path_;
    std::string log_path_;
    std::uint16_t port_ = 0;
    child_process process_{"redis-server"};
};

}  // namespace redis_sidecar::testing
