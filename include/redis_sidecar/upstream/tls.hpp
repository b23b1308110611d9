#pragma once

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <mutex>
#include <string>

#include <openssl/ssl.h>

#include "redis_sidecar/config/settings.hpp"

namespace redis_sidecar::upstream {

/// The one TLS client context of the process (built once from settings) and the last session
/// the upstream gave us, so that reconnects resume instead of doing a full handshake.
class tls_client {
  public:
    /// Loads the CA file (or the system trust store), the client certificate and key; TLS 1.2 is
    /// the minimum. Throws std::runtime_error naming the file that could not be used.
    explicit tls_client(const config::tls_settings& settings);
    ~tls_client();

    tls_client(const tls_client&) = delete;
    tls_client& operator=(const tls_client&) = delete;

    boost::asio::ssl::context& context() { return context_; }
    const config::tls_settings& settings() const { return settings_; }

    /// Offers the cached session (if any) on a new SSL object before its handshake.
    void offer_session(SSL* ssl);
    /// Keeps the session of a finished handshake for the next connection.
    void remember_session(SSL* ssl);

  private:
    config::tls_settings settings_;
    boost::asio::ssl::context context_;
    std::mutex mutex_;
    SSL_SESSION* session_ = nullptr;
};

/// OpenSSL's last error as text ("certificate verify failed (self-signed certificate)").
std::string openssl_reason(const SSL* ssl, const std::error_code& ec);

}  // namespace redis_sidecar::upstream
