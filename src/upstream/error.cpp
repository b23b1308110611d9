#include "redis_sidecar/upstream/error.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

#include <string>

namespace redis_sidecar::upstream {

namespace {

class category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "redis_sidecar.upstream"; }
    std::string message(int v) const override {
        switch (static_cast<error>(v)) {
            case error::dns_failure:
                return "DNS lookup failed";
            case error::connection_refused:
                return "connection refused";
            case error::timeout:
                return "timed out";
            case error::tls_certificate_verify_failed:
                return "TLS certificate verification failed";
            case error::tls_handshake_failed:
                return "TLS handshake failed";
            case error::wrongpass:
                return "authentication failed (WRONGPASS)";
            case error::noauth:
                return "authentication required (NOAUTH)";
            case error::noperm:
                return "permission denied (NOPERM)";
            case error::loading:
                return "server is loading its dataset (LOADING)";
            case error::readonly:
                return "server is a read-only replica (READONLY)";
            case error::max_clients:
                return "server has reached maxclients (max number of clients reached)";
            case error::protocol_error:
                return "protocol error";
            case error::io_error:
                return "connection broken";
            case error::pool_timeout:
                return "no upstream connection available in time";
            case error::shutting_down:
                return "shutting down";
            case error::server_error:
                return "server error";
        }
        return "unknown upstream error";
    }
};

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

const std::error_category& category() {
    static const category_impl instance;
    return instance;
}

std::string_view label(error e) {
    switch (e) {
        case error::dns_failure:
            return "dns_failure";
        case error::connection_refused:
            return "connection_refused";
        case error::timeout:
            return "timeout";
        case error::tls_certificate_verify_failed:
            return "tls_certificate_verify_failed";
        case error::tls_handshake_failed:
            return "tls_handshake_failed";
        case error::wrongpass:
            return "wrongpass";
        case error::noauth:
            return "noauth";
        case error::noperm:
            return "noperm";
        case error::loading:
            return "loading";
        case error::readonly:
            return "readonly";
        case error::max_clients:
            return "max_clients";
        case error::protocol_error:
            return "protocol_error";
        case error::io_error:
            return "io_error";
        case error::pool_timeout:
            return "pool_timeout";
        case error::shutting_down:
            return "shutting_down";
        case error::server_error:
            return "server_error";
    }
    return "unknown";
}

template <class E>
bool is(const std::error_code& ec, E boost_enum) {
    return ec == std::error_code(boost::system::error_code(boost_enum));
}

error classify(const std::error_code& ec) {
    namespace aerr = boost::asio::error;
    if (ec.category() == category()) return static_cast<error>(ec.value());
    if (is(ec, aerr::host_not_found) || is(ec, aerr::host_not_found_try_again) ||
        is(ec, aerr::no_data) || is(ec, aerr::no_recovery)) {
        return error::dns_failure;
    }
    if (ec == std::errc::connection_refused) return error::connection_refused;
    if (ec == std::errc::timed_out) return error::timeout;
    const std::error_category& ssl_category = aerr::get_ssl_category();
    if (ec.category() == ssl_category) {
        const auto reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
        if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) return error::tls_certificate_verify_failed;
        return error::tls_handshake_failed;
    }
    const std::error_category& stream_category = boost::asio::ssl::error::get_stream_category();
    if (ec.category() == stream_category) return error::tls_handshake_failed;
    return error::io_error;
}

error classify_reply(std::string_view e) {
    if (starts_with(e, "WRONGPASS") || starts_with(e, "ERR invalid password") ||
        starts_with(e, "ERR invalid username-password")) {
        return error::wrongpass;
    }
    if (starts_with(e, "NOAUTH")) return error::noauth;
    if (starts_with(e, "NOPERM")) return error::noperm;
    if (starts_with(e, "LOADING")) return error::loading;
    if (starts_with(e, "READONLY")) return error::readonly;
    // Also "ERR max number of clients + cluster connections reached" (cluster mode).
    if (starts_with(e, "ERR max number of clients")) return error::max_clients;
    return error::server_error;
}

}  // namespace redis_sidecar::upstream
