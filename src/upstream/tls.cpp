#include "redis_sidecar/upstream/tls.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <stdexcept>

namespace redis_sidecar::upstream {

namespace ssl = boost::asio::ssl;

tls_client::tls_client(const config::tls_settings& settings)
    : settings_(settings), context_(ssl::context::tls_client) {
    SSL_CTX* ctx = context_.native_handle();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    context_.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
    // Sessions are offered from sessions_ (one per server name); OpenSSL's own store would keep
    // every session ever made, each holding its server's certificate, for two hours: RSS grew
    // ~7 KiB per upstream connection opened (bench/soak.sh --restart-every 20).
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    boost::system::error_code ec;
    if (!settings.ca_file.empty()) {
        context_.load_verify_file(settings.ca_file, ec);
        if (ec) {
            throw std::runtime_error("REDIS_TLS_CA_FILE: cannot load " + settings.ca_file + ": " +
                                     ec.message());
        }
    } else {
        context_.set_default_verify_paths(ec);
        if (ec) throw std::runtime_error("cannot load the system trust store: " + ec.message());
    }
    if (!settings.cert_file.empty()) {
        context_.use_certificate_chain_file(settings.cert_file, ec);
        if (ec) {
            throw std::runtime_error("REDIS_TLS_CERT_FILE: cannot load " + settings.cert_file +
                                     ": " + ec.message());
        }
        context_.use_private_key_file(settings.key_file, ssl::context::pem, ec);
        if (ec) {
            throw std::runtime_error("REDIS_TLS_KEY_FILE: cannot load " + settings.key_file + ": " +
                                     ec.message());
        }
    }
    context_.set_verify_mode(settings.verify ? ssl::verify_peer : ssl::verify_none);
}

tls_client::~tls_client() {
    for (auto& [name, s] : sessions_) SSL_SESSION_free(s);
}

void tls_client::offer_session(SSL* ssl, const std::string& server_name) {
    std::lock_guard lock(mutex_);
    if (const auto it = sessions_.find(server_name); it != sessions_.end()) {
        SSL_set_session(ssl, it->second);
    }
}

void tls_client::remember_session(SSL* ssl, const std::string& server_name) {
    SSL_SESSION* s = SSL_get1_session(ssl);
    if (s == nullptr) return;
    if (SSL_SESSION_is_resumable(s) == 0) {
        SSL_SESSION_free(s);
        return;
    }
    std::lock_guard lock(mutex_);
    auto& slot = sessions_[server_name];
    if (slot != nullptr) SSL_SESSION_free(slot);
    slot = s;
    if (sessions_.size() > max_sessions) {  // bounded: forget every other name
        for (auto it = sessions_.begin(); it != sessions_.end();) {
            if (it->first != server_name) {
                SSL_SESSION_free(it->second);
                it = sessions_.erase(it);
            } else {
                ++it;
            }
        }
    }
}

std::string openssl_reason(const SSL* ssl, const std::error_code& ec) {
    std::string reason = ec.message();
    if (ssl != nullptr) {
        const long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
            reason += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
        }
    }
    return reason;
}

}  // namespace redis_sidecar::upstream
