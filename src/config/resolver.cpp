#include "redis_sidecar/config/resolver.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/config/table.hpp"
#include "redis_sidecar/config/values.hpp"
#include "sources.hpp"

extern char** environ;

namespace redis_sidecar::config {

namespace {

using detail::origin;
using detail::raw;
using detail::source_reader;

/// ElastiCache refuses AUTH tokens shorter than this.
constexpr std::size_t elasticache_min_token_length = 16;

/// One source's value of one setting.
struct candidate {
    value v;
    origin from;
};

std::string describe(const std::string& v) {
    return "'" + v + "'";
}
std::string describe(bool v) {
    return v ? "true" : "false";
}
std::string describe(unsigned v) {
    return std::to_string(v);
}
std::string describe(std::chrono::milliseconds v) {
    return format_duration(v);
}
std::string describe(const std::optional<std::string>& v) {
    return v ? describe(*v) : "off";
}
std::string describe(const secret&) {
    return secret::redacted;
}
std::string describe(const value& v) {
    return std::visit([](const auto& x) { return describe(x); }, v);
}

/// A value fits the member of its own type or an optional of it.
template <class Field, class Value>
constexpr bool fits = std::is_same_v<Field, Value> || std::is_same_v<Field, std::optional<Value>>;

void store(member to, const value& v) {
    std::visit(
        [](auto* field, const auto& x) {
            if constexpr (fits<std::remove_pointer_t<decltype(field)>, std::decay_t<decltype(x)>>) {
                *field = x;
            } else {
                throw std::logic_error("settings table: a row's parser does not fit its member");
            }
        },
        to, v);
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
    const std::pair<const char*, const char*> pairs[] = {
        {"REDIS_HOST", "REDIS_PORT"}, {"ELASTICACHE_ENDPOINT", "ELASTICACHE_PORT"}};
    for (const auto& [host_var, port_var] : pairs) {
        auto host = src.env(host_var);
        auto port = src.env(port_var);
        if (!host) {
            if (port)
                r.warnings.push_back(port->from.name + " is set without " + host_var +
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
            throw config_error(host->from.name +
                               ": expected a host name only (port goes in "
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

std::uint16_t effective_port(const address_candidate& c) {
    return c.parsed.port.value_or(6379);
}

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
    r.values.sources["upstream.port"] = winner.port_from     ? winner.port_from->source
                                        : winner.parsed.port ? winner.host_from.source
                                                             : "default";
}

/// The rows read the generic way; the address (upstream.host, upstream.port) is resolved above.
bool generic(const setting& row) {
    return row.at && (row.parse || !row.choices.empty());
}

/// Every value a row was given, highest precedence first.
std::vector<candidate> collect(const setting& row, const source_reader& src,
                               const std::vector<address_candidate>& addresses,
                               std::vector<std::string>& warnings) {
    std::vector<candidate> out;
    const auto add = [&](const std::optional<raw>& v, bool invert) {
        if (!v) return;
        auto parsed = detail::parse(row, *v);
        if (invert) parsed = !std::get<bool>(parsed);
        out.push_back({std::move(parsed), v->from});
    };
    add(src.flag(row.flag), row.inverted);
    for (const auto var : row.env) add(src.env(var), row.inverted);
    // What URLs carried ranks just below the explicit variables of the environment.
    for (const auto& a : addresses) {
        if (!row.from_url || !a.parsed.from_url) continue;
        if (auto v = row.from_url(a.parsed)) out.push_back({std::move(*v), a.host_from});
    }
    if (!row.secret_file.empty()) {
        add(detail::names_a_file(row) ? src.secret_path(row.secret_file)
                                      : src.secret_file(row.secret_file, warnings),
            false);
    }
    if (row.yaml) add(src.yaml(row.key), false);
    return out;
}

/// Takes the first value, records its source and warns about each lower one that disagrees
/// (never printing a secret). Nothing given: the member keeps its default.
void pick(const setting& row, const std::vector<candidate>& given, resolution& r) {
    const std::string key(row.key);
    if (given.empty()) {
        r.values.sources[key] = "default";
        return;
    }
    const auto& winner = given.front();
    for (const auto& other : given) {
        if (other.v == winner.v || other.from.source == winner.from.source) continue;
        r.warnings.push_back(key + ": " + winner.from.name +
                             (row.secret ? " overrides a different value from " + other.from.name
                                         : " (" + describe(winner.v) + ") overrides " +
                                               other.from.name + " (" + describe(other.v) + ")"));
    }
    r.values.sources[key] = winner.from.source;
    store(row.at(r.values), winner.v);
}

// rediss:// says TLS; an explicit "TLS off" elsewhere cannot be meant.
void check_tls_agrees(const std::vector<candidate>& tls) {
    const auto from_url = [](const candidate& c) { return c.from.source.rfind("url:", 0) == 0; };
    for (const auto& url : tls) {
        if (!from_url(url) || !std::get<bool>(url.v)) continue;
        for (const auto& other : tls) {
            if (!from_url(other) && !std::get<bool>(other.v)) {
                throw config_error(url.from.name + " uses rediss:// (TLS) but " + other.from.name +
                                   " turns TLS off; remove one of them");
            }
        }
    }
}

// REDIS_IAM_AUTH's needs: a user, TLS, no password, a cache name and a region.
void check_iam(const settings& s) {
    const auto from = [&s](const char* key) { return s.sources.at(key); };
    if (s.upstream.password) {
        throw config_error("REDIS_IAM_AUTH is on and a password is set (" +
                           from("upstream.password") +
                           "): IAM authenticates with a token instead; remove the password");
    }
    if (!s.upstream.tls.enabled) {
        throw config_error(
            "REDIS_IAM_AUTH is on and TLS is off: ElastiCache accepts IAM only with in-transit "
            "encryption; set REDIS_TLS_ENABLED=true (or use rediss://)");
    }
    if (!s.upstream.username) {
        throw config_error(
            "REDIS_IAM_AUTH is on and REDIS_USERNAME is not set: name the IAM-enabled "
            "ElastiCache user (its user id and user name must be equal)");
    }
    if (s.iam.cache_name.empty()) {
        throw config_error(
            "REDIS_IAM_AUTH is on and REDIS_IAM_CACHE_NAME is not set; upstream "
            "host " +
            s.upstream.host + " is not an ElastiCache endpoint name it could be read from");
    }
    if (s.iam.region.empty()) {
        throw config_error(
            "REDIS_IAM_AUTH is on and AWS_REGION (or AWS_DEFAULT_REGION) is not set: tokens "
            "are signed for a region");
    }
    // Checked only here: AWS_REGION is shared with other tools ("local" for emulators), and a
    // value the sidecar does not use must not stop it.
    const auto& region = s.iam.region;
    const bool region_ok = region.size() <= 32 && region.find('-') != std::string::npos &&
                           std::all_of(region.begin(), region.end(), [](unsigned char c) {
                               return std::islower(c) != 0 || std::isdigit(c) != 0 || c == '-';
                           });
    if (!region_ok) {
        throw config_error("iam.region: '" + region + "' (" + from("iam.region") +
                           ") is not an AWS region (for example us-east-1)");
    }
}

// What an ElastiCache endpoint name says fills iam.* that nothing else set.
void derive_from_endpoint(settings& s) {
    const auto endpoint = parse_elasticache_endpoint(s.upstream.host);
    if (!endpoint) return;
    const std::string derived = "derived:upstream.host";
    const auto unset = [&s](const char* key) { return s.sources.at(key) == "default"; };
    if (unset("iam.cache_name")) {
        s.iam.cache_name = endpoint->cache_name;
        s.sources["iam.cache_name"] = derived;
    }
    if (unset("iam.serverless")) {
        s.iam.serverless = endpoint->serverless;
        s.sources["iam.serverless"] = derived;
    }
    if (unset("iam.region") && !endpoint->region.empty()) {
        s.iam.region = endpoint->region;
        s.sources["iam.region"] = derived;
    }
}

// Rules between settings.
void check(const settings& s) {
    const auto& tls = s.upstream.tls;
    if (tls.cert_file.empty() != tls.key_file.empty()) {
        throw config_error(tls.cert_file.empty()
                               ? "a client key (REDIS_TLS_KEY_FILE) is set without a client "
                                 "certificate (REDIS_TLS_CERT_FILE)"
                               : "a client certificate (REDIS_TLS_CERT_FILE) is set without its "
                                 "key (REDIS_TLS_KEY_FILE)");
    }
    if (s.pool.min_idle_connections > s.pool.max_connections) {
        throw config_error(
            "pool: min idle connections (" + std::to_string(s.pool.min_idle_connections) +
            ") exceeds REDIS_MAX_CONNECTIONS (" + std::to_string(s.pool.max_connections) + ")");
    }
    if (!s.listen.tcp && !s.listen.unix_path) {
        throw config_error(
            "REDIS_SIDECAR_LISTEN is off and REDIS_SIDECAR_SOCKET is not set: "
            "local clients could not connect");
    }
    if (s.iam.enabled) check_iam(s);
    if (s.listen.client_auth == "passthrough" && s.listen.client_password) {
        throw config_error(
            "REDIS_SIDECAR_CLIENT_AUTH=passthrough lets the upstream check each client's AUTH; "
            "REDIS_SIDECAR_CLIENT_PASSWORD (a local password) cannot be set with it");
    }
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
    if (up.username && !up.password && !r.values.iam.enabled) {
        r.warnings.push_back("a user name is set without a password; no AUTH will be sent");
    }
}

}  // namespace

resolution resolve(const inputs& in) {
    const source_reader src(in);
    resolution r;
    const auto addresses = collect_addresses(src, r);
    resolve_address(addresses, r);
    for (const auto& row : table()) {
        if (!generic(row)) continue;
        const auto given = collect(row, src, addresses, r.warnings);
        if (row.key == "upstream.tls.enabled") check_tls_agrees(given);
        pick(row, given, r);
    }
    for (const auto& row : table()) {
        if (row.default_from.empty()) continue;
        auto& source = r.values.sources.at(std::string(row.key));
        if (source != "default") continue;
        const auto& from = setting_for(row.default_from);
        *std::get<std::string*>(row.at(r.values)) = *std::get<std::string*>(from.at(r.values));
        source = r.values.sources.at(std::string(from.key));
    }
    derive_from_endpoint(r.values);
    check(r.values);
    advise(r);
    return r;
}

std::string resolve_http_addr(const inputs& in) {
    const source_reader src(in);
    resolution r;
    const auto& row = setting_for("http.addr");
    pick(row, collect(row, src, {}, r.warnings), r);
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
    constexpr std::size_t indent = 32;  // where the help column starts
    constexpr std::size_t width = 100;  // where it wraps
    const settings defaults;
    std::string out;
    for (const auto& row : table()) {
        if (row.flag.empty()) continue;
        std::string help(row.help);
        if (!row.choices.empty()) help += "; one of " + detail::join(row.choices, ", ");
        help += " (" + std::string(row.env.front());
        // An inverted row's default would read backwards next to its flag ("skip verify").
        if (const auto d = row.at && !row.inverted ? json_of(row, defaults) : nullptr;
            !d.is_null()) {
            help += "; default " + (d.is_string() ? d.get<std::string>() : d.dump());
        }
        help += ")";
        std::string line =
            "  " + std::string(row.flag) + (detail::takes_bare_flag(row) ? "[=BOOL]" : " VALUE");
        line.resize(std::max(line.size() + 1, indent), ' ');
        std::size_t column = line.size();
        std::istringstream words(help);
        for (std::string word; words >> word; column += word.size()) {
            if (column > indent && column + 1 + word.size() > width) {
                line += "\n" + std::string(indent, ' ');
                column = indent;
            } else if (line.back() != ' ') {
                line += ' ';
                ++column;
            }
            line += word;
        }
        out += line + "\n";
    }
    return out;
}

}  // namespace redis_sidecar::config
