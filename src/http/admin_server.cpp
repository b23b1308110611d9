#include "redis_sidecar/http/admin_server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <optional>
#include <stdexcept>
#include <unordered_set>
#include <utility>

#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/log/logger.hpp"
#include "routes.hpp"

namespace redis_sidecar::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

/// The variable the listen address comes from, named in start()'s errors.
constexpr std::string_view listen_variable = "REDIS_SIDECAR_HTTP_ADDR";
/// Pause before accepting again after an accept error (EMFILE and the like), so a persistent
/// error does not spin.
constexpr std::chrono::milliseconds accept_retry_delay{100};
/// After an error response, how long to read (and drop) what the client still sends before
/// closing, so the close does not reset the connection before the client read the response.
constexpr std::chrono::milliseconds linger_timeout{500};
/// ... and how many bytes at most.
constexpr std::size_t linger_limit = 64 * 1024;
/// Read-buffer slack beyond the header and body limits (the parser consumes as it goes).
constexpr std::size_t buffer_slack = 1024;

struct host_port {
    std::string host;  // empty: every IPv4 interface
    std::uint16_t port = 0;
};

// "host:port", "[v6]:port" or ":port"; port 0 (any free port) is allowed, unlike for upstream
// addresses (config::parse_address), because tests bind port 0.
std::optional<host_port> split_host_port(std::string_view text) {
    constexpr unsigned max_port = 65535;
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view host = text.substr(0, colon);
    const std::string_view port = text.substr(colon + 1);
    if (host.starts_with('[')) {
        if (!host.ends_with(']')) return std::nullopt;
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        return std::nullopt;  // a bare IPv6 address needs brackets here
    }
    unsigned value = 0;
    const auto r = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || r.ec != std::errc{} || r.ptr != port.data() + port.size() ||
        value > max_port) {
        return std::nullopt;
    }
    return host_port{std::string(host), static_cast<std::uint16_t>(value)};
}

}  // namespace

class session;

namespace detail {

struct server_state : std::enable_shared_from_this<server_state> {
    server_state(asio::any_io_executor ex, std::string listen_addr, sources s, server_limits l)
        : strand(asio::make_strand(ex)),
          acceptor(strand),
          retry_timer(strand),
          listen(std::move(listen_addr)),
          src(std::move(s)),
          limits(l) {}

    void do_accept();
    void on_accept(error_code ec, tcp::socket socket);
    void close_all();

    void count_probe(probe p, bool ok) {
        auto& c = counts[static_cast<std::size_t>(p) * 2 + (ok ? 0 : 1)];
        c.fetch_add(1, std::memory_order_relaxed);
    }
    probe_counts snapshot() const {
        const auto at = [this](std::size_t i) { return counts[i].load(std::memory_order_relaxed); };
        return {at(0), at(1), at(2), at(3), at(4), at(5)};
    }

    void count_refused(loopback_route r) {
        refused[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
    }
    refused_counts refused_snapshot() const {
        const auto at = [this](loopback_route r) {
            return refused[static_cast<std::size_t>(r)].load(std::memory_order_relaxed);
        };
        return {at(loopback_route::configz), at(loopback_route::quitquitquit)};
    }

    asio::strand<asio::any_io_executor> strand;
    tcp::acceptor acceptor;
    asio::steady_timer retry_timer;
    const std::string listen;
    const sources src;
    const server_limits limits;
    std::unordered_set<session*> sessions;  // live connections, for stop() and the cap
    std::atomic<std::uint16_t> port{0};
    bool stopped = false;
    // (livez, startupz, readyz) × (200, 503)
    std::array<std::atomic<std::uint64_t>, 6> counts{};
    // By loopback_route: 403s to peers that are not loopback.
    std::array<std::atomic<std::uint64_t>, 2> refused{};
};

}  // namespace detail

/// One client connection: reads a request (with a deadline), answers it, repeats while the
/// client keeps the connection alive. Lives exactly as long as an operation is pending.
class session : public std::enable_shared_from_this<session> {
  public:
    session(tcp::socket&& socket, std::shared_ptr<detail::server_state> server)
        : peer_(peer_of(socket)),
          stream_(std::move(socket)),
          server_(std::move(server)),
          buffer_(server_->limits.header_limit + server_->limits.body_limit + buffer_slack) {
        server_->sessions.insert(this);
    }
    ~session() { server_->sessions.erase(this); }

    session(const session&) = delete;
    session& operator=(const session&) = delete;

    void run() { do_read(); }

    /// Cancels whatever is pending; the handlers then end the session.
    void close() {
        error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
    }

  private:
    // The address the connection comes from, which decides what it may be served; nullopt when
    // the socket cannot say (the peer already left): then it is not loopback.
    static std::optional<asio::ip::address> peer_of(const tcp::socket& socket) {
        error_code ec;
        const auto endpoint = socket.remote_endpoint(ec);
        if (ec) return std::nullopt;
        return endpoint.address();
    }

    void do_read() {
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(server_->limits.header_limit));
        parser_->body_limit(server_->limits.body_limit);
        stream_.expires_after(server_->limits.timeout);
        beast_http::async_read(stream_, buffer_, *parser_,
                               beast::bind_front_handler(&session::on_read, shared_from_this()));
    }

