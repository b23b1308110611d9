#pragma once

#include <string_view>
#include <system_error>

namespace redis_sidecar::upstream {

/// Why opening or using an upstream connection failed. Each value is also a metric label
/// (label()) and has a hint for `redis-sidecar check`.
enum class error {
    /// The host name did not resolve.
    dns_failure = 1,
    /// Nothing listens at the address (RST to the SYN).
    connection_refused,
    /// A connect, handshake or command took longer than its timeout.
    timeout,
    /// The server's certificate chain or name did not verify.
    tls_certificate_verify_failed,
    /// The TLS handshake failed for another reason (plain server, protocol mismatch).
    tls_handshake_failed,
    /// AUTH was refused: WRONGPASS (bad user or password).
    wrongpass,
    /// The server wants AUTH and none was configured: NOAUTH.
    noauth,
    /// The ACL user may not run a command the sidecar needs: NOPERM.
    noperm,
    /// The server is loading its dataset: LOADING.
    loading,
    /// The server is a replica and refused a write: READONLY.
    readonly,
    /// The server refused a new connection: "ERR max number of clients reached" (maxclients).
    max_clients,
    /// The server sent something that is not RESP, or an unexpected reply.
    protocol_error,
    /// The connection broke (reset, EOF, other socket error).
    io_error,
    /// No connection became available within the pool's wait bound.
    pool_timeout,
    /// The pool is stopping.
    shutting_down,
    /// The server refused a command with an error the sidecar did not expect.
    server_error,
};

inline constexpr int error_count = static_cast<int>(error::server_error) + 1;

const std::error_category& category();

inline std::error_code make_error_code(error e) {
    return {static_cast<int>(e), category()};
}

/// A short stable name for metrics and logs: "dns_failure", "timeout", ...
std::string_view label(error e);

/// Maps any error code (Asio, SSL, ours) to our classification.
error classify(const std::error_code& ec);

/// Maps a Redis error reply ("-WRONGPASS invalid ...") to our classification.
error classify_reply(std::string_view error_text);

}  // namespace redis_sidecar::upstream

template <>
struct std::is_error_code_enum<redis_sidecar::upstream::error> : std::true_type {};
