#pragma once

#include <memory>
#include <string>

#include "redis_sidecar/resp/scanner.hpp"
#include "redis_sidecar/upstream/connection.hpp"

namespace redis_sidecar::bridge {

struct session_context;

/// Returns a connection a client left with state (MULTI, SELECT, SUBSCRIBE, replies in flight)
/// to the pool clean: sends RESET, HELLO 2 [AUTH] SETNAME and SELECT, skips every frame up to
/// RESET's reply (`scanner` continues the reply stream where the client's session left it, and
/// `leftover` holds bytes already read but not delivered), checks the replies that follow, and
/// only then releases it as reusable. Any error, unexpected reply or the context's
/// recycle_timeout closes the connection instead (also the answer of servers before 6.2, which
/// have no RESET).
void recycle_with_reset(const std::shared_ptr<session_context>& context,
                        std::shared_ptr<upstream::connection> connection,
                        const resp::scanner& scanner, std::string leftover);

}  // namespace redis_sidecar::bridge