    void on_read(error_code ec, std::size_t /*bytes*/) {
        if (ec == beast_http::error::header_limit) {
            return send_error(beast_http::status::request_header_fields_too_large,
                              "request header fields too large");
        }
        if (ec == beast_http::error::body_limit) {
            return send_error(beast_http::status::payload_too_large, "payload too large");
        }
        if (ec &&
            ec.category() ==
                beast_http::make_error_code(beast_http::error::bad_target).category() &&
            ec != beast_http::error::end_of_stream && ec != beast_http::error::partial_message) {
            return send_error(beast_http::status::bad_request, "bad request");
        }
        // end_of_stream (the client closed between requests), timeout, reset, cancel: done.
        if (ec) return close();

        const auto& req = parser_->get();
        auto r = route(req, peer_, server_->src, server_->snapshot(),
                       [server = server_.get()](probe p, bool ok) { server->count_probe(p, ok); });
        if (r.refused) {
            server_->count_refused(*r.refused);
            const auto method = req.method_string();
            const std::string peer = peer_ ? peer_->to_string() : "unknown";
            log::warn("admin request refused: loopback only",
                      {{"path", path_of(*r.refused)},
                       {"method", std::string_view(method.data(), method.size())},
                       {"peer", peer}});
        }
        quit_after_write_ = r.quit_after_write;
        do_write(std::move(r.res));
    }

    void do_write(response res) {
        response_ = std::move(res);
        stream_.expires_after(server_->limits.timeout);
        beast_http::async_write(stream_, response_,
                                beast::bind_front_handler(&session::on_write, shared_from_this()));
    }

    void on_write(error_code ec, std::size_t /*bytes*/) {
        if (quit_after_write_ && !ec) {
            quit_after_write_ = false;
            // Posted: the app's quit() may stop this server, which must not happen inside
            // our own handler's stack.
            asio::post(server_->strand, [server = server_] {
                if (server->src.quit) server->src.quit();
            });
        }
        if (ec) return close();
        if (response_.need_eof() || server_->stopped) return close();
        do_read();
    }

    // Answers a request that could not be read whole, then lingers and closes.
    void send_error(beast_http::status code, std::string_view text) {
        response_ = error_response(code, text);
        stream_.expires_after(server_->limits.timeout);
        beast_http::async_write(stream_, response_,
                                [self = shared_from_this()](error_code ec, std::size_t) {
                                    if (ec) return self->close();
                                    self->do_linger();
                                });
    }

    void do_linger() {
        error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.expires_after(
            std::min<std::chrono::milliseconds>(linger_timeout, server_->limits.timeout));
        read_linger();
    }

    void read_linger() {
        stream_.async_read_some(asio::buffer(linger_buffer_),
                                [self = shared_from_this()](error_code ec, std::size_t n) {
                                    self->lingered_ += n;
                                    if (ec || self->lingered_ >= linger_limit) return self->close();
                                    self->read_linger();
                                });
    }

    const std::optional<asio::ip::address> peer_;
    beast::tcp_stream stream_;
    std::shared_ptr<detail::server_state> server_;
    beast::flat_buffer buffer_;
    std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
    response response_;
    bool quit_after_write_ = false;
    std::array<char, 4096> linger_buffer_{};
    std::size_t lingered_ = 0;
};

void detail::server_state::do_accept() {
    acceptor.async_accept(strand,
                          beast::bind_front_handler(&server_state::on_accept, shared_from_this()));
}

void detail::server_state::on_accept(error_code ec, tcp::socket socket) {
    if (stopped || ec == asio::error::operation_aborted) return;
    if (ec) {
        retry_timer.expires_after(accept_retry_delay);
        retry_timer.async_wait([self = shared_from_this()](error_code wait_ec) {
            if (!wait_ec && !self->stopped) self->do_accept();
        });
        return;
    }
    if (sessions.size() >= limits.max_connections) {
        error_code ignored;
        socket.close(ignored);  // over the cap: the client sees the connection close
    } else {
        std::make_shared<session>(std::move(socket), shared_from_this())->run();
    }
    do_accept();
}

void detail::server_state::close_all() {
    stopped = true;
    error_code ignored;
    acceptor.close(ignored);
    retry_timer.cancel();
    // close() only cancels; sessions leave the set later, from their handlers.
    for (session* s : sessions) s->close();
}

admin_server::admin_server(asio::any_io_executor ex, std::string listen, sources src,
                           server_limits limits)
    : state_(std::make_shared<detail::server_state>(std::move(ex), std::move(listen),
                                                    std::move(src), limits)) {}

admin_server::~admin_server() {
    // stop() dispatches to the strand, which may allocate and throw: out of a destructor, that
    // would be std::terminate.
    try {
        stop();
    } catch (...) {
    }
}

void admin_server::start() {
    const auto fail = [this](const std::string& why) {
        return std::runtime_error(std::string(listen_variable) + "=" + state_->listen +
                                  ": cannot listen: " + why);
    };
    const auto addr = split_host_port(state_->listen);
    if (!addr) throw fail("expected host:port (port 0-65535, IPv6 in brackets)");

    error_code ec;
    tcp::endpoint endpoint;
    if (addr->host.empty()) {
        endpoint = {tcp::v4(), addr->port};
    } else if (config::is_ip_literal(addr->host)) {
        endpoint = {asio::ip::make_address(addr->host, ec), addr->port};
        if (ec) throw fail(ec.message());
    } else {
        tcp::resolver resolver(state_->strand);
        const auto results = resolver.resolve(addr->host, std::to_string(addr->port), ec);
        if (ec || results.empty()) throw fail(ec ? ec.message() : "no address");
        endpoint = results.begin()->endpoint();
    }

    auto& acceptor = state_->acceptor;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        error_code ignored;
        acceptor.close(ignored);
        throw fail(ec.message());
    }
    state_->port = acceptor.local_endpoint().port();
    state_->do_accept();
}

void admin_server::stop() {
    asio::dispatch(state_->strand, [s = state_] { s->close_all(); });
}

std::uint16_t admin_server::port() const {
    return state_->port.load();
}

probe_counts admin_server::probe_requests() const {
    return state_->snapshot();
}

refused_counts admin_server::refused_requests() const {
    return state_->refused_snapshot();
}

}  // namespace redis_sidecar::http
