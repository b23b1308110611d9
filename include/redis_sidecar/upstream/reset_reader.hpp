#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/resp/scanner.hpp"
#include "redis_sidecar/upstream/error.hpp"
#include "redis_sidecar/upstream/handshake.hpp"

namespace redis_sidecar::upstream {

/// How a reset ended.
struct reset_result {
    /// None: the connection is clean and the sidecar's again. Else the failure's class
    /// (timeout, io_error, protocol_error, wrongpass, ...).
    std::error_code ec;
    /// What went wrong, for logs ("malformed reply", "re-authentication: HELLO answered with an
    /// integer, not a map"); never reply bytes.
    std::string why;
    /// The failure is the server's nature, not a fault: it has no RESET (Redis < 6.2).
    bool expected = false;
};

/// What comes back on a connection its client left with state, after the pool wrote RESET and
/// the re-authentication (`commands()`), without a socket: the replies the old client was still
/// owed (`owed` of them, pushes aside; nullopt when it left request/reply: every frame up to the
/// first "+RESET"), then RESET's "+RESET", then one reply per re-authentication step.
///
/// `scanner` continues the reply stream where the client's session left it (possibly inside a
/// reply). When the owed replies are counted, anything but a status, an error or a push where
/// RESET's reply belongs fails at its first byte (no waiting for an array's ten million
/// elements). The re-authentication's replies are read by a bounded resp::reply_reader and
/// checked by check_handshake, like a new connection's. Bytes after the last reply fail it (the
/// connection would be out of step).
class reset_reader {
  public:
    reset_reader(const resp::scanner& scanner, std::optional<std::uint64_t> owed, handshake reauth);

    /// RESET and the re-authentication, to be written once.
    const std::string& commands() const { return commands_; }

    /// Reads upstream bytes: the outcome once known, nullopt while more are needed. After an
    /// outcome the reader is done: later calls return the same outcome.
    std::optional<reset_result> feed(std::string_view bytes);

    /// The outcome, if known.
    const std::optional<reset_result>& outcome() const { return outcome_; }

  private:
    bool fail(error kind, std::string why);
    void reauth_reply(std::string_view frame, bool frame_done, bool last);

    resp::scanner scanner_;
    std::optional<std::uint64_t> owed_;
    handshake reauth_;
    std::string commands_;
    resp::reply_reader reader_;
    std::vector<resp::reply> replies_;
    bool seen_reset_ = false;
    std::optional<reset_result> outcome_;
};

}  // namespace redis_sidecar::upstream
