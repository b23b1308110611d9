#include "redis_sidecar/config/table.hpp"

#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include "redis_sidecar/config/values.hpp"
#include "sources.hpp"

namespace redis_sidecar::config {

namespace detail {

unsigned as_uint(const raw& v, std::uint64_t min, std::uint64_t max, const char* what) {
    if (auto n = parse_uint(v.text, min, max)) return static_cast<unsigned>(*n);
    throw config_error(v.from.name + ": '" + v.text + "' is not " + what + " (" +
                       std::to_string(min) + "-" + std::to_string(max) + ")");
}

std::string join(const std::vector<std::string_view>& words, std::string_view separator) {
    std::string out;
    for (const auto w : words) out += (out.empty() ? "" : std::string(separator)) + std::string(w);
    return out;
}

}  // namespace detail

namespace {

using detail::as_uint;
using detail::raw;

value as_one_of(const raw& v, const std::vector<std::string_view>& allowed) {
    std::string lowered = v.text;
    std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const auto a : allowed) {
        if (lowered == a) return lowered;
    }
    throw config_error(v.from.name + ": '" + v.text + "' is not one of " +
                       detail::join(allowed, ", "));
}

/// Largest database number accepted (Redis' `databases` is an int).
constexpr std::uint64_t max_db = 2'147'483'647;
/// Upper bound of REDIS_MAX_CONNECTIONS (ElastiCache's maxclients is 65,000).
constexpr std::uint64_t max_connections_limit = 65'000;
/// Upper bound of REDIS_SIDECAR_MAX_CLIENTS.
constexpr std::uint64_t max_clients_limit = 1'000'000;
/// sun_path is 108 bytes including the terminating NUL.
constexpr std::size_t max_unix_path = 107;

// The parsers. Each error names where the value came from and, unless it is a secret, the value.
value text(const raw& v) {
    return v.text;
}
value password(const raw& v) {
    return secret(v.text);
}

value boolean(const raw& v) {
    if (auto b = parse_bool(v.text)) return *b;
    throw config_error(v.from.name + ": '" + v.text +
                       "' is not a boolean (true/false, 1/0, yes/no, on/off)");
}

value database(const raw& v) {
    return as_uint(v, 0, max_db, "a database number");
}
value connections(const raw& v) {
    return as_uint(v, 1, max_connections_limit, "a count");
}
value idle_connections(const raw& v) {
    return as_uint(v, 0, max_connections_limit, "a count");
}
value clients(const raw& v) {
    return as_uint(v, 1, max_clients_limit, "a client count");
}

value timeout(const raw& v) {
    if (auto d = parse_duration(v.text); d && d->count() > 0) return *d;
    throw config_error(v.from.name + ": '" + v.text +
                       "' is not a duration (250ms, 5s, 2m or a number of seconds, above 0)");
}

value delay(const raw& v) {
    if (auto d = parse_duration(v.text)) return *d;
    throw config_error(v.from.name + ": '" + v.text +
                       "' is not a duration (0s, 250ms, 5s, 2m or a number of seconds)");
}

value readable_file(const raw& v) {
    if (::access(v.text.c_str(), R_OK) != 0) {
        throw config_error(v.from.name + ": cannot read file " + v.text);
    }
    return v.text;
}

std::string host_port(const raw& v) {
    try {
        auto a = parse_address(v.text);
        if (a.from_url || !a.port) {
            throw address_error("expected host:port, for example 127.0.0.1:6379");
        }
        return join_host_port(a.host, *a.port);
    } catch (const address_error& e) {
        throw config_error(v.from.name + ": '" + v.text + "': " + e.what());
    }
}

value http_addr(const raw& v) {
    return host_port(v);
}

// A listener's host:port; "off" turns it off.
value listen_addr(const raw& v) {
    if (v.text == "off" || v.text == "none" || v.text == "false") {
        return std::optional<std::string>();
    }
    return std::optional<std::string>(host_port(v));
}

// "first-last", normalized.
value port_range(const raw& v) {
    const auto r = parse_port_range(v.text);
    if (!r) {
        throw config_error(v.from.name + ": '" + v.text +
                           "' is not a port range (first-last, for example 7000-7099)");
    }
    return std::to_string(r->first) + "-" + std::to_string(r->second);
}

value unix_path(const raw& v) {
    if (v.text.front() != '/') {
        throw config_error(v.from.name + ": '" + v.text + "' is not an absolute path");
    }
    if (v.text.size() > max_unix_path) {
        throw config_error(v.from.name + ": socket path is longer than " +
                           std::to_string(max_unix_path) + " bytes");
    }
    return std::optional<std::string>(v.text);
}

value host_name(const raw& v) {
    try {
        auto a = parse_address(v.text);
        if (a.from_url || a.port) throw address_error("expected a host name");
        return a.host;
    } catch (const address_error& e) {
        throw config_error(v.from.name + ": '" + v.text + "': " + e.what());
    }
}

// An ElastiCache replication group id or serverless cache name: 1-40 letters, digits and
// hyphens; IAM signs it lower-cased.
value cache_name(const raw& v) {
    std::string name = v.text;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const bool ok = !name.empty() && name.size() <= 40 &&
                    std::all_of(name.begin(), name.end(),
                                [](unsigned char c) { return std::isalnum(c) != 0 || c == '-'; });
    if (!ok) {
        throw config_error(v.from.name + ": '" + v.text +
                           "' is not an ElastiCache cache name (the replication group id or "
                           "serverless cache name: 1-40 letters, digits and hyphens)");
    }
    return name;
}

template <class T>
std::optional<value> part(const std::optional<T>& v) {
    return v ? std::optional<value>(*v) : std::nullopt;
}

}  // namespace

