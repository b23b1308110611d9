#include "redis_sidecar/upstream/resolve.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <memory>
#include <sstream>

#include "redis_sidecar/upstream/error.hpp"

namespace redis_sidecar::upstream {

namespace asio = boost::asio;

namespace {

/// A hosts file larger than this is not a hosts file.
constexpr std::size_t max_hosts_file_bytes = 64 * 1024;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

}  // namespace

resolver_fn system_resolver(asio::any_io_executor ex) {
    return [ex](const std::string& host, std::uint16_t port, resolve_handler handler) {
        auto resolver = std::make_shared<tcp::resolver>(ex);
        resolver->async_resolve(
            host, std::to_string(port),
            [resolver, handler = std::move(handler)](const boost::system::error_code& ec,
                                                     const tcp::resolver::results_type& results) {
                std::vector<tcp::endpoint> endpoints;
                for (const auto& r : results) endpoints.push_back(r.endpoint());
                if (!ec && endpoints.empty()) {
                    handler(make_error_code(error::dns_failure), {});
                    return;
                }
                handler(ec ? make_error_code(classify(ec)) : std::error_code{},
                        std::move(endpoints));
            });
    };
}

resolver_fn hosts_file_resolver(std::string path, resolver_fn fallback) {
    return [path = std::move(path), fallback = std::move(fallback)](
               const std::string& host, std::uint16_t port, resolve_handler handler) {
        std::ifstream file(path);
        std::string text(max_hosts_file_bytes, '\0');
        file.read(text.data(), static_cast<std::streamsize>(text.size()));
        text.resize(static_cast<std::size_t>(file.gcount()));
        std::istringstream lines(text);
        std::vector<tcp::endpoint> endpoints;
        const auto wanted = lower(host);
        for (std::string line; std::getline(lines, line);) {
            line = line.substr(0, line.find('#'));
            std::istringstream words(line);
            std::string address;
            words >> address;
            for (std::string name; words >> name;) {
                if (lower(name) != wanted) continue;
                boost::system::error_code ec;
                auto a = asio::ip::make_address(address, ec);
                if (!ec) endpoints.emplace_back(a, port);
            }
        }
        if (endpoints.empty()) {
            fallback(host, port, std::move(handler));
        } else {
            handler({}, std::move(endpoints));
        }
    };
}

resolver_fn make_resolver(asio::any_io_executor ex, const config::upstream_settings& upstream) {
    auto dns = system_resolver(ex);
    if (upstream.hosts_file.empty()) return dns;
    return hosts_file_resolver(upstream.hosts_file, std::move(dns));
}

}  // namespace redis_sidecar::upstream
