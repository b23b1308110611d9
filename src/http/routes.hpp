#pragma once

// The admin server's routes as a pure function of the request and the sources, so the
// socket code holds no routing rules.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string_view>

#include "redis_sidecar/http/admin_server.hpp"

namespace redis_sidecar::http {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;

/// The probes the server counts.
enum class probe { livez, startupz, readyz };

/// Adds one served probe request to the counts (ok: answered 200).
using probe_counter = std::function<void(probe, bool ok)>;

/// What to send back, and whether to call sources::quit once it has been written.
struct routed {
    response res;
    bool quit_after_write = false;
};

/// Answers one request: every route, 404, 405 (with Allow), HEAD as GET without a body, and 500
/// when a source throws. Keep-alive follows the request.
routed route(const request& req, const sources& src, const probe_counts& counts,
             const probe_counter& count_probe);

/// A short text response with `Connection: close` (for 400, 413, 431 and 503-at-capacity).
response error_response(boost::beast::http::status code, std::string_view text);

}  // namespace redis_sidecar::http
