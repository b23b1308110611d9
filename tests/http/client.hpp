#pragma once

// A tiny blocking HTTP/1.1 client over raw sockets for the admin server's tests: every wait is
// bounded by a deadline (poll), so a broken server fails a test instead of hanging it.

#include <boost/asio/buffer.hpp>
// Beast 1.74's parser trips GCC 12's -Wmaybe-uninitialized under the sanitizers (a false
// positive in a third-party header).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/beast/http/parser.hpp>
#pragma GCC diagnostic pop
#include <boost/beast/http/string_body.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "support/net.hpp"

namespace redis_sidecar::http::test {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using testing::unique_fd;

/// Default bound on every wait of a test client.
inline constexpr std::chrono::milliseconds io_deadline{3000};

inline unique_fd connect_to(std::uint16_t port) {
    return testing::connect_tcp("127.0.0.1", port, io_deadline);
}

/// A connection to `host` (numeric, v4 or v6) instead of 127.0.0.1.
inline unique_fd connect_to(const std::string& host, std::uint16_t port) {
    return testing::connect_tcp(host, port, io_deadline);
}

/// Sends all of `data`; false if the connection broke.
inline bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

/// What recv_some saw.
enum class recv_status { data, closed, timeout };

/// Waits until `deadline` for bytes; appends them to `out`.
inline recv_status recv_some(int fd, std::string& out, clock::time_point deadline) {
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() < 0) return recv_status::timeout;
        pollfd p{fd, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return recv_status::timeout;
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return recv_status::closed;  // EOF or reset
        out.append(buf, static_cast<std::size_t>(n));
        return recv_status::data;
    }
}

/// True when the peer closes the connection before `timeout` (bytes it sends meanwhile are
/// dropped).
inline bool closed_within(int fd, std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    std::string ignored;
    for (;;) {
        switch (recv_some(fd, ignored, deadline)) {
            case recv_status::closed:
                return true;
            case recv_status::timeout:
                return false;
            case recv_status::data:
                ignored.clear();
                break;
        }
    }
}

/// A parsed response.
struct reply {
    unsigned status = 0;
    std::string body;
    std::string content_type;
    std::string allow;
    std::optional<std::size_t> content_length;
    bool keep_alive = false;
};

/// Reads one response from `fd` (bytes after it stay in `leftover`). `head`: the request was
/// HEAD, so no body follows. nullopt on timeout, close before a whole response, or bad syntax.
inline std::optional<reply> read_reply(int fd, bool head = false,
                                       std::chrono::milliseconds timeout = io_deadline,
                                       std::string* leftover = nullptr) {
    namespace bh = boost::beast::http;
    const auto deadline = clock::now() + timeout;
    bh::response_parser<bh::string_body> parser;
    parser.skip(head);
    parser.eager(true);
    std::string pending = leftover ? std::move(*leftover) : std::string();
    if (leftover) leftover->clear();
    for (;;) {
        boost::system::error_code ec;
        while (!pending.empty() && !parser.is_done()) {
            const auto used = parser.put(boost::asio::buffer(pending), ec);
            if (ec == bh::error::need_more) break;
            if (ec) return std::nullopt;
            pending.erase(0, used);
        }
        if (parser.is_done()) break;
        const auto s = recv_some(fd, pending, deadline);
        if (s == recv_status::timeout) return std::nullopt;
        if (s == recv_status::closed) {
            parser.put_eof(ec);
            if (ec || !parser.is_done()) return std::nullopt;
            break;
        }
    }
    if (leftover) *leftover = std::move(pending);
    const auto& msg = parser.get();
    reply r;
    r.status = msg.result_int();
    r.body = msg.body();
    r.content_type = std::string(msg[bh::field::content_type]);
    r.allow = std::string(msg[bh::field::allow]);
    if (const auto it = msg.find(bh::field::content_length); it != msg.end()) {
        r.content_length = std::stoul(std::string(it->value()));
    }
    r.keep_alive = msg.keep_alive();
    return r;
}

/// "METHOD target HTTP/1.1" with Host, an optional body, keep-alive unless `close`.
inline std::string request_text(std::string_view method, std::string_view target,
                                std::string_view body = {}, bool close = false) {
    std::string r = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\n";
    r += "Host: 127.0.0.1\r\n";
    if (close) r += "Connection: close\r\n";
    if (!body.empty() || method == "POST") {
        r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    r += "\r\n";
    r += body;
    return r;
}

/// One request on a new connection to `host`.
inline std::optional<reply> fetch_at(const std::string& host, std::uint16_t port,
                                     std::string_view method, std::string_view target,
                                     std::string_view body = {}) {
    auto fd = connect_to(host, port);
    if (!fd || !send_all(fd.get(), request_text(method, target, body))) return std::nullopt;
    return read_reply(fd.get(), method == "HEAD");
}

/// One request on a new connection to 127.0.0.1.
inline std::optional<reply> fetch(std::uint16_t port, std::string_view method,
                                  std::string_view target, std::string_view body = {}) {
    return fetch_at("127.0.0.1", port, method, target, body);
}

}  // namespace redis_sidecar::http::test