std::span<const setting> table() {
    // Sources of each row, highest first: flag, variables, a URL's part, secrets file, YAML.
    // Laid out by hand: one setting per paragraph reads better than one field per line.
    // clang-format off
    static const std::vector<setting> rows = {
        {.key = "upstream.host", .flag = "--addr",
         .env = {"REDIS_ADDR", "REDIS_URL", "REDIS_HOST", "ELASTICACHE_ENDPOINT"},
         .at = [](settings& s) -> member { return &s.upstream.host; },
         .help = "the upstream: host:port, host, [v6]:port, or a redis:// or rediss:// URL"},
        {.key = "upstream.port", .env = {"REDIS_PORT", "ELASTICACHE_PORT"},
         .at = [](settings& s) -> member { return &s.upstream.port; },
         .help = "the port, with REDIS_HOST, ELASTICACHE_ENDPOINT or upstream.host"},
        {.key = "upstream.tls.enabled", .flag = "--tls-enabled",
         .env = {"REDIS_TLS_ENABLED", "REDIS_SSL"}, .parse = boolean,
         .from_url = [](const parsed_address& a) { return part(a.tls); },
         .at = [](settings& s) -> member { return &s.upstream.tls.enabled; },
         .help = "speak TLS to the upstream (ElastiCache in-transit encryption)"},
        {.key = "upstream.tls.verify", .flag = "--tls-skip-verify",
         .env = {"REDIS_TLS_SKIP_VERIFY"}, .parse = boolean,
         .at = [](settings& s) -> member { return &s.upstream.tls.verify; }, .inverted = true,
         .help = "verify the certificate and host name; the flag and variable skip it (unsafe)"},
        {.key = "upstream.tls.server_name", .flag = "--tls-server-name",
         .env = {"REDIS_TLS_SERVER_NAME"}, .parse = host_name,
         .at = [](settings& s) -> member { return &s.upstream.tls.server_name; },
         .default_from = "upstream.host", .help = "SNI and the name the certificate must carry"},
        {.key = "upstream.tls.ca_file", .flag = "--tls-ca-file", .env = {"REDIS_TLS_CA_FILE"},
         .secret_file = "ca.crt", .parse = readable_file,
         .at = [](settings& s) -> member { return &s.upstream.tls.ca_file; },
         .help = "CA bundle (PEM); none: the system trust store"},
        {.key = "upstream.tls.cert_file", .flag = "--tls-cert-file", .env = {"REDIS_TLS_CERT_FILE"},
         .secret_file = "tls.crt", .parse = readable_file,
         .at = [](settings& s) -> member { return &s.upstream.tls.cert_file; },
         .help = "client certificate (PEM), for tls-auth-clients; needs the key"},
        {.key = "upstream.tls.key_file", .flag = "--tls-key-file", .env = {"REDIS_TLS_KEY_FILE"},
         .secret_file = "tls.key", .parse = readable_file,
         .at = [](settings& s) -> member { return &s.upstream.tls.key_file; },
         .help = "the client certificate's private key (PEM)"},
        {.key = "upstream.username", .flag = "--username", .env = {"REDIS_USERNAME"},
         .secret_file = "username", .parse = text,
         .from_url = [](const parsed_address& a) { return part(a.username); },
         .at = [](settings& s) -> member { return &s.upstream.username; },
         .help = "ACL user (ElastiCache RBAC); none: default"},
        {.key = "upstream.password", .env = {"REDIS_PASSWORD", "ELASTICACHE_AUTH_TOKEN"},
         .secret_file = "password", .parse = password,
         .from_url = [](const parsed_address& a) { return part(a.password); },
         .at = [](settings& s) -> member { return &s.upstream.password; }, .secret = true,
         .help = "the password or AUTH token; prefer a file (_FILE or the secrets directory)"},
        {.key = "upstream.db", .flag = "--db", .env = {"REDIS_DB"}, .parse = database,
         .from_url = [](const parsed_address& a) { return part(a.db); },
         .at = [](settings& s) -> member { return &s.upstream.db; },
         .help = "database selected after AUTH"},
        {.key = "upstream.hosts_file", .env = {"REDIS_SIDECAR_HOSTS_FILE"}, .yaml = false,
         .parse = readable_file, .at = [](settings& s) -> member { return &s.upstream.hosts_file; },
         .help = "tests only: a hosts(5)-style file consulted before DNS on every lookup"},
        {.key = "pool.max_connections", .flag = "--max-connections",
         .env = {"REDIS_MAX_CONNECTIONS"}, .parse = connections,
         .at = [](settings& s) -> member { return &s.pool.max_connections; },
         .help = "upstream connections at most (cluster mode: per node and in total)"},
        {.key = "pool.min_idle_connections", .flag = "--min-idle-connections",
         .env = {"REDIS_MIN_IDLE_CONNECTIONS"}, .parse = idle_connections,
         .at = [](settings& s) -> member { return &s.pool.min_idle_connections; },
         .help = "upstream connections kept idle and ready"},
        {.key = "pool.connection_timeout", .flag = "--connection-timeout",
         .env = {"REDIS_CONNECTION_TIMEOUT"}, .parse = timeout,
         .at = [](settings& s) -> member { return &s.pool.connection_timeout; },
         .help = "TCP + TLS + AUTH + PING of one connection; also how long a client waits for "
                 "one, and how long sent bytes may stay unacknowledged (TCP_USER_TIMEOUT)"},
        {.key = "pool.socket_timeout", .flag = "--socket-timeout", .env = {"REDIS_SOCKET_TIMEOUT"},
         .parse = timeout, .at = [](settings& s) -> member { return &s.pool.socket_timeout; },
         .help = "the sidecar's own commands (health PINGs, RESET on recycling), every "
                 "write to a client or the upstream, and a reply that stops mid-way"},
        {.key = "pool.socket_keepalive", .flag = "--socket-keepalive",
         .env = {"REDIS_SOCKET_KEEPALIVE"}, .parse = boolean,
         .at = [](settings& s) -> member { return &s.pool.socket_keepalive; },
         .help = "TCP keepalive on upstream sockets"},
        {.key = "pool.health_check_interval", .flag = "--health-check-interval",
         .env = {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL"}, .parse = timeout,
         .at = [](settings& s) -> member { return &s.pool.health_check_interval; },
         .help = "PING idle upstream connections this often"},
        {.key = "pool.idle_timeout", .flag = "--idle-timeout", .env = {"REDIS_IDLE_TIMEOUT"},
         .parse = delay, .at = [](settings& s) -> member { return &s.pool.idle_timeout; },
         .help = "idle upstream connections above the minimum close after this long unused "
                 "(0: never)"},
        {.key = "listen.tcp", .flag = "--listen", .env = {"REDIS_SIDECAR_LISTEN"},
         .parse = listen_addr, .at = [](settings& s) -> member { return &s.listen.tcp; },
         .help = "local TCP listener host:port, or off"},
        {.key = "listen.unix", .flag = "--socket", .env = {"REDIS_SIDECAR_SOCKET"},
         .parse = unix_path, .at = [](settings& s) -> member { return &s.listen.unix_path; },
         .help = "local unix socket path, mode 0660; a stale one is replaced"},
        {.key = "listen.max_clients", .flag = "--max-clients", .env = {"REDIS_SIDECAR_MAX_CLIENTS"},
         .parse = clients, .at = [](settings& s) -> member { return &s.listen.max_clients; },
         .help = "local clients at once"},
        {.key = "listen.client_password", .env = {"REDIS_SIDECAR_CLIENT_PASSWORD"},
         .secret_file = "client-password", .yaml = false, .parse = password,
         .at = [](settings& s) -> member { return &s.listen.client_password; }, .secret = true,
         .help = "local clients must AUTH with it; none: any AUTH is accepted"},
        {.key = "listen.client_auth", .flag = "--client-auth", .env = {"REDIS_SIDECAR_CLIENT_AUTH"},
         .choices = {"local", "passthrough"},
         .at = [](settings& s) -> member { return &s.listen.client_auth; },
         .help = "who checks a client's AUTH: the sidecar (local) or the upstream (passthrough)"},
        {.key = "listen.multiplex", .flag = "--multiplex", .env = {"REDIS_SIDECAR_MULTIPLEX"},
         .parse = boolean, .at = [](settings& s) -> member { return &s.listen.multiplex; },
         .help = "clients share a few upstream connections until a command needs its own "
                 "(transactions, pub/sub, blocking commands, SELECT, ...)"},
        {.key = "listen.shared_connections", .flag = "--shared-connections",
         .env = {"REDIS_SIDECAR_SHARED_CONNECTIONS"}, .parse = connections,
         .at = [](settings& s) -> member { return &s.listen.shared_connections; },
         .help = "multiplexing: upstream connections shared by clients, per protocol (RESP2, "
                 "RESP3)"},
        {.key = "http.addr", .flag = "--http-addr", .env = {"REDIS_SIDECAR_HTTP_ADDR"},
         .parse = http_addr, .at = [](settings& s) -> member { return &s.http.addr; },
         .help = "probes and metrics host:port"},
        {.key = "cluster.mode", .flag = "--cluster", .env = {"REDIS_SIDECAR_CLUSTER"},
         .choices = {"auto", "on", "off"},
         .at = [](settings& s) -> member { return &s.cluster.mode; },
         .help = "cluster mode, one local port per node: when the upstream is a cluster (auto), "
                 "always (on) or never (off)"},
        {.key = "cluster.ports", .flag = "--cluster-ports", .env = {"REDIS_SIDECAR_CLUSTER_PORTS"},
         .parse = port_range, .at = [](settings& s) -> member { return &s.cluster.ports; },
         .help = "cluster mode: the local ports nodes get (first-last), on the listener's address"},
        {.key = "iam.enabled", .flag = "--iam-auth", .env = {"REDIS_IAM_AUTH"}, .parse = boolean,
         .at = [](settings& s) -> member { return &s.iam.enabled; },
         .help = "ElastiCache IAM: AUTH as REDIS_USERNAME with a SigV4 token from the pod's AWS "
                 "credentials (IRSA, Pod Identity, AWS_ACCESS_KEY_ID), no password"},
        {.key = "iam.cache_name", .flag = "--iam-cache-name", .env = {"REDIS_IAM_CACHE_NAME"},
         .parse = cache_name, .at = [](settings& s) -> member { return &s.iam.cache_name; },
         .help = "IAM: the replication group id or serverless cache name; default: read from "
                 "an ElastiCache endpoint name"},
        {.key = "iam.serverless", .flag = "--iam-serverless", .env = {"REDIS_IAM_SERVERLESS"},
         .parse = boolean, .at = [](settings& s) -> member { return &s.iam.serverless; },
         .help = "IAM: the cache is ElastiCache Serverless; default: read from the endpoint name"},
        {.key = "iam.region", .flag = "--aws-region", .env = {"AWS_REGION", "AWS_DEFAULT_REGION"},
         .parse = text, .at = [](settings& s) -> member { return &s.iam.region; },
         .help = "IAM: the region tokens are signed for; default: read from a Serverless "
                 "endpoint name"},
        {.key = "lifecycle.readiness", .flag = "--readiness", .env = {"REDIS_SIDECAR_READINESS"},
         .choices = {"upstream", "primary", "local"},
         .at = [](settings& s) -> member { return &s.lifecycle.readiness; },
         .help = "what /readyz needs: a healthy upstream connection, one to a primary, or none"},
        {.key = "lifecycle.min_drain", .flag = "--min-drain", .env = {"REDIS_SIDECAR_MIN_DRAIN"},
         .parse = delay, .at = [](settings& s) -> member { return &s.lifecycle.min_drain; },
         .help = "after SIGTERM, keep accepting clients this long"},
        {.key = "lifecycle.max_drain", .flag = "--max-drain", .env = {"REDIS_SIDECAR_MAX_DRAIN"},
         .parse = delay, .at = [](settings& s) -> member { return &s.lifecycle.max_drain; },
         .help = "then wait at most this long for clients to leave"},
        {.key = "log.level", .flag = "--log-level", .env = {"REDIS_SIDECAR_LOG_LEVEL"},
         .choices = {"debug", "info", "warn", "error"},
         .at = [](settings& s) -> member { return &s.log.level; },
         .help = "least severe level logged"},
        {.key = "log.format", .flag = "--log-format", .env = {"REDIS_SIDECAR_LOG_FORMAT"},
         .choices = {"json", "text"}, .at = [](settings& s) -> member { return &s.log.format; },
         .help = "log lines: one JSON object each, or text"},
        {.key = "config_file", .flag = "--config", .env = {"REDIS_SIDECAR_CONFIG"}, .yaml = false,
         .help = "YAML file, shaped like config's JSON without sources"},
        {.key = "secrets_dir", .flag = "--secrets-dir", .env = {"REDIS_SIDECAR_SECRETS_DIR"},
         .yaml = false,
         .help = "a mounted Secret: one file per setting (password, username, tls.key, ...)"},
    };
    // clang-format on
    return rows;
}

const setting& setting_for(std::string_view key) {
    for (const auto& row : table()) {
        if (row.key == key) return row;
    }
    throw std::out_of_range("no setting " + std::string(key));
}

namespace detail {

bool takes_bare_flag(const setting& row) {
    return row.parse == boolean;
}

bool names_a_file(const setting& row) {
    return row.parse == readable_file;
}

value parse(const setting& row, const raw& v) {
    return row.choices.empty() ? row.parse(v) : as_one_of(v, row.choices);
}

}  // namespace detail

}  // namespace redis_sidecar::config
