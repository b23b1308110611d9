#include "sources.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include <yaml-cpp/yaml.h>

#include "redis_sidecar/config/values.hpp"

namespace redis_sidecar::config::detail {

namespace {

// The YAML file has the shape of `config`'s JSON without "sources"; these are its leaves.
const std::set<std::string>& yaml_keys() {
    static const std::set<std::string> keys = {
        "upstream.host",          "upstream.port",
        "upstream.username",      "upstream.password",
        "upstream.db",            "upstream.tls.enabled",
        "upstream.tls.verify",    "upstream.tls.server_name",
        "upstream.tls.ca_file",   "upstream.tls.cert_file",
        "upstream.tls.key_file",  "pool.max_connections",
        "pool.min_idle_connections", "pool.connection_timeout",
        "pool.socket_timeout",    "pool.socket_keepalive",
        "listen.tcp",             "listen.unix",
        "http.addr",              "log.level",
        "log.format",             "listen.max_clients",
        "lifecycle.readiness",    "lifecycle.min_drain",
        "lifecycle.max_drain",    "pool.health_check_interval",
        "listen.client_auth",
    };
    return keys;
}

bool is_prefix_of_key(const std::string& prefix) {
    const auto& keys = yaml_keys();
    const auto it = keys.lower_bound(prefix + ".");
    return it != keys.end() && it->compare(0, prefix.size() + 1, prefix + ".") == 0;
}

void flatten(const YAML::Node& node, const std::string& prefix, const std::string& path,
             std::map<std::string, std::string>& out) {
    for (const auto& item : node) {
        const auto name = item.first.as<std::string>();
        const auto key = prefix.empty() ? name : prefix + "." + name;
        const auto& value = item.second;
        if (value.IsMap()) {
            if (!is_prefix_of_key(key)) {
                throw config_error(path + ": unknown key '" + key + "'");
            }
            flatten(value, key, path, out);
        } else if (yaml_keys().count(key) == 0) {
            throw config_error(path + ": unknown key '" + key + "'");
        } else if (value.IsSequence()) {
            throw config_error(path + ": '" + key + "' must be a single value, not a list");
        } else if (value.IsScalar()) {
            out[key] = value.Scalar();
        }  // null: as if absent
    }
}

}  // namespace

const std::vector<flag_spec>& flag_specs() {
    static const std::vector<flag_spec> specs = {
        {"--addr", false, "upstream host:port (or a redis:// / rediss:// URL); like REDIS_ADDR"},
        {"--db", false, "database number; like REDIS_DB"},
        {"--username", false, "ACL user name; like REDIS_USERNAME"},
        {"--tls-enabled", true, "speak TLS to the upstream; like REDIS_TLS_ENABLED"},
        {"--tls-skip-verify", true, "do not verify the upstream certificate (unsafe)"},
        {"--tls-ca-file", false, "CA bundle (PEM); like REDIS_TLS_CA_FILE"},
        {"--tls-cert-file", false, "client certificate (PEM); like REDIS_TLS_CERT_FILE"},
        {"--tls-key-file", false, "client key (PEM); like REDIS_TLS_KEY_FILE"},
        {"--tls-server-name", false, "SNI and verified name; like REDIS_TLS_SERVER_NAME"},
        {"--max-connections", false, "upstream connections at most; like REDIS_MAX_CONNECTIONS"},
        {"--min-idle-connections", false, "idle upstream connections kept ready"},
        {"--connection-timeout", false, "connect + TLS + AUTH timeout (250ms, 5s, 2m)"},
        {"--socket-timeout", false, "timeout of the sidecar's own commands"},
        {"--socket-keepalive", true, "TCP keepalive on upstream sockets"},
        {"--health-check-interval", false, "PING idle upstream connections this often (10s)"},
        {"--listen", false, "local TCP listener host:port, or 'off'; like REDIS_SIDECAR_LISTEN"},
        {"--socket", false, "local unix socket path; like REDIS_SIDECAR_SOCKET"},
        {"--http-addr", false, "probes and metrics host:port; like REDIS_SIDECAR_HTTP_ADDR"},
        {"--config", false, "YAML configuration file; like REDIS_SIDECAR_CONFIG"},
        {"--secrets-dir", false, "mounted Secret directory; like REDIS_SIDECAR_SECRETS_DIR"},
        {"--log-level", false, "debug, info, warn or error"},
        {"--log-format", false, "json or text"},
        {"--max-clients", false, "local clients at once; like REDIS_SIDECAR_MAX_CLIENTS"},
        {"--readiness", false, "readiness policy: upstream, primary or local"},
        {"--client-auth", false, "client AUTH: local (the sidecar's user) or passthrough"},
        {"--min-drain", false, "after SIGTERM, keep accepting this long (default 0s)"},
        {"--max-drain", false, "after SIGTERM, wait this long for clients (default 30s)"},
    };
    return specs;
}

std::string read_small_file(const std::string& path, std::size_t limit, const std::string& what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        throw config_error(what + ": cannot read " + path + ": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        throw config_error(what + ": " + path + " is not a regular file");
    }
    if (static_cast<std::size_t>(st.st_size) > limit) {
        throw config_error(what + ": " + path + " is larger than " + std::to_string(limit) +
                           " bytes");
    }
    std::ifstream file(path, std::ios::binary);
    if (!file) throw config_error(what + ": cannot read " + path + ": " + std::strerror(errno));
    std::string content(static_cast<std::size_t>(st.st_size), '\0');
    file.read(content.data(), static_cast<std::streamsize>(content.size()));
    content.resize(static_cast<std::size_t>(file.gcount()));
    return content;
}

source_reader::source_reader(const inputs& in) : in_(in) {
    parse_flags(in.args);
    if (auto dir = flag("--secrets-dir") ? flag("--secrets-dir") : env("REDIS_SIDECAR_SECRETS_DIR")) {
        struct stat st {};
        if (::stat(dir->text.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            throw config_error(dir->from.name + ": " + dir->text + " is not a readable directory");
        }
        secrets_dir_ = dir->text;
    }
    if (auto file = flag("--config") ? flag("--config") : env("REDIS_SIDECAR_CONFIG")) {
        load_yaml(file->text);
    }
}

void source_reader::parse_flags(const std::vector<std::string>& args) {
    const auto& specs = flag_specs();
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        std::string_view name = arg;
        std::optional<std::string> value;
        if (const auto eq = arg.find('='); eq != std::string_view::npos) {
            name = arg.substr(0, eq);
            value = std::string(arg.substr(eq + 1));
        }
        const auto spec = std::find_if(specs.begin(), specs.end(),
                                       [&](const flag_spec& s) { return name == s.name; });
        if (spec == specs.end()) {
            throw config_error("unknown flag " + std::string(name) + " (see --help)");
        }
        if (!value) {
            const bool next_is_value = i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0;
            if (spec->boolean && !(next_is_value && parse_bool(args[i + 1]))) {
                value = "true";
            } else if (next_is_value) {
                value = args[++i];
            } else {
                throw config_error("flag " + std::string(name) + " needs a value");
            }
        }
        flags_[std::string(name)] = *value;
    }
}

void source_reader::load_yaml(const std::string& path) {
    const auto text = read_small_file(path, max_yaml_file_bytes, "REDIS_SIDECAR_CONFIG");
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        throw config_error(path + ": not valid YAML at line " + std::to_string(e.mark.line + 1) +
                           ": " + e.msg);
    }
    if (root.IsNull()) return;
    if (!root.IsMap()) throw config_error(path + ": expected a mapping at the top level");
    yaml_path_ = path;
    try {
        flatten(root, "", path, yaml_);
    } catch (const YAML::Exception& e) {
        throw config_error(path + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
}

std::optional<raw> source_reader::flag(std::string_view name) const {
    const auto it = flags_.find(name);
    if (it == flags_.end()) return std::nullopt;
    auto text = std::string(trim(it->second));
    if (text.empty()) throw config_error("flag " + std::string(name) + " needs a value");
    return raw{std::move(text), {"flag:" + std::string(name), std::string(name)}};
}

std::optional<raw> source_reader::env(const std::string& name) const {
    const auto plain = in_.env.find(name);
    const auto file = in_.env.find(name + "_FILE");
    const bool has_plain = plain != in_.env.end() && !trim(plain->second).empty();
    const bool has_file = file != in_.env.end() && !trim(file->second).empty();
    if (has_plain && has_file) {
        throw config_error("both " + name + " and " + name + "_FILE are set; set only one");
    }
    if (has_plain) return raw{std::string(trim(plain->second)), {"env:" + name, name}};
    if (!has_file) return std::nullopt;
    const auto path = std::string(trim(file->second));
    const auto what = name + "_FILE";
    auto text = std::string(trim(read_small_file(path, max_value_file_bytes, what)));
    if (text.empty()) throw config_error(what + ": " + path + " is empty");
    return raw{std::move(text), {"file:" + path, what + " (" + path + ")"}};
}

std::optional<raw> source_reader::secret_file(const std::string& file,
                                              std::vector<std::string>& warnings) const {
    auto path = secret_path(file);
    if (!path) return std::nullopt;
    auto text = std::string(trim(read_small_file(path->text, max_value_file_bytes, path->text)));
    if (text.empty()) {
        warnings.push_back("secrets directory file " + path->text + " is empty; ignoring it");
        return std::nullopt;
    }
    return raw{std::move(text), path->from};
}

std::optional<raw> source_reader::secret_path(const std::string& file) const {
    if (secrets_dir_.empty()) return std::nullopt;
    const auto path = secrets_dir_ + "/" + file;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return raw{path, {"file:" + path, path}};
}

std::optional<raw> source_reader::yaml(const std::string& key) const {
    const auto it = yaml_.find(key);
    if (it == yaml_.end()) return std::nullopt;
    auto text = std::string(trim(it->second));
    if (text.empty()) return std::nullopt;
    return raw{std::move(text), {"yaml:" + yaml_path_, yaml_path_ + ": " + key}};
}

}  // namespace redis_sidecar::config::detail
