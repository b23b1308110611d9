#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "redis_sidecar/config/settings.hpp"
#include "redis_sidecar/resp/command.hpp"

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

/// What the server said about itself in its HELLO reply.
struct server_info {
    std::string version;      ///< "7.0.15"; empty for servers without HELLO
    std::string role;         ///< "master" or "replica"; empty when unknown
    std::string mode;         ///< "standalone", "cluster" or "sentinel"
    long long client_id = 0;  ///< the connection's CLIENT ID (HELLO's "id"); 0 when unknown
    bool supports_hello = true;
};

/// What the server said about itself in a HELLO reply (a map as RESP2 flattens it).
server_info parse_hello(const resp::reply& hello);

/// What the replies to a handshake say.
struct handshake_outcome {
    std::error_code ec;       ///< none: every step succeeded
    bool no_hello = false;    ///< the server does not know HELLO: send it again with hello = false
    std::string failed_step;  ///< the step that failed ("auth", "select", ...)
    std::string detail;       ///< the server's error text (never holds the password)
    server_info info;         ///< from HELLO's reply (supports_hello false without HELLO)
};

/// Checks the replies to `h` (one per step, in order): the first error reply fails its step
/// (classified: wrongpass, noauth, ...); a reply of the wrong type fails it as protocol_error
/// (HELLO must answer a map, PING PONG, AUTH, CLIENT SETNAME and SELECT OK); HELLO's reply gives
/// server_info. `hello` says whether `h` starts with HELLO (its first reply is HELLO's).
handshake_outcome check_handshake(const handshake& h, const std::vector<resp::reply>& replies,
                                  bool hello);

}  // namespace redis_sidecar::upstream
