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
#include "redis_sidecar/upstream/reset_reader.hpp"

namespace redis_sidecar::upstream {

using reset_handler = std::function<void(std::shared_ptr<connection>, reset_result)>;

/// Writes RESET and `reauth` on `c` and feeds what comes back to a reset_reader (which says what
/// must come back and checks it), under `timeout`; an I/O error, the timeout or the reader's
/// verdict ends it and calls `done`. `leftover` holds bytes the client's session read but did
/// not deliver; they are fed first.
void reset_connection(std::shared_ptr<connection> c, const resp::scanner& scanner,
                      std::string leftover, std::optional<std::uint64_t> owed, handshake reauth,
                      std::chrono::milliseconds timeout, reset_handler done);

}  // namespace redis_sidecar::upstream
