#include "redis_sidecar/config/resolver.hpp"

#include <unistd.h>

#include <algorithm>
#include <functional>

#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/config/values.hpp"
#include "sources.hpp"

extern char** environ;

namespace redis_sidecar::config {

namespace {

using detail::origin;
using detail::raw;
using detail::source_reader;
using namespace std::chrono_literals;

/// ElastiCache refuses AUTH tokens shorter than this.
constexpr std::size_t elasticache_min_token_length = 16;
/// Largest database number accepted (Redis' `databases` is an int).
constexpr std::uint64_t max_db = 2'147'483'647;
/// Upper bound of REDIS_MAX_CONNECTIONS (ElastiCache's maxclients is 65,000).
constexpr std::uint64_t max_connections_limit = 65'000;
/// sun_path is 108 bytes including the terminating NUL.
constexpr std::size_t max_unix_path = 107;

std::string describe(const std::string& v) { return "'" + v + "'"; }
std::string describe(bool v) { return v ? "true" : "false"; }
std::string describe(unsigned v) { return std::to_string(v); }
std::string describe(std::chrono::milliseconds v) { return format_duration(v); }
std::string describe(const std::optional<std::string>& v) { return v ? describe(*v) : "off"; }

template <class T>
struct candidate {
    T value;
    origin from;
};

/// The values one setting was given, highest precedence first. pick() takes the first, records
/// its source and warns about each lower one that disagrees (never printing a secret).
template <class T>
class field {
public:
    explicit field(std::string key) : key_(std::move(key)) {}

    void add(T value, origin from) { candidates_.push_back({std::move(value), std::move(from)}); }
    const std::vector<candidate<T>>& candidates() const { return candidates_; }
    bool given() const { return !candidates_.empty(); }

