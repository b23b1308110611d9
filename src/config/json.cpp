#include <nlohmann/json.hpp>

#include "redis_sidecar/config/resolver.hpp"
#include "redis_sidecar/config/values.hpp"

namespace redis_sidecar::config {

namespace {

nlohmann::json optional_string(const std::string& s) {
    return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

template <class T>
nlohmann::json optional_value(const std::optional<T>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json to_json(const settings& s) {
    const auto& up = s.upstream;
    nlohmann::json j;
    j["upstream"] = {
        {"host", up.host},
        {"port", up.port},
        {"tls",
         {{"enabled", up.tls.enabled},
          {"verify", up.tls.verify},
          {"server_name", up.tls.server_name},
          {"ca_file", optional_string(up.tls.ca_file)},
          {"cert_file", optional_string(up.tls.cert_file)},
          {"key_file", optional_string(up.tls.key_file)}}},
        {"username", optional_value(up.username)},
        {"password", up.password ? nlohmann::json(secret::redacted) : nlohmann::json(nullptr)},
        {"db", up.db},
        {"hosts_file", optional_string(up.hosts_file)},
    };
    j["pool"] = {
        {"max_connections", s.pool.max_connections},
        {"min_idle_connections", s.pool.min_idle_connections},
        {"connection_timeout", format_duration(s.pool.connection_timeout)},
        {"socket_timeout", format_duration(s.pool.socket_timeout)},
        {"socket_keepalive", s.pool.socket_keepalive},
        {"health_check_interval", format_duration(s.pool.health_check_interval)},
    };
    j["listen"] = {
        {"tcp", optional_value(s.listen.tcp)},
        {"unix", optional_value(s.listen.unix_path)},
        {"max_clients", s.listen.max_clients},
        {"client_password",
         s.listen.client_password ? nlohmann::json(secret::redacted) : nlohmann::json(nullptr)},
        {"client_auth", s.listen.client_auth},
    };
    j["lifecycle"] = {
        {"readiness", s.lifecycle.readiness},
        {"min_drain", format_duration(s.lifecycle.min_drain)},
        {"max_drain", format_duration(s.lifecycle.max_drain)},
    };
    j["http"] = {{"addr", s.http.addr}};
    j["log"] = {{"level", s.log.level}, {"format", s.log.format}};
    j["sources"] = s.sources;
    return j;
}

}  // namespace redis_sidecar::config
