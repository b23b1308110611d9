#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "redis_sidecar/bridge/core.hpp"
#include "redis_sidecar/resp/scanner.hpp"
#include "redis_sidecar/upstream/connection.hpp"

namespace redis_sidecar::bridge {

/// Returns a connection a client left with state (MULTI, SELECT, SUBSCRIBE, replies in flight)
/// to the pool clean: sends RESET and the reauth_pipeline, skips the replies the old client was
/// still owed, checks RESET's reply and the ones that follow, and only then releases it as
/// reusable. `scanner` continues the reply stream where the client's session left it and
/// `leftover` holds bytes already read but not delivered. `owed` is how many replies (pushes
/// aside) are still in flight; nullopt when the client left request/reply (pub/sub, MONITOR):
/// then every frame up to the first "+RESET" is skipped. Any error, unexpected reply or the
/// context's recycle_timeout closes the connection instead (also the answer of servers before
/// 6.2, which have no RESET).
void recycle_with_reset(const std::shared_ptr<session_context>& context,
                        std::shared_ptr<upstream::connection> connection,
                        const resp::scanner& scanner, std::string leftover,
                        std::optional<std::uint64_t> owed);

}  // namespace redis_sidecar::bridge
