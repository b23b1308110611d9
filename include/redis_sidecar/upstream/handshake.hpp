#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "redis_sidecar/config/settings.hpp"

namespace redis_sidecar::upstream {

/// How the sidecar makes a connection its own, pipelined in one write.
struct handshake_options {
    /// HELLO 2 [AUTH user password] [SETNAME name]; false for servers before Redis 6:
    /// AUTH [user] password, CLIENT SETNAME name.
    bool hello = true;
    /// A PING last (opening a connection proves it answers).
    bool ping = true;
};

/// The handshake's commands and one step name per reply they produce ("auth" for HELLO or AUTH,
/// "setname", "select", "ping").
struct handshake {
    std::string commands;
    std::vector<std::string> steps;
};

/// The one place that says how the sidecar authenticates, names and selects a connection: the
/// opener, and the bridge after a client's RESET, send exactly this. With HELLO the user is
/// `default` when none is configured; SELECT only when db is not 0.
handshake make_handshake(const config::upstream_settings& upstream, std::string_view client_name,
                         handshake_options options = {});

}  // namespace redis_sidecar::upstream
