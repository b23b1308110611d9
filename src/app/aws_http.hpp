#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <functional>
#include <string>

#include "redis_sidecar/aws/credentials.hpp"

namespace redis_sidecar::app {

/// What a fetch ends with: a response (any status), or `error` (a short reason: DNS, connect,
/// TLS verification, timeout, a reply over the bound) and no response.
using http_handler = std::function<void(const std::string& error, aws::http_response)>;

/// Replies larger than this end the fetch with an error.
inline constexpr std::size_t max_http_reply = 64 * 1024;

/// One HTTP/1.1 exchange for the AWS credential providers: DNS, TCP, TLS for https (the system
/// trust store, or `ca_bundle` instead when not empty; the host name verified), the request, the
/// response; everything under `timeout`. The handler runs once, on `ex`, never inside this call.
void http_fetch(boost::asio::any_io_executor ex, aws::http_request request,
                const std::string& ca_bundle, std::chrono::milliseconds timeout,
                http_handler handler);

}  // namespace redis_sidecar::app
