#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "redis_sidecar/bridge/stats.hpp"
#include "redis_sidecar/config/secret.hpp"
#include "redis_sidecar/upstream/handshake.hpp"

namespace redis_sidecar::upstream {
class pool;
}
namespace redis_sidecar::cluster {
class address_book;
}

namespace redis_sidecar::bridge {

class session;
class lane_set;

/// What every session shares: the pool, the counters and the settings the bridge needs. One
/// event loop uses it (no locks). The client core reads only the policy fields (no pool).
struct session_context {
    std::shared_ptr<upstream::pool> pool;
    bridge_stats* stats = nullptr;
    /// REDIS_SIDECAR_CLIENT_PASSWORD: local clients must AUTH with it; absent: any AUTH is OK.
    std::optional<config::secret> client_password;
    /// REDIS_SIDECAR_CLIENT_AUTH=passthrough: clients' AUTH and HELLO … AUTH go to the upstream.
    bool passthrough_auth = false;
    /// A local AUTH naming another user than the sidecar's has been logged (once per process).
    bool other_user_logged = false;
    /// A refused CLIENT MAINT_NOTIFICATIONS has been logged (once per listener).
    bool maint_notifications_logged = false;
    /// CLIENT IDs that a client named in CLIENT TRACKING … REDIRECT: the connection with that
    /// id is closed, not reused, when its client leaves. Bounded: the oldest are forgotten.
    std::deque<long long> redirect_targets;
    static constexpr std::size_t max_redirect_targets = 1024;
    /// For a client's RESET: what makes the connection the sidecar's again (the pool's
    /// reauth(), with the credentials of the moment). The bridge forwards it, never reads it.
    std::function<upstream::handshake()> reauth;
    /// The user the sidecar authenticates as (follows rotation); unset: "default".
    std::function<std::string()> upstream_user;
    /// Bound on every write to a client or to its upstream connection (see listener).
    std::chrono::milliseconds write_timeout{5000};
    /// Cluster mode: node addresses in topology replies and MOVED/ASK become the sidecar's
    /// local ports (cluster::rewrite_reply). Null: replies pass as they are.
    cluster::address_book* cluster = nullptr;
    /// REDIS_SIDECAR_MULTIPLEX=on: the shared upstream connections (owned by the listener);
    /// null: every client leases its own connection.
    lane_set* lanes = nullptr;
    /// Called when a session ends (the listener's bookkeeping).
    std::function<void(session*)> on_session_end;
};

}  // namespace redis_sidecar::bridge
