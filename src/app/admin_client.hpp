#pragma once

// A client of the sidecar's own admin server, for `wait` and `shutdown`: one bounded HTTP/1.1
// request on the address the running sidecar listens on.

#include <chrono>
#include <string>
#include <string_view>

namespace redis_sidecar::app {

/// One answer of the admin server, or why there was none.
struct admin_answer {
    int status = 0;     ///< the HTTP status; 0 when nothing answered
    std::string body;   ///< the response body (at most admin_body_limit bytes)
    std::string error;  ///< when status is 0: "connection refused", "timed out", ...
};

/// Largest response body read: the admin server's pages that matter here are a few bytes.
inline constexpr std::size_t admin_body_limit = 64 * 1024;

/// Where to reach an admin server that listens on `listen` ("host:port", as http.addr holds
/// it) from this host: a wildcard address (0.0.0.0, ::) becomes loopback (127.0.0.1, ::1),
/// which is also the only peer POST /quitquitquit answers.
std::string reachable_admin_addr(const std::string& listen);

/// GET or POST `target` at `addr` ("host:port"); connect, request and response together are
/// bounded by `timeout`. Never throws for network errors: they come back in `error`.
admin_answer admin_request(const std::string& addr, bool post, std::string_view target,
                           std::chrono::milliseconds timeout);

}  // namespace redis_sidecar::app
