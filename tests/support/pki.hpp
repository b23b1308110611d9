#pragma once

#include "support/temp_dir.hpp"

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace redis_sidecar::testing {

/// A certificate and its private key (PEM files).
struct cert_files {
    std::string cert;
    std::string key;
};

/// A throw-away PKI made with the `openssl` CLI in its own temp dir: EC P-256 keys (fast), valid
/// for ten years from now. Construction takes about 20 ms; use shared() unless a test needs a
/// second, unrelated CA (for example to present a certificate the first CA does not trust).
///
/// Made by the constructor:
///   - `ca.crt` / `ca.key`: the CA (CN "redis-sidecar test CA");
///   - server certificate "localhost": SAN DNS:localhost, IP:127.0.0.1 (serverAuth+clientAuth,
///     since Redis uses its server certificate as client certificate for replication);
///   - server certificate "wrong.example.com": SAN DNS:wrong.example.com only, to test
///     hostname-verification failure against 127.0.0.1/localhost;
///   - a client certificate (CN "redis-sidecar-test-client", clientAuth) for
///     `tls-auth-clients yes`.
class test_pki {
  public:
    /// The name of the default server certificate (SAN DNS:localhost, IP:127.0.0.1).
    static constexpr const char* default_server = "localhost";
    /// The name of the server certificate valid only for wrong.example.com.
    static constexpr const char* wrong_server = "wrong.example.com";

    /// Generates everything listed above. Throws std::runtime_error (with openssl's output).
    test_pki();

    /// One PKI per test process, made on first use (thread-safe).
    static test_pki& shared();

    test_pki(const test_pki&) = delete;
    test_pki& operator=(const test_pki&) = delete;

    /// The directory holding all files.
    const std::string& dir() const { return dir_.path(); }
    /// The CA certificate: what a client (the sidecar, redis-cli) trusts.
    const std::string& ca_cert() const { return ca_.cert; }
    /// The CA private key.
    const std::string& ca_key() const { return ca_.key; }
    /// The client certificate and key.
    const cert_files& client_cert() const { return client_; }

    /// The server certificate issued under `name`. Throws std::out_of_range if there is none.
    cert_files server_cert(const std::string& name = default_server) const;

    /// Issues (once; later calls return the same files) a server certificate named `name` with
    /// the given subjectAltName entries, signed by the CA. Thread-safe.
    cert_files issue_server_cert(const std::string& name, const std::vector<std::string>& dns_names,
                                 const std::vector<std::string>& ips);

  private:
    cert_files issue(const std::string& stem, const std::string& common_name,
                     const std::string& config, const std::string& extensions);
    void make_cert(const cert_files& files, const std::string& common_name,
                   const std::string& config, const std::string& extensions,
                   const cert_files* issuer);

    temp_dir dir_;
    cert_files ca_;
    cert_files client_;
    mutable std::mutex mutex_;
    std::map<std::string, cert_files> servers_;
    unsigned serial_ = 1;
};

}  // namespace redis_sidecar::testing
