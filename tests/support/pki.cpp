#include "support/pki.hpp"

#include "support/process.hpp"

#include <cctype>
#include <initializer_list>
#include <stdexcept>

namespace redis_sidecar::testing {
namespace {

using namespace std::chrono_literals;

/// Bound on one `openssl` invocation (they take a few ms).
constexpr auto openssl_timeout = 30s;
constexpr const char* validity_days = "3650";

/// An OpenSSL config of our own, so the system's openssl.cnf (its default extensions) does not
/// matter. Each section is selected with -extensions.
constexpr const char* base_config = R"(
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
)";

void openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    process_result r = run_process(argv, base_env(), openssl_timeout);
    if (!r.ok()) {
        std::string cmd;
        for (const auto& a : argv) cmd += a + " ";
        throw std::runtime_error("test_pki: " + cmd + "failed: " + r.describe());
    }
}

std::string file_stem(const std::string& name) {
    std::string stem = "server-";
    for (char c : name) {
        stem += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
    }
    return stem;
}

}  // namespace

test_pki::test_pki() : dir_("rs-pki") {
    dir_.write_file("openssl.cnf", base_config, 0644);
    ca_ = {dir_.file("ca.crt"), dir_.file("ca.key")};
    make_cert(ca_, "redis-sidecar test CA", dir_.file("openssl.cnf"), "v3_ca", nullptr);
    client_ = issue("client", "redis-sidecar-test-client", dir_.file("openssl.cnf"), "v3_client");
    issue_server_cert(default_server, {"localhost"}, {"127.0.0.1"});
    issue_server_cert(wrong_server, {"wrong.example.com"}, {});
}

test_pki& test_pki::shared() {
    static test_pki pki;
    return pki;
}

cert_files test_pki::server_cert(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = servers_.find(name);
    if (it == servers_.end()) throw std::out_of_range("test_pki: no server certificate " + name);
    return it->second;
}

cert_files test_pki::issue_server_cert(const std::string& name,
                                       const std::vector<std::string>& dns_names,
                                       const std::vector<std::string>& ips) {
    std::lock_guard lock(mutex_);
    if (auto it = servers_.find(name); it != servers_.end()) return it->second;
    const std::string stem = file_stem(name);
    std::string san;
    for (const auto& d : dns_names) san += (san.empty() ? "DNS:" : ", DNS:") + d;
    for (const auto& ip : ips) san += (san.empty() ? "IP:" : ", IP:") + ip;
    std::string section =
        "[v3_server]\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth, clientAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n";
    if (!san.empty()) section += "subjectAltName = " + san + "\n";
    dir_.write_file(stem + ".cnf", std::string(base_config) + section, 0644);
    cert_files files = issue(stem, name, dir_.file(stem + ".cnf"), "v3_server");
    servers_.emplace(name, files);
    return files;
}

cert_files test_pki::issue(const std::string& stem, const std::string& common_name,
                           const std::string& config, const std::string& extensions) {
    cert_files files{dir_.file(stem + ".crt"), dir_.file(stem + ".key")};
    make_cert(files, common_name, config, extensions, &ca_);
    return files;
}

void test_pki::make_cert(const cert_files& files, const std::string& common_name,
                         const std::string& config, const std::string& extensions,
                         const cert_files* issuer) {
    // `req -x509` makes a fresh key and its certificate in one step; with -CA (OpenSSL 3.0+)
    // the certificate is signed by the issuer instead of self-signed.
    std::vector<std::string> args{"req", "-x509", "-new", "-nodes"};
    auto add = [&args](std::initializer_list<std::string> more) { args.insert(args.end(), more); };
    add({"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"});
    add({"-keyout", files.key, "-out", files.cert, "-days", validity_days});
    add({"-subj", "/CN=" + common_name, "-set_serial", std::to_string(serial_++)});
    add({"-config", config, "-extensions", extensions});
    if (issuer != nullptr) add({"-CA", issuer->cert, "-CAkey", issuer->key});
    openssl(args);
}

}  // namespace redis_sidecar::testing
