#include "aws_http.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <memory>
#include <optional>

#include <openssl/x509v3.h>

#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/upstream/tls.hpp"

namespace redis_sidecar::app {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// One exchange. Owns its sockets; kept alive by the handlers it passes to Asio.
class fetch : public std::enable_shared_from_this<fetch> {
  public:
    fetch(asio::any_io_executor ex, aws::http_request request, aws::url_parts url,
          std::unique_ptr<upstream::tls_client> tls, http_handler handler)
        : ex_(ex),
          request_(std::move(request)),
          url_(std::move(url)),
          tls_(std::move(tls)),
          handler_(std::move(handler)),
          resolver_(ex),
          timer_(ex) {}

    void start(std::chrono::milliseconds timeout) {
        timer_.expires_after(timeout);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (!ec) self->finish("timed out");
        });
        resolver_.async_resolve(url_.host, url_.port,
                                [self = shared_from_this()](const boost::system::error_code& ec,
                                                            const tcp::resolver::results_type& r) {
                                    self->on_resolved(ec, r);
                                });
    }

  private:
    void on_resolved(const boost::system::error_code& ec, const tcp::resolver::results_type& r) {
        if (done_) return;
        if (ec) return finish("cannot resolve " + url_.host + ": " + ec.message());
        if (tls_) {
            ssl_.emplace(ex_, tls_->context());
            SSL* ssl = ssl_->native_handle();
            if (!config::is_ip_literal(url_.host)) {
                SSL_set_tlsext_host_name(ssl, url_.host.c_str());
            }
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (config::is_ip_literal(url_.host)) {
                X509_VERIFY_PARAM_set1_ip_asc(param, url_.host.c_str());
            } else {
                X509_VERIFY_PARAM_set1_host(param, url_.host.c_str(), url_.host.size());
            }
        } else {
            plain_.emplace(ex_);
        }
        auto& socket = tls_ ? ssl_->next_layer().socket() : plain_->socket();
        asio::async_connect(
            socket, r,
            [self = shared_from_this()](const boost::system::error_code& e, const tcp::endpoint&) {
                self->on_connected(e);
            });
    }

    void on_connected(const boost::system::error_code& ec) {
        if (done_) return;
        if (ec)
            return finish("cannot connect to " + url_.host + ":" + url_.port + ": " + ec.message());
        if (!ssl_) return send();
        ssl_->async_handshake(
            asio::ssl::stream_base::client,
            [self = shared_from_this()](const boost::system::error_code& e) {
                if (self->done_) return;
                if (e) {
                    return self->finish("TLS handshake with " + self->url_.host + " failed: " +
                                        upstream::openssl_reason(self->ssl_->native_handle(), e));
                }
                self->send();
            });
    }

    void send() {
        req_.method(bhttp::string_to_verb(request_.method));
        req_.target(url_.target);
        req_.version(11);
        const bool default_port = url_.port == (tls_ ? "443" : "80");
        auto host = url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host;
        req_.set(bhttp::field::host, default_port ? host : host + ":" + url_.port);
        req_.set(bhttp::field::user_agent, "redis-sidecar");
        req_.set(bhttp::field::connection, "close");
        for (const auto& [k, v] : request_.headers) req_.set(k, v);
        req_.body() = request_.body;
        req_.prepare_payload();
        const auto written = [self = shared_from_this()](const boost::system::error_code& e,
                                                         std::size_t) { self->on_written(e); };
        if (ssl_) {
            bhttp::async_write(*ssl_, req_, written);
        } else {
            bhttp::async_write(*plain_, req_, written);
        }
    }

    void on_written(const boost::system::error_code& ec) {
        if (done_) return;
        if (ec) return finish("cannot send the request to " + url_.host + ": " + ec.message());
        parser_.body_limit(max_http_reply);
        parser_.header_limit(16 * 1024);
        const auto read = [self = shared_from_this()](const boost::system::error_code& e,
                                                      std::size_t) { self->on_read(e); };
        if (ssl_) {
            bhttp::async_read(*ssl_, buffer_, parser_, read);
        } else {
            bhttp::async_read(*plain_, buffer_, parser_, read);
        }
    }

    void on_read(const boost::system::error_code& ec) {
        if (done_) return;
        if (ec == bhttp::error::body_limit || ec == bhttp::error::header_limit) {
            return finish("the reply from " + url_.host + " is larger than 64 KiB");
        }
        if (ec) return finish("cannot read the reply from " + url_.host + ": " + ec.message());
        aws::http_response r;
        r.status = parser_.get().result_int();
        r.body = std::move(parser_.get().body());
        finish({}, std::move(r));
    }

    void finish(const std::string& error, aws::http_response r = {}) {
        if (done_) return;
        done_ = true;
        timer_.cancel();
        resolver_.cancel();
        boost::system::error_code ignored;
        if (ssl_) ssl_->next_layer().socket().close(ignored);
        if (plain_) plain_->socket().close(ignored);
        asio::post(ex_, [h = std::move(handler_), error, r = std::move(r)]() mutable {
            h(error, std::move(r));
        });
    }

    asio::any_io_executor ex_;
    aws::http_request request_;
    aws::url_parts url_;
    std::unique_ptr<upstream::tls_client> tls_;
    http_handler handler_;
    tcp::resolver resolver_;
    asio::steady_timer timer_;
    std::optional<beast::tcp_stream> plain_;
    std::optional<asio::ssl::stream<beast::tcp_stream>> ssl_;
    bhttp::request<bhttp::string_body> req_;
    bhttp::response_parser<bhttp::string_body> parser_;
    beast::flat_buffer buffer_;
    bool done_ = false;
};

}  // namespace

void http_fetch(asio::any_io_executor ex, aws::http_request request, const std::string& ca_bundle,
                std::chrono::milliseconds timeout, http_handler handler) {
    aws::url_parts url;
    std::unique_ptr<upstream::tls_client> tls;
    try {
        url = aws::parse_url(request.url, "URL");
        if (!aws::http_allowed(url)) {
            throw aws::aws_error("config", "plain http to " + url.host + " is not allowed");
        }
        if (url.scheme == "https") {
            config::tls_settings s;
            s.enabled = true;
            s.ca_file = ca_bundle;
            tls = std::make_unique<upstream::tls_client>(s);
        }
    } catch (const std::exception& e) {
        asio::post(ex, [h = std::move(handler), what = std::string(e.what())] { h(what, {}); });
        return;
    }
    auto f = std::make_shared<fetch>(ex, std::move(request), std::move(url), std::move(tls),
                                     std::move(handler));
    f->start(timeout);
}

}  // namespace redis_sidecar::app