    T pick(T fallback, resolution& r) const {
        if (candidates_.empty()) {
            r.values.sources[key_] = "default";
            return fallback;
        }
        const auto& winner = candidates_.front();
        for (const auto& other : candidates_) {
            if (other.value == winner.value || other.from.source == winner.from.source) continue;
            if constexpr (std::is_same_v<T, secret>) {
                r.warnings.push_back(key_ + ": " + winner.from.name +
                                     " overrides a different value from " + other.from.name);
            } else {
                r.warnings.push_back(key_ + ": " + winner.from.name + " (" +
                                     describe(winner.value) + ") overrides " + other.from.name +
                                     " (" + describe(other.value) + ")");
            }
        }
        r.values.sources[key_] = winner.from.source;
        return winner.value;
    }

private:
    std::string key_;
    std::vector<candidate<T>> candidates_;
};

// Typed readers of a raw value; each error names where the value came from.
bool as_bool(const raw& v) {
    if (auto b = parse_bool(v.text)) return *b;
    throw config_error(v.from.name + ": '" + v.text +
                       "' is not a boolean (true/false, 1/0, yes/no, on/off)");
}

unsigned as_uint(const raw& v, std::uint64_t min, std::uint64_t max, const char* what) {
    if (auto n = parse_uint(v.text, min, max)) return static_cast<unsigned>(*n);
    throw config_error(v.from.name + ": '" + v.text + "' is not " + what + " (" +
                       std::to_string(min) + "-" + std::to_string(max) + ")");
}

std::chrono::milliseconds as_duration(const raw& v) {
    if (auto d = parse_duration(v.text); d && d->count() > 0) return *d;
    throw config_error(v.from.name + ": '" + v.text +
                       "' is not a duration (250ms, 5s, 2m or a number of seconds, above 0)");
}

std::chrono::milliseconds as_duration_or_zero(const raw& v) {
    if (auto d = parse_duration(v.text)) return *d;
    throw config_error(v.from.name + ": '" + v.text +
                       "' is not a duration (0s, 250ms, 5s, 2m or a number of seconds)");
}

std::string as_readable_file(const raw& v) {
    if (::access(v.text.c_str(), R_OK) != 0) {
        throw config_error(v.from.name + ": cannot read file " + v.text);
    }
    return v.text;
}

// host:port for a listener; "off" turns it off.
std::optional<std::string> as_listen_addr(const raw& v, bool allow_off) {
    if (allow_off && (v.text == "off" || v.text == "none" || v.text == "false")) {
        return std::nullopt;
    }
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

std::string as_one_of(const raw& v, std::initializer_list<const char*> allowed) {
    std::string lowered = v.text;
    std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string list;
    for (const auto* a : allowed) {
        if (lowered == a) return lowered;
        list += list.empty() ? a : std::string(", ") + a;
    }
    throw config_error(v.from.name + ": '" + v.text + "' is not one of " + list);
}

template <class T, class Parse>
void add(field<T>& f, const std::optional<raw>& v, Parse parse) {
    if (v) f.add(parse(*v), v->from);
}

/// One place the upstream address was given, with what a URL there carried.
struct address_candidate {
    parsed_address parsed;
    origin host_from;
    std::optional<origin> port_from;  ///< when the port came from its own variable
};

address_candidate parse_address_from(const raw& v) {
    try {
        address_candidate c{parse_address(v.text), v.from, std::nullopt};
        if (c.parsed.from_url) {
            // A URL's parts are reported as taken apart from it.
            c.host_from.source = "url:" + v.from.source.substr(v.from.source.find(':') + 1);
        }
        return c;
    } catch (const address_error& e) {
        // The reason never contains the value's user info; the value itself may hold a password.
        const bool may_hold_secret = v.text.find('@') != std::string::npos;
        throw config_error(v.from.name + ": " +
                           (may_hold_secret ? std::string() : "'" + v.text + "': ") + e.what());
    }
}

// Every place an address can come from, highest precedence first.
std::vector<address_candidate> collect_addresses(const source_reader& src, resolution& r) {
    std::vector<address_candidate> out;
    for (const auto& v : {src.flag("--addr"), src.env("REDIS_ADDR"), src.env("REDIS_URL")}) {
        if (!v) continue;
        out.push_back(parse_address_from(*v));
        if (out.back().parsed.from_url && v->from.name.rfind("REDIS_URL", 0) != 0) {
            r.warnings.push_back(v->from.name +
                                 " holds a URL; taking it apart (scheme → TLS, credentials → "
                                 "username/password, path → db). It should be host:port.");
        }
    }
    // Host + port pairs: the port may come from its own variable.
    const std::pair<const char*, const char*> pairs[] = {{"REDIS_HOST", "REDIS_PORT"},
                                                         {"ELASTICACHE_ENDPOINT", "ELASTICACHE_PORT"}};
    for (const auto& [host_var, port_var] : pairs) {
        auto host = src.env(host_var);
        auto port = src.env(port_var);
        if (!host) {
            if (port) r.warnings.push_back(port->from.name + " is set without " + host_var +
                                           "; ignoring it");
            continue;
        }
        auto c = parse_address_from(*host);
        if (port) {
            auto p = parse_port(port->text);
            if (!p) {
                throw config_error(port->from.name + ": '" + port->text + "' is not in 1-65535");
            }
            if (c.parsed.port && *c.parsed.port != *p) {
                r.warnings.push_back(port->from.name + " (" + std::to_string(*p) +
                                     ") overrides the port in " + host->from.name + " (" +
                                     std::to_string(*c.parsed.port) + ")");
            }
            c.parsed.port = *p;
            c.port_from = port->from;
        }
        out.push_back(std::move(c));
    }
    if (auto host = src.yaml("upstream.host")) {
        auto c = parse_address_from(*host);
        if (c.parsed.from_url || c.parsed.port) {
            throw config_error(host->from.name + ": expected a host name only (port goes in "
                                                 "upstream.port)");
        }
        if (auto port = src.yaml("upstream.port")) {
            c.parsed.port = static_cast<std::uint16_t>(as_uint(*port, 1, 65535, "a port"));
            c.port_from = port->from;
        }
        out.push_back(std::move(c));
    }
    for (const auto& c : out) {
        if (c.parsed.had_query) {
            r.warnings.push_back(c.host_from.name + ": the URL's ?query is ignored");
        }
        if (c.parsed.user_without_password) {
            r.warnings.push_back(c.host_from.name +
                                 " has a user name and no password; to give only a password, "
                                 "write rediss://:PASSWORD@host");
        }
    }
    return out;
}

std::uint16_t effective_port(const address_candidate& c) { return c.parsed.port.value_or(6379); }

void resolve_address(const std::vector<address_candidate>& addresses, resolution& r) {
    if (addresses.empty()) {
        throw config_error(
            "no upstream address: set REDIS_ADDR (host:port), REDIS_URL (redis:// or rediss://), "
            "REDIS_HOST + REDIS_PORT, or ELASTICACHE_ENDPOINT + ELASTICACHE_PORT");
    }
    const auto& winner = addresses.front();
    for (const auto& other : addresses) {
        if (other.parsed.host != winner.parsed.host ||
            effective_port(other) != effective_port(winner)) {
            r.warnings.push_back(
                "upstream address: " + winner.host_from.name + " (" +
                join_host_port(winner.parsed.host, effective_port(winner)) + ") overrides " +
                other.host_from.name + " (" +
                join_host_port(other.parsed.host, effective_port(other)) +
                "); precedence: --addr, REDIS_ADDR, REDIS_URL, REDIS_HOST, ELASTICACHE_ENDPOINT, "
                "YAML");
        }
    }
    r.values.upstream.host = winner.parsed.host;
    r.values.upstream.port = effective_port(winner);
    r.values.sources["upstream.host"] = winner.host_from.source;
    r.values.sources["upstream.port"] = winner.port_from ? winner.port_from->source
                                        : winner.parsed.port ? winner.host_from.source
                                                             : "default";
}

void resolve_upstream(const source_reader& src, resolution& r) {
    auto& up = r.values.upstream;
    const auto addresses = collect_addresses(src, r);
    resolve_address(addresses, r);

    // What URLs carried ranks just below the explicit variables of the environment.
    field<bool> tls("upstream.tls.enabled");
    add(tls, src.flag("--tls-enabled"), as_bool);
    add(tls, src.env("REDIS_TLS_ENABLED"), as_bool);
    add(tls, src.env("REDIS_SSL"), as_bool);
    field<std::string> username("upstream.username");
    add(username, src.flag("--username"), [](const raw& v) { return v.text; });
    add(username, src.env("REDIS_USERNAME"), [](const raw& v) { return v.text; });
    field<secret> password("upstream.password");
    add(password, src.env("REDIS_PASSWORD"), [](const raw& v) { return secret(v.text); });
    add(password, src.env("ELASTICACHE_AUTH_TOKEN"), [](const raw& v) { return secret(v.text); });
    field<unsigned> db("upstream.db");
    add(db, src.flag("--db"), [](const raw& v) { return as_uint(v, 0, max_db, "a database number"); });
    add(db, src.env("REDIS_DB"), [](const raw& v) { return as_uint(v, 0, max_db, "a database number"); });

    for (const auto& a : addresses) {
        if (!a.parsed.from_url) continue;
        const origin from = a.host_from;
        if (a.parsed.tls) tls.add(*a.parsed.tls, from);
        if (a.parsed.username) username.add(*a.parsed.username, from);
        if (a.parsed.password) password.add(*a.parsed.password, from);
        if (a.parsed.db) db.add(*a.parsed.db, from);
    }
    std::vector<std::string> secret_warnings;
    add(username, src.secret_file("username", secret_warnings), [](const raw& v) { return v.text; });
    add(password, src.secret_file("password", secret_warnings), [](const raw& v) { return secret(v.text); });
    add(tls, src.yaml("upstream.tls.enabled"), as_bool);
    add(username, src.yaml("upstream.username"), [](const raw& v) { return v.text; });
    add(password, src.yaml("upstream.password"), [](const raw& v) { return secret(v.text); });
    add(db, src.yaml("upstream.db"), [](const raw& v) { return as_uint(v, 0, max_db, "a database number"); });
    r.warnings.insert(r.warnings.end(), secret_warnings.begin(), secret_warnings.end());

    // rediss:// says TLS; an explicit "TLS off" elsewhere cannot be meant.
    for (const auto& url : tls.candidates()) {
        if (url.from.source.rfind("url:", 0) != 0 || !url.value) continue;
        for (const auto& other : tls.candidates()) {
            if (other.from.source.rfind("url:", 0) != 0 && !other.value) {
                throw config_error(url.from.name + " uses rediss:// (TLS) but " + other.from.name +
                                   " turns TLS off; remove one of them");
            }
        }
    }
    up.tls.enabled = tls.pick(false, r);
    if (username.given()) up.username = username.pick({}, r);
    else r.values.sources["upstream.username"] = "default";
    if (password.given()) up.password = password.pick({}, r);
    else r.values.sources["upstream.password"] = "default";
    up.db = db.pick(0, r);

    field<bool> verify("upstream.tls.verify");
    const auto inverted = [](const raw& v) { return !as_bool(v); };
    add(verify, src.flag("--tls-skip-verify"), inverted);
    add(verify, src.env("REDIS_TLS_SKIP_VERIFY"), inverted);
    add(verify, src.yaml("upstream.tls.verify"), as_bool);
    up.tls.verify = verify.pick(true, r);

    field<std::string> server_name("upstream.tls.server_name");
    const auto host_name = [](const raw& v) {
        try {
            auto a = parse_address(v.text);
            if (a.from_url || a.port) throw address_error("expected a host name");
            return a.host;
        } catch (const address_error& e) {
            throw config_error(v.from.name + ": '" + v.text + "': " + e.what());
        }
    };
    add(server_name, src.flag("--tls-server-name"), host_name);
    add(server_name, src.env("REDIS_TLS_SERVER_NAME"), host_name);
    add(server_name, src.yaml("upstream.tls.server_name"), host_name);
    const bool server_name_given = server_name.given();
    up.tls.server_name = server_name.pick(up.host, r);
    if (!server_name_given) r.values.sources["upstream.tls.server_name"] = r.values.sources["upstream.host"];

    const std::tuple<const char*, const char*, const char*, std::string*> files[] = {
        {"ca_file", "REDIS_TLS_CA_FILE", "ca.crt", &up.tls.ca_file},
        {"cert_file", "REDIS_TLS_CERT_FILE", "tls.crt", &up.tls.cert_file},
        {"key_file", "REDIS_TLS_KEY_FILE", "tls.key", &up.tls.key_file},
    };
    for (const auto& [name, var, secret_name, target] : files) {
        const std::string key = std::string("upstream.tls.") + name;
        std::string flag_name = std::string("--tls-") + name;
        std::replace(flag_name.begin(), flag_name.end(), '_', '-');
        field<std::string> f(key);
        add(f, src.flag(flag_name), as_readable_file);
        add(f, src.env(var), as_readable_file);
        add(f, src.secret_path(secret_name), as_readable_file);
        add(f, src.yaml(key), as_readable_file);
        *target = f.pick({}, r);
    }
    field<std::string> hosts_file("upstream.hosts_file");
    add(hosts_file, src.env("REDIS_SIDECAR_HOSTS_FILE"), as_readable_file);
    up.hosts_file = hosts_file.pick({}, r);

    if (up.tls.cert_file.empty() != up.tls.key_file.empty()) {
        throw config_error(up.tls.cert_file.empty()
                               ? "a client key (REDIS_TLS_KEY_FILE) is set without a client "
                                 "certificate (REDIS_TLS_CERT_FILE)"
                               : "a client certificate (REDIS_TLS_CERT_FILE) is set without its "
                                 "key (REDIS_TLS_KEY_FILE)");
    }
}

void resolve_pool(const source_reader& src, resolution& r) {
    auto& pool = r.values.pool;
    const auto count = [](std::uint64_t min) {
        return [min](const raw& v) { return as_uint(v, min, max_connections_limit, "a count"); };
    };
    field<unsigned> max_conn("pool.max_connections");
    add(max_conn, src.flag("--max-connections"), count(1));
    add(max_conn, src.env("REDIS_MAX_CONNECTIONS"), count(1));
    add(max_conn, src.yaml("pool.max_connections"), count(1));
    pool.max_connections = max_conn.pick(pool.max_connections, r);

    field<unsigned> min_idle("pool.min_idle_connections");
    add(min_idle, src.flag("--min-idle-connections"), count(0));
    add(min_idle, src.env("REDIS_MIN_IDLE_CONNECTIONS"), count(0));
    add(min_idle, src.yaml("pool.min_idle_connections"), count(0));
    pool.min_idle_connections = min_idle.pick(pool.min_idle_connections, r);
    if (pool.min_idle_connections > pool.max_connections) {
        throw config_error("pool: min idle connections (" + std::to_string(pool.min_idle_connections) +
                           ") exceeds REDIS_MAX_CONNECTIONS (" +
                           std::to_string(pool.max_connections) + ")");
    }

    const std::tuple<const char*, const char*, const char*, std::chrono::milliseconds*> durations[] = {
        {"pool.connection_timeout", "--connection-timeout", "REDIS_CONNECTION_TIMEOUT",
         &pool.connection_timeout},
        {"pool.socket_timeout", "--socket-timeout", "REDIS_SOCKET_TIMEOUT", &pool.socket_timeout},
        {"pool.health_check_interval", "--health-check-interval",
         "REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", &pool.health_check_interval},
    };
    for (const auto& [key, flag_name, var, target] : durations) {
        field<std::chrono::milliseconds> f(key);
        add(f, src.flag(flag_name), as_duration);
        add(f, src.env(var), as_duration);
        add(f, src.yaml(key), as_duration);
        *target = f.pick(*target, r);
    }

    field<bool> keepalive("pool.socket_keepalive");
    add(keepalive, src.flag("--socket-keepalive"), as_bool);
    add(keepalive, src.env("REDIS_SOCKET_KEEPALIVE"), as_bool);
    add(keepalive, src.yaml("pool.socket_keepalive"), as_bool);
    pool.socket_keepalive = keepalive.pick(pool.socket_keepalive, r);
}

void resolve_http(const source_reader& src, resolution& r) {
    field<std::string> http("http.addr");
    const auto http_addr = [](const raw& v) { return *as_listen_addr(v, false); };
    add(http, src.flag("--http-addr"), http_addr);
    add(http, src.env("REDIS_SIDECAR_HTTP_ADDR"), http_addr);
    add(http, src.yaml("http.addr"), http_addr);
    r.values.http.addr = http.pick(r.values.http.addr, r);
}

void resolve_local(const source_reader& src, resolution& r) {
    auto& s = r.values;
    field<std::optional<std::string>> tcp("listen.tcp");
    const auto listen = [](const raw& v) { return as_listen_addr(v, true); };
    add(tcp, src.flag("--listen"), listen);
    add(tcp, src.env("REDIS_SIDECAR_LISTEN"), listen);
    add(tcp, src.yaml("listen.tcp"), listen);
    s.listen.tcp = tcp.pick(s.listen.tcp, r);

    field<std::optional<std::string>> unix_path("listen.unix");
    const auto path = [](const raw& v) -> std::optional<std::string> {
        if (v.text.front() != '/') throw config_error(v.from.name + ": '" + v.text + "' is not an absolute path");
        if (v.text.size() > max_unix_path) {
            throw config_error(v.from.name + ": socket path is longer than " +
                               std::to_string(max_unix_path) + " bytes");
        }
        return v.text;
    };
    add(unix_path, src.flag("--socket"), path);
    add(unix_path, src.env("REDIS_SIDECAR_SOCKET"), path);
    add(unix_path, src.yaml("listen.unix"), path);
    s.listen.unix_path = unix_path.pick(std::nullopt, r);
    if (!s.listen.tcp && !s.listen.unix_path) {
        throw config_error("REDIS_SIDECAR_LISTEN is off and REDIS_SIDECAR_SOCKET is not set: "
                           "local clients could not connect");
    }

    field<unsigned> max_clients("listen.max_clients");
    const auto clients = [](const raw& v) { return as_uint(v, 1, 1'000'000, "a client count"); };
    add(max_clients, src.flag("--max-clients"), clients);
    add(max_clients, src.env("REDIS_SIDECAR_MAX_CLIENTS"), clients);
    add(max_clients, src.yaml("listen.max_clients"), clients);
    s.listen.max_clients = max_clients.pick(s.listen.max_clients, r);

    field<secret> client_password("listen.client_password");
    const auto as_secret = [](const raw& v) { return secret(v.text); };
    add(client_password, src.env("REDIS_SIDECAR_CLIENT_PASSWORD"), as_secret);
    std::vector<std::string> secret_warnings;
    add(client_password, src.secret_file("client-password", secret_warnings), as_secret);
    r.warnings.insert(r.warnings.end(), secret_warnings.begin(), secret_warnings.end());
    if (client_password.given()) {
        s.listen.client_password = client_password.pick({}, r);
    } else {
        r.values.sources["listen.client_password"] = "default";
    }

    field<std::string> client_auth("listen.client_auth");
    const auto auth_modes = [](const raw& v) { return as_one_of(v, {"local", "passthrough"}); };
    add(client_auth, src.flag("--client-auth"), auth_modes);
    add(client_auth, src.env("REDIS_SIDECAR_CLIENT_AUTH"), auth_modes);
    add(client_auth, src.yaml("listen.client_auth"), auth_modes);
    s.listen.client_auth = client_auth.pick(s.listen.client_auth, r);
    if (s.listen.client_auth == "passthrough" && s.listen.client_password) {
        throw config_error(
            "REDIS_SIDECAR_CLIENT_AUTH=passthrough lets the upstream check each client's AUTH; "
            "REDIS_SIDECAR_CLIENT_PASSWORD (a local password) cannot be set with it");
    }

    field<std::string> readiness("lifecycle.readiness");
    const auto policies = [](const raw& v) { return as_one_of(v, {"upstream", "primary", "local"}); };
    add(readiness, src.flag("--readiness"), policies);
    add(readiness, src.env("REDIS_SIDECAR_READINESS"), policies);
    add(readiness, src.yaml("lifecycle.readiness"), policies);
    s.lifecycle.readiness = readiness.pick(s.lifecycle.readiness, r);

    const std::tuple<const char*, const char*, const char*, std::chrono::milliseconds*> drains[] = {
        {"lifecycle.min_drain", "--min-drain", "REDIS_SIDECAR_MIN_DRAIN", &s.lifecycle.min_drain},
        {"lifecycle.max_drain", "--max-drain", "REDIS_SIDECAR_MAX_DRAIN", &s.lifecycle.max_drain},
    };
    for (const auto& [key, flag_name, var, target] : drains) {
        field<std::chrono::milliseconds> f(key);
        add(f, src.flag(flag_name), as_duration_or_zero);
        add(f, src.env(var), as_duration_or_zero);
        add(f, src.yaml(key), as_duration_or_zero);
        *target = f.pick(*target, r);
    }

    resolve_http(src, r);

    field<std::string> level("log.level");
    const auto levels = [](const raw& v) { return as_one_of(v, {"debug", "info", "warn", "error"}); };
    add(level, src.flag("--log-level"), levels);
    add(level, src.env("REDIS_SIDECAR_LOG_LEVEL"), levels);
    add(level, src.yaml("log.level"), levels);
    s.log.level = level.pick(s.log.level, r);

    field<std::string> format("log.format");
    const auto formats = [](const raw& v) { return as_one_of(v, {"json", "text"}); };
    add(format, src.flag("--log-format"), formats);
    add(format, src.env("REDIS_SIDECAR_LOG_FORMAT"), formats);
    add(format, src.yaml("log.format"), formats);
    s.log.format = format.pick(s.log.format, r);
}

// Settings that work but are probably not what the user wants.
void advise(resolution& r) {
    const auto& up = r.values.upstream;
    if (up.tls.enabled && !up.tls.verify) {
        r.warnings.push_back(
            "TLS certificate verification is off (REDIS_TLS_SKIP_VERIFY): the upstream's "
            "identity is not checked");
    }
    if (up.tls.enabled && up.tls.verify && is_ip_literal(up.host) &&
        up.tls.server_name == up.host) {
        r.warnings.push_back("upstream host " + up.host +
                             " is an IP address and REDIS_TLS_SERVER_NAME is not set: "
                             "ElastiCache certificates name hosts, not IPs, so verification "
                             "will likely fail");
    }
    const std::string aws_suffix = ".cache.amazonaws.com";
    if (!up.tls.enabled && up.host.size() > aws_suffix.size() &&
        up.host.compare(up.host.size() - aws_suffix.size(), aws_suffix.size(), aws_suffix) == 0) {
        r.warnings.push_back("upstream " + up.host +
                             " is an ElastiCache endpoint and TLS is off: clusters with in-transit "
                             "encryption need REDIS_TLS_ENABLED=true (or rediss://)");
    }
    if (!up.tls.enabled && (!up.tls.ca_file.empty() || !up.tls.cert_file.empty())) {
        r.warnings.push_back("TLS files are set but TLS is off; they are not used");
    }
    if (up.password && up.password->size() < elasticache_min_token_length) {
        r.warnings.push_back("the password from " + r.values.sources["upstream.password"] +
                             " is shorter than 16 characters, ElastiCache's minimum for AUTH "
                             "tokens");
    }
    if (up.username && !up.password) {
        r.warnings.push_back("a user name is set without a password; no AUTH will be sent");
    }
}

}  // namespace

resolution resolve(const inputs& in) {
    const source_reader src(in);
    resolution r;
    resolve_upstream(src, r);
    resolve_pool(src, r);
    resolve_local(src, r);
    advise(r);
    return r;
}

std::string resolve_http_addr(const inputs& in) {
    const source_reader src(in);
    resolution r;
    resolve_http(src, r);
    return r.values.http.addr;
}

std::map<std::string, std::string> environment_map() {
    std::map<std::string, std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string_view kv(*e);
        const auto eq = kv.find('=');
        if (eq == std::string_view::npos) continue;
        env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
    return env;
}

std::string flags_help() {
    std::string out;
    for (const auto& f : detail::flag_specs()) {
        std::string name = std::string("  ") + f.name + (f.boolean ? "[=BOOL]" : " VALUE");
        name.resize(std::max<std::size_t>(name.size() + 1, 32), ' ');
        out += name + f.help + "\n";
    }
    return out;
}

}  // namespace redis_sidecar::config
