#pragma once

// Internal to the pool: the RESET that returns a connection a client left with state.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "redis_sidecar/resp/scanner.hpp"
#include "redis_sidecar/upstream/connection.hpp"
#include "redis_sidecar/upstream/handshake.hpp"

namespace redis_sidecar::upstream {

/// How a reset ended.
struct reset_result {
    /// None: the connection is clean and the sidecar's again. Else the failure's class
    /// (timeout, io_error, protocol_error, wrongpass, ...).
    std::error_code ec;
    /// What went wrong, for logs ("timed out", "HELLO answered with an integer, not a map").
    std::string why;
    /// The failure is the server's nature, not a fault: it has no RESET (Redis < 6.2).
    bool expected = false;
};
using reset_handler = std::function<void(std::shared_ptr<connection>, reset_result)>;

/// Sends RESET and `reauth` on `c`, skips the replies its last client was still owed (`owed`
/// of them, pushes aside; nullopt when the client left request/reply: every frame up to the
/// first "+RESET"), checks RESET's reply and reauth's, then calls `done`. `scanner` continues
/// the reply stream where the client's session left it; `leftover` holds bytes already read
/// but not delivered. Any error, unexpected reply, or `timeout` ends it with a classified error
/// (also the answer of servers before 6.2, which have no RESET: `expected`). When the owed
/// replies are counted, anything but a status, error or push where RESET's reply belongs fails
/// at its first byte; the re-authentication's replies are read by a resp::reply_reader (bounded)
/// and checked by check_handshake, like a new connection's.
void reset_connection(std::shared_ptr<connection> c, const resp::scanner& scanner,
                      std::string leftover, std::optional<std::uint64_t> owed, handshake reauth,
                      std::chrono::milliseconds timeout, reset_handler done);

}  // namespace redis_sidecar::upstream
