#pragma once

// The admin server's routes as a pure function of the request, the peer's address and the
// sources, so the socket code holds no routing or access rules.

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <optional>
#include <string_view>

#include "redis_sidecar/http/admin_server.hpp"

namespace redis_sidecar::http {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;

/// The probes the server counts.
enum class probe { livez, startupz, readyz };

/// Adds one served probe request to the counts (ok: answered 200).
using probe_counter = std::function<void(probe, bool ok)>;

/// The routes only a loopback peer is served: /configz shows the configuration, /quitquitquit
/// stops the sidecar. The admin server listens on the pod's address for the kubelet, so anything
/// on the pod network reaches it; loopback is the pod's own containers.
enum class loopback_route { configz, quitquitquit };

/// "/configz", "/quitquitquit".
std::string_view path_of(loopback_route r);

/// True for 127.0.0.0/8, ::1, and IPv4-mapped ::ffff:127.0.0.0/104 (how a dual-stack listener
/// on [::] sees an IPv4 loopback client). Nothing else: not ::ffff:10.x, not link-local, not
/// the deprecated IPv4-compatible ::127.0.0.1.
bool is_loopback(const boost::asio::ip::address& a);

/// The access rule, without a socket: whether `peer` may be served `path` (the request target
/// without its query). nullopt when anyone may; otherwise the loopback-only route that `peer`
/// was refused. The method does not matter: a refused peer gets 403 for every method, so it
/// does not even learn which method the route takes. An unknown peer (nullopt: the socket could
/// not say) is not loopback.
std::optional<loopback_route> refusal(std::string_view path,
                                      const std::optional<boost::asio::ip::address>& peer);

/// What to send back, whether to call sources::quit once it has been written, and whether the
/// response is a 403 for a peer that is not loopback (the server counts and logs it).
struct routed {
    response res;
    bool quit_after_write = false;
    std::optional<loopback_route> refused = std::nullopt;
};

/// Answers one request from `peer`: every route, 403 for a loopback-only route asked by another
/// peer (before any other check of the request but its target), 404, 405 (with Allow), HEAD as
/// GET without a body, and 500 when a source throws. Keep-alive follows the request.
routed route(const request& req, const std::optional<boost::asio::ip::address>& peer,
             const sources& src, const probe_counts& counts, const probe_counter& count_probe);

/// A short text response with `Connection: close` (for 400, 413, 431 and 503-at-capacity).
response error_response(boost::beast::http::status code, std::string_view text);

}  // namespace redis_sidecar::http
