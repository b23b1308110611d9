#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "redis_sidecar/config/secret.hpp"

namespace redis_sidecar::config {

/// TLS towards the upstream.
struct tls_settings {
    bool enabled = false;  ///< speak TLS to the upstream (ElastiCache in-transit encryption)
    bool verify = true;  ///< verify the chain and the host name; off only by REDIS_TLS_SKIP_VERIFY
    std::string server_name;  ///< SNI and name to verify; empty means the upstream host
    std::string ca_file;      ///< PEM bundle; empty means the system trust store
    std::string cert_file;    ///< client certificate (PEM) for tls-auth-clients; empty for none
    std::string key_file;     ///< its private key (PEM); set exactly when cert_file is
};

/// The Redis / Valkey / ElastiCache node the sidecar connects to.
struct upstream_settings {
    std::string host;                     ///< DNS name (lower case) or IP literal, never empty
    std::uint16_t port = 6379;            ///< TCP port
    tls_settings tls;                     ///< TLS options
    std::optional<std::string> username;  ///< ACL user; absent means "default"
    std::optional<secret> password;       ///< AUTH password / ElastiCache auth token
    unsigned db = 0;                      ///< logical database selected after AUTH
    /// A hosts(5)-style file consulted before DNS on every lookup (REDIS_SIDECAR_HOSTS_FILE).
    /// For tests that move a name to another address; empty in production.
    std::string hosts_file;
};

/// The warm upstream connection pool.
struct pool_settings {
    unsigned max_connections = 128;                      ///< upstream connections, at most
    unsigned min_idle_connections = 2;                   ///< kept idle and ready
    std::chrono::milliseconds connection_timeout{5000};  ///< DNS + TCP + TLS + AUTH, per try
    std::chrono::milliseconds socket_timeout{5000};      ///< sidecar's own commands (PING, AUTH)
    bool socket_keepalive = true;                        ///< TCP keepalive on upstream sockets
    std::chrono::milliseconds health_check_interval{10000};  ///< PING idle connections this often
    /// Idle connections above min_idle_connections close after this long unused (0: never),
    /// checked at each health round.
    std::chrono::milliseconds idle_timeout{60000};
};

/// Where local clients connect.
struct listen_settings {
    std::optional<std::string> tcp = "127.0.0.1:6379";  ///< host:port; absent when turned off
    std::optional<std::string> unix_path;               ///< unix socket path; absent for none
    unsigned max_clients = 10000;                       ///< local clients at once (maxclients)
    /// REDIS_SIDECAR_CLIENT_PASSWORD: local clients must AUTH with it; absent: AUTH optional.
    std::optional<secret> client_password;
    /// REDIS_SIDECAR_CLIENT_AUTH: "local" (a client's AUTH is answered by the sidecar; commands
    /// run as the sidecar's upstream user) or "passthrough" (a client's AUTH / HELLO AUTH goes to
    /// the upstream on the client's own connection, which is reset and re-authenticated as the
    /// sidecar's user before anyone else uses it). Passthrough excludes client_password.
    std::string client_auth = "local";
    /// REDIS_SIDECAR_MULTIPLEX: clients share a few upstream connections until a command
    /// needs one of its own (docs/architecture.md "Multiplexing").
    bool multiplex = false;
    /// REDIS_SIDECAR_SHARED_CONNECTIONS: the shared upstream connections (multiplexing).
    unsigned shared_connections = 2;
};

/// Cluster mode (ElastiCache cluster mode enabled, Serverless): one local port per node.
struct cluster_settings {
    /// REDIS_SIDECAR_CLUSTER: "auto" (cluster mode when the upstream is a cluster), "on", "off".
    std::string mode = "auto";
    /// REDIS_SIDECAR_CLUSTER_PORTS: the local ports nodes get, "first-last", on the TCP
    /// listener's address.
    std::string ports = "7000-7099";
};

/// ElastiCache IAM authentication: AUTH with a SigV4 token signed with the pod's AWS credentials
/// instead of a password.
struct iam_settings {
    bool enabled = false;     ///< REDIS_IAM_AUTH
    std::string cache_name;   ///< replication group id or serverless cache name (lower case)
    bool serverless = false;  ///< the cache is ElastiCache Serverless (signed ResourceType)
    std::string region;       ///< AWS_REGION / AWS_DEFAULT_REGION: the token's signing region
};

/// Probes and shutdown.
struct lifecycle_settings {
    /// REDIS_SIDECAR_READINESS: "upstream" (a healthy pooled connection), "primary" (and the
    /// upstream is a master) or "local" (the sidecar's own state only).
    std::string readiness = "upstream";
    /// After SIGTERM, keep accepting local clients this long (apps still starting requests).
    std::chrono::milliseconds min_drain{0};
    /// Then wait at most this long for clients to leave before closing them.
    std::chrono::milliseconds max_drain{30000};
};

/// The admin HTTP server (probes, metrics).
struct http_settings {
    std::string addr = "0.0.0.0:9090";  ///< host:port
};

/// Logging.
struct log_settings {
    std::string level = "info";   ///< debug, info, warn or error
    std::string format = "json";  ///< json or text
};

/// The validated, normalized configuration, with the source of every value. Each member is
/// filled, printed and documented through its row of config::table() (table.hpp).
struct settings {
    upstream_settings upstream;
    pool_settings pool;
    listen_settings listen;
    http_settings http;
    log_settings log;
    lifecycle_settings lifecycle;
    cluster_settings cluster;
    iam_settings iam;

    /// Dotted key → where its value came from: "flag:--name", "env:NAME", "file:PATH",
    /// "yaml:PATH", "url:NAME", "derived:upstream.host" (read from an ElastiCache endpoint name)
    /// or "default".
    std::map<std::string, std::string> sources;
};

}  // namespace redis_sidecar::config
