#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include "redis_sidecar/config/settings.hpp"

namespace redis_sidecar::upstream {

using tcp = boost::asio::ip::tcp;

/// Turns a host name into addresses. The seam where tests (and the test-only hosts file)
/// replace DNS.
using resolve_handler = std::function<void(std::error_code, std::vector<tcp::endpoint>)>;
using resolver_fn =
    std::function<void(const std::string& host, std::uint16_t port, resolve_handler)>;

/// DNS through the system resolver (getaddrinfo on Asio's resolver thread).
resolver_fn system_resolver(boost::asio::any_io_executor ex);

/// Reads a hosts(5)-style file ("ADDRESS NAME...") on every lookup and answers from it when the
/// name is there, otherwise asks `fallback`. For tests that move a name to a new address.
resolver_fn hosts_file_resolver(std::string path, resolver_fn fallback);

/// The system resolver, behind the test-only hosts file when the settings name one.
resolver_fn make_resolver(boost::asio::any_io_executor ex,
                          const config::upstream_settings& upstream);

}  // namespace redis_sidecar::upstream
