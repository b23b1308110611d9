#pragma once

// The bridge's black-box fixture: a real TLS redis-server with an ACL user, the real sidecar
// binary in front of it (TCP on a free loopback port and a unix socket), and small real clients
// (redis-cli through run_process, and a raw RESP socket client with deadlines).

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/eventually.hpp"
#include "support/metrics_text.hpp"
#include "support/net.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

namespace redis_sidecar::bridge_test {

using namespace redis_sidecar::testing;
using namespace std::chrono_literals;

/// The upstream's ACL user and its password: the sidecar logs in with them; they must never
/// show up in a reply or in the sidecar's output.
inline constexpr std::string_view upstream_user = "app";
inline constexpr std::string_view upstream_password = "app-password-0123456789";

// ---------------------------------------------------------------------------------------------
// A raw RESP client

/// One decoded reply (RESP2 and the RESP3 types the tests meet).
struct resp_value {
    char type = 0;                  ///< + - : $ * % ~ > _ # , ( = !
    std::string str;                ///< + - $ = ! , ( # payload
    long long integer = 0;          ///< :
    bool null = false;              ///< $-1, *-1, _
    std::vector<resp_value> elems;  ///< * ~ > ; for % the keys and values alternate

    bool is_error() const { return type == '-' || type == '!'; }
    /// A compact rendering for assertions: OK, ERR ..., 42, "bulk", [a, b], {k: v}, (nil).
    std::string text() const;
};

/// A blocking client socket (TCP or unix) whose every read and write has a deadline. Errors
/// (timeout, EOF mid-reply, a malformed reply) throw std::runtime_error, which GoogleTest reports
/// as a failure of the test.
class resp_client {
  public:
    static resp_client tcp(std::uint16_t port, std::chrono::milliseconds timeout = 5s);
    static resp_client unix_socket(const std::string& path, std::chrono::milliseconds timeout = 5s);

    /// Sends the bytes as they are (pipelines, garbage, partial frames).
    void send_raw(std::string_view bytes, std::chrono::milliseconds timeout = 10s);
    /// Sends one multibulk command.
    void send(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 10s);
    /// Reads one reply.
    resp_value read(std::chrono::milliseconds timeout = 5s);
    /// send() then read().
    resp_value call(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 5s);
    /// True if the peer closes the connection within `timeout` (bytes before the close are
    /// dropped into `*rest` when given).
    bool wait_closed(std::chrono::milliseconds timeout, std::string* rest = nullptr);
    /// Reads one reply and returns its bytes exactly as they came (any nesting depth: the reply
    /// is delimited without recursion, so thousands of levels are fine).
    std::string read_raw(std::chrono::milliseconds timeout = 5s);
    /// True if nothing arrives and the connection stays open for `quiet`.
    bool silent_for(std::chrono::milliseconds quiet);
    /// Closes the socket now (RST-free: a plain close).
    void close() { fd_.reset(); }

    int fd() const { return fd_.get(); }

  private:
    explicit resp_client(unique_fd fd) : fd_(std::move(fd)) {}
    /// Reads more bytes into buf_ before `deadline`; false on EOF.
    bool fill(std::chrono::steady_clock::time_point deadline);

    unique_fd fd_;
    std::string buf_;
    std::size_t pos_ = 0;
};

/// The multibulk encoding of `args`.
std::string encode_command(const std::vector<std::string>& args);

/// Parses one complete reply at `pos` of `bytes`; nullopt if more bytes are needed (pos is then
/// unchanged). Throws std::runtime_error on bytes that are not RESP.
std::optional<resp_value> parse_reply(std::string_view bytes, std::size_t& pos);

/// Where the complete reply starting at `pos` of `bytes` ends (one past its last byte); nullopt
/// if more bytes are needed. Iterative, so any depth of nesting. Throws std::runtime_error on
/// bytes that are not RESP.
std::optional<std::size_t> reply_end(std::string_view bytes, std::size_t pos);

// ---------------------------------------------------------------------------------------------
// Server + sidecar

/// How a test wants its sidecar.
struct bridge_options {
    /// Extra (or overriding) environment for the sidecar: REDIS_MAX_CONNECTIONS, ...
    env_map env;
    /// Extra redis.conf lines for the upstream.
    std::vector<std::string> redis_config;
    /// Also open a plain-TCP port on the upstream (loopback only) for direct_client(): the
    /// reference a test compares the bridge's behaviour against.
    bool direct_port = false;
};

/// A GoogleTest fixture owning a TLS redis-server (ACL user `app`) and the sidecar binary in
/// front of it. Tests call start() (with their options) first. TearDown stops the sidecar with
/// SIGTERM and checks it exits 0 within a bound, that the upstream password never appeared in
/// its output, and that no child process is left.
class bridge_fixture : public ::testing::Test {
  protected:
    void start(bridge_options options = {});
    void TearDown() override;

    /// Stops the sidecar (SIGTERM) and returns its exit status (nullopt: had to be killed).
    std::optional<int> stop_sidecar();

    std::uint16_t port() const { return port_; }
    const std::string& socket_path() const { return socket_path_; }
    redis_server& redis() { return *redis_; }
    child_process& sidecar() { return *sidecar_; }

    /// redis-cli through the bridge over TCP (plain, no TLS, no password; `-e` is not passed,
    /// so error replies land on stdout). Extra leading flags (e.g. "--pipe") go in `args` too.
    process_result cli(const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout = 10s,
                       const std::string& stdin_data = {}) const;
    /// The same through the unix socket.
    process_result cli_unix(const std::vector<std::string>& args,
                            std::chrono::milliseconds timeout = 10s) const;
    /// A raw client on the bridge's TCP port.
    resp_client client() const { return resp_client::tcp(port_); }
    /// A raw client straight to the upstream's plain port (needs options.direct_port), logged
    /// in as the sidecar's ACL user: what a client of the bridge should be indistinguishable from.
    resp_client direct_client() const;
    std::uint16_t direct_port() const { return direct_port_; }

    /// The sidecar's admin HTTP port (unless the test overrode REDIS_SIDECAR_HTTP_ADDR).
    std::uint16_t http_port() const { return http_port_; }
    /// The body of GET /metrics ("" when nothing answered).
    std::string metrics() const;

    /// INFO field `field` of the upstream (read with the server's own cli): "" when absent.
    std::string server_info_field(const std::string& section, const std::string& field);
    /// `cmdstat_<command>` calls on the upstream (0 when never called).
    long long server_command_calls(const std::string& command);

  private:
    std::unique_ptr<redis_server> redis_;
    std::unique_ptr<child_process> sidecar_;
    std::unique_ptr<temp_dir> dir_;
    std::uint16_t port_ = 0;
    std::uint16_t direct_port_ = 0;
    std::uint16_t http_port_ = 0;
    std::string socket_path_;
    std::optional<std::string> client_password_;
    bool stopped_ = false;
};

}  // namespace redis_sidecar::bridge_test
