#pragma once

#include <boost/asio/ssl/context.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <openssl/ssl.h>

#include "redis_sidecar/config/settings.hpp"

namespace redis_sidecar::upstream {

/// The one TLS client context of the process (built once from settings) and, per server name,
/// the last session that server gave us, so that reconnects resume instead of doing a full
/// handshake (in cluster mode every node has its own name and its own sessions).
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

    /// Server names whose sessions are kept, at most (beyond it, all but the newest are dropped).
    static constexpr std::size_t max_sessions = 1024;

    /// Offers the session cached for `server_name` (if any) on a new SSL object before its
    /// handshake.
    void offer_session(SSL* ssl, const std::string& server_name);
    /// Keeps the session of a finished handshake with `server_name` for its next connection.
    void remember_session(SSL* ssl, const std::string& server_name);

  private:
    config::tls_settings settings_;
    boost::asio::ssl::context context_;
    std::mutex mutex_;
    std::map<std::string, SSL_SESSION*> sessions_;
};

/// OpenSSL's last error as text ("certificate verify failed (self-signed certificate)").
std::string openssl_reason(const SSL* ssl, const std::error_code& ec);

}  // namespace redis_sidecar::upstream
