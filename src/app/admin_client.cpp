#include "admin_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "redis_sidecar/config/address.hpp"

namespace redis_sidecar::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

std::string describe(const error_code& ec) {
    if (ec == beast::error::timeout) return "timed out";
    if (ec == asio::error::connection_refused) return "connection refused";
    return ec.message();
}

}  // namespace

std::string reachable_admin_addr(const std::string& listen) {
    const auto a = config::parse_address(listen);
    std::string host = a.host;
    if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
    return config::join_host_port(host, a.port.value_or(0));
}

admin_answer admin_request(const std::string& addr, bool post, std::string_view target,
                           std::chrono::milliseconds timeout) {
    admin_answer answer;
    config::parsed_address a;
    try {
        a = config::parse_address(addr);
    } catch (const std::exception& e) {
        answer.error = addr + ": " + e.what();
        return answer;
    }
    asio::io_context ioc;
    error_code ec;
    // Numeric in every case this is used for (http.addr is normally an IP); a name is resolved
    // by the system resolver before the bound starts.
    tcp::resolver resolver(ioc);
    const auto endpoints = resolver.resolve(a.host, std::to_string(a.port.value_or(0)), ec);
    if (ec) {
        answer.error = "cannot resolve " + a.host + ": " + ec.message();
        return answer;
    }

    beast::tcp_stream stream(ioc);
    beast::flat_buffer buffer;
    http::request<http::string_body> req{post ? http::verb::post : http::verb::get,
                                         std::string(target), 11};
    req.set(http::field::host, addr);
    req.set(http::field::user_agent, "redis-sidecar");
    req.set(http::field::connection, "close");
    req.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(admin_body_limit);

    // One deadline for connect, write and read (tcp_stream's timer covers every operation
    // started until it fires).
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&](const error_code& e, const tcp::endpoint&) {
        if (e) {
            answer.error = describe(e);
            return;
        }
        http::async_write(stream, req, [&](const error_code& e2, std::size_t) {
            if (e2) {
                answer.error = describe(e2);
                return;
            }
            http::async_read(stream, buffer, parser, [&](const error_code& e3, std::size_t) {
                if (e3) {
                    answer.error = describe(e3);
                    return;
                }
                answer.status = static_cast<int>(parser.get().result_int());
                answer.body = parser.get().body();
            });
        });
    });
    ioc.run();
    stream.socket().close(ec);
    return answer;
}

}  // namespace redis_sidecar::app
