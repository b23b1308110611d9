#include "redis_sidecar/config/table.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "support/temp_dir.hpp"

namespace redis_sidecar::config {

void PrintTo(const setting& row, std::ostream* os) {
    *os << row.key;
}

namespace {

using json = nlohmann::json;
using redis_sidecar::testing::temp_dir;

std::string pointer_of(std::string_view key) {
    std::string pointer = "/" + std::string(key);
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    return pointer;
}

bool same_value(member a, member b) {
    return std::visit(
        [](auto* x, auto* y) {
            if constexpr (std::is_same_v<decltype(x), decltype(y)>) {
                return *x == *y;
            } else {
                return false;
            }
        },
        a, b);
}

// The texts a row's sources are given in the precedence test, one per source in order (flag,
// variables, a URL in REDIS_URL, secrets file, YAML). "FILE" stands for a readable file the test
// writes.
const std::map<std::string, std::vector<std::string>> samples = {
    {"upstream.host", {"flag-host", "addr-host", "url-host", "host-host", "ec-host", "yaml-host"}},
    {"upstream.port", {"7001", "7002", "7003"}},
    {"upstream.tls.enabled", {"true", "false", "yes", "redis://cache", "off"}},
    {"upstream.tls.verify", {"true", "false", "true"}},
    {"upstream.tls.server_name", {"flag.example", "env.example", "yaml.example"}},
    {"upstream.tls.ca_file", {"FILE", "FILE", "FILE", "FILE"}},
    {"upstream.tls.cert_file", {"FILE", "FILE", "FILE", "FILE"}},
    {"upstream.tls.key_file", {"FILE", "FILE", "FILE", "FILE"}},
    {"upstream.username",
     {"flag-user", "env-user", "redis://url-user:url-password-0123456789@cache", "dir-user",
      "yaml-user"}},
    {"upstream.password",
     {"env-password-0123456789", "token-0123456789abcdef", "redis://:url-password-0123456789@cache",
      "dir-password-0123456789", "yaml-password-0123456789"}},
    {"upstream.db", {"2", "3", "redis://cache/4", "5"}},
    {"upstream.hosts_file", {"FILE"}},
    {"pool.max_connections", {"10", "20", "30"}},
    {"pool.min_idle_connections", {"1", "3", "4"}},
    {"pool.connection_timeout", {"1s", "2500ms", "3"}},
    {"pool.socket_timeout", {"1s", "2s", "3s"}},
    {"pool.socket_keepalive", {"false", "true", "no"}},
    {"pool.health_check_interval", {"1s", "2s", "3s"}},
    {"pool.idle_timeout", {"0", "90s", "2m"}},
    {"listen.tcp", {"127.0.0.1:7001", "127.0.0.1:7002", "[::1]:7003"}},
    {"listen.unix", {"/tmp/flag.sock", "/tmp/env.sock", "/tmp/yaml.sock"}},
    {"listen.max_clients", {"10", "20", "30"}},
    {"listen.client_password", {"env-client-password", "dir-client-password"}},
    {"listen.client_auth", {"passthrough", "local", "Passthrough"}},
    {"listen.multiplex", {"on", "false", "yes"}},
    {"listen.shared_connections", {"3", "5", "7"}},
    {"http.addr", {"127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"}},
    {"cluster.mode", {"on", "off", "on"}},
    {"cluster.ports", {"7000-7009", "8000-8009", "9000-9001"}},
    {"iam.enabled", {"false", "0", "no"}},
    {"iam.cache_name", {"flag-cache", "env-cache", "yaml-cache"}},
    {"iam.serverless", {"true", "false", "yes"}},
    {"iam.region", {"us-east-1", "eu-west-1", "ap-south-1", "us-west-2"}},
    {"lifecycle.readiness", {"primary", "local", "upstream"}},
    {"lifecycle.min_drain", {"0", "1s", "2s"}},
    {"lifecycle.max_drain", {"10s", "20s", "0s"}},
    {"log.level", {"debug", "warn", "error"}},
    {"log.format", {"text", "json", "TEXT"}},
};

// What the address rows need beside a source of theirs: a port is read with its host.
const std::map<std::string, std::string> companions = {
    {"REDIS_PORT", "REDIS_HOST"},
    {"ELASTICACHE_PORT", "ELASTICACHE_ENDPOINT"},
    {"yaml:upstream.port", "upstream.host"},
};

enum class kind { flag, env, url, secrets_dir, yaml };

struct source {
    kind k;
    std::string name;  // the flag, the variable, the file in the secrets directory, the YAML key
};

// A row's sources, highest precedence first.
std::vector<source> sources_of(const setting& row) {
    std::vector<source> out;
    if (!row.flag.empty()) out.push_back({kind::flag, std::string(row.flag)});
    for (const auto var : row.env) out.push_back({kind::env, std::string(var)});
    if (row.from_url) out.push_back({kind::url, "REDIS_URL"});
    if (!row.secret_file.empty()) out.push_back({kind::secrets_dir, std::string(row.secret_file)});
    if (row.yaml) out.push_back({kind::yaml, std::string(row.key)});
    return out;
}

bool is_address(const setting& row) {
    return row.key == "upstream.host" || row.key == "upstream.port";
}

// Inputs that give the sources [first, last) of `row` each its sample text.
class scenario {
  public:
    scenario(const setting& row, std::size_t first, std::size_t last) {
        const auto all = sources_of(row);
        const auto& texts = samples.at(std::string(row.key));
        in_.env["REDIS_SIDECAR_SECRETS_DIR"] = secrets_.path();
        if (!is_address(row) || first == last) in_.env["REDIS_ADDR"] = "cache";
        // A client certificate needs its key and the other way round.
        if (first < last && row.key == "upstream.tls.cert_file") {
            in_.env["REDIS_TLS_KEY_FILE"] = file();
        }
        if (first < last && row.key == "upstream.tls.key_file") {
            in_.env["REDIS_TLS_CERT_FILE"] = file();
        }
        for (std::size_t i = first; i < last; ++i) {
            const auto text = texts.at(i) == "FILE" ? file() : texts.at(i);
            give(all[i], text);
            const auto companion =
                companions.find((all[i].k == kind::yaml ? "yaml:" : "") + all[i].name);
            if (companion != companions.end()) {
                give({all[i].k, companion->second}, "cache");
            }
        }
        if (!yaml_.empty())
            in_.env["REDIS_SIDECAR_CONFIG"] = files_.write_file("c.yaml", yaml_.dump());
    }

    const inputs& in() const { return in_; }
    std::string yaml_path() const { return files_.file("c.yaml"); }
    std::string secrets_path() const { return secrets_.path(); }

  private:
    std::string file() { return files_.write_file("f" + std::to_string(++files_written_), "PEM"); }

    void give(const source& s, const std::string& text) {
        switch (s.k) {
            case kind::flag:
                in_.args.push_back(s.name + "=" + text);
                break;
            case kind::env:
            case kind::url:
                in_.env[s.name] = text;
                break;
            case kind::secrets_dir:
                secrets_.write_file(s.name, text + "\n");
                break;
            case kind::yaml:
                yaml_[json::json_pointer(pointer_of(s.name))] = text;
                break;
        }
    }

    temp_dir files_;
    temp_dir secrets_;
    inputs in_;
    json yaml_;
    int files_written_ = 0;
};

std::string source_text(const source& s, const scenario& sc) {
    switch (s.k) {
        case kind::flag:
            return "flag:" + s.name;
        case kind::env:
            return "env:" + s.name;
        case kind::url:
            return "url:" + s.name;
        case kind::secrets_dir:
            return "file:" + sc.secrets_path() + "/" + s.name;
        case kind::yaml:
            return "yaml:" + sc.yaml_path();
    }
    return {};
}

std::vector<setting> settings_rows() {
    std::vector<setting> rows;
    for (const auto& row : table()) {
        if (row.at) rows.push_back(row);
    }
    return rows;
}

// For every setting: all its sources given at once, then without the highest, and so on down to
// none. Each time the highest given wins (its value, and its name in `sources`), whatever the
// lower ones say.
class precedence_table : public ::testing::TestWithParam<setting> {};

TEST_P(precedence_table, highest_given_source_wins) {
    const auto& row = GetParam();
    const std::string key(row.key);
    ASSERT_EQ(samples.count(key), 1u) << "add sample texts for " << key;
    const auto all = sources_of(row);
    ASSERT_GE(samples.at(key).size(), all.size()) << key;
    for (std::size_t first = 0; first <= all.size(); ++first) {
        if (first == all.size() && row.key == "upstream.host") continue;  // required
        SCOPED_TRACE(first < all.size() ? "highest given: " + all[first].name : "none given");
        scenario given(row, first, all.size());
        auto r = resolve(given.in());
        if (first == all.size()) {
            const auto expected = row.default_from.empty()
                                      ? "default"
                                      : r.values.sources.at(std::string(row.default_from));
            EXPECT_EQ(r.values.sources.at(key), expected);
            settings defaults;
            if (row.default_from.empty()) {
                EXPECT_TRUE(same_value(row.at(r.values), row.at(defaults)));
            }
            continue;
        }
        EXPECT_EQ(r.values.sources.at(key), source_text(all[first], given));
        // The same value as that source alone gives.
        scenario alone(row, first, first + 1);
        auto a = resolve(alone.in());
        if (samples.at(key)[first] != "FILE") {
            EXPECT_TRUE(same_value(row.at(r.values), row.at(a.values)))
                << to_json(r.values).at(json::json_pointer(pointer_of(key))) << " vs "
                << to_json(a.values).at(json::json_pointer(pointer_of(key)));
        }
    }
}

INSTANTIATE_TEST_SUITE_P(every_setting, precedence_table, ::testing::ValuesIn(settings_rows()),
                         [](const ::testing::TestParamInfo<setting>& info) {
                             std::string name(info.param.key);
                             std::replace(name.begin(), name.end(), '.', '_');
                             return name;
                         });

TEST(table, names_are_unique_and_secrets_have_no_flag) {
    std::set<std::string_view> keys, flags, variables, files;
    for (const auto& row : table()) {
        EXPECT_TRUE(keys.insert(row.key).second) << row.key;
        if (!row.flag.empty()) {
            EXPECT_TRUE(flags.insert(row.flag).second) << row.flag;
        }
        for (const auto var : row.env) EXPECT_TRUE(variables.insert(var).second) << var;
        if (!row.secret_file.empty()) {
            EXPECT_TRUE(files.insert(row.secret_file).second) << row.secret_file;
        }
        EXPECT_FALSE(row.env.empty()) << row.key;
        EXPECT_FALSE(row.help.empty()) << row.key;
        EXPECT_TRUE(!row.secret || row.flag.empty()) << row.key << ": a flag shows in ps";
        EXPECT_TRUE(row.at || !row.yaml) << row.key;
    }
}

TEST(table, json_and_sources_have_every_setting) {
    const auto r = resolve({{{"REDIS_ADDR", "cache"}}, {}});
    const auto j = to_json(r.values);
    std::set<std::string> expected;
    for (const auto& row : table()) {
        if (!row.at) continue;
        expected.insert(std::string(row.key));
        EXPECT_TRUE(j.contains(json::json_pointer(pointer_of(row.key)))) << row.key;
    }
    std::set<std::string> recorded;
    for (const auto& [key, source] : r.values.sources) recorded.insert(key);
    EXPECT_EQ(recorded, expected);
}

TEST(table, yaml_rejects_the_settings_it_does_not_hold) {
    temp_dir dir;
    for (const auto& row : table()) {
        if (row.yaml || !row.at) continue;
        json doc;
        doc[json::json_pointer(pointer_of(row.key))] = "x";
        const auto path = dir.write_file("c.yaml", doc.dump());
        try {
            resolve({{{"REDIS_ADDR", "cache"}, {"REDIS_SIDECAR_CONFIG", path}}, {}});
            ADD_FAILURE() << row.key << " was accepted in YAML";
        } catch (const config_error& e) {
            EXPECT_EQ(std::string(e.what()), path + ": unknown key '" + std::string(row.key) + "'");
        }
    }
}

TEST(table, help_names_every_flag_within_100_columns) {
    const auto help = flags_help();
    for (const auto& row : table()) {
        if (!row.flag.empty()) {
            EXPECT_NE(help.find("  " + std::string(row.flag)), std::string::npos);
        }
    }
    std::istringstream lines(help);
    for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 100u) << line;
    EXPECT_NE(help.find("--db VALUE"), std::string::npos) << help;
    EXPECT_NE(help.find("--tls-enabled[=BOOL]"), std::string::npos) << help;
    EXPECT_NE(help.find("(REDIS_MAX_CONNECTIONS; default 128)"), std::string::npos) << help;
}

TEST(table, watched_directories_are_where_configuration_is_read) {
    temp_dir secrets;
    temp_dir files;
    temp_dir other;
    const auto pw = files.write_file("pw", "password-0123456789");
    const auto yaml = files.write_file("c.yaml", "log: {level: info}\n");
    const auto unrelated = other.write_file("token", "x");
    const inputs in{{{"REDIS_ADDR", "cache"},
                     {"REDIS_PASSWORD_FILE", pw},
                     {"AWS_WEB_IDENTITY_TOKEN_FILE", unrelated}},
                    {"--secrets-dir=" + secrets.path(), "--config", yaml}};
    const auto dirs = watched_directories(in);
    EXPECT_EQ(std::set<std::string>(dirs.begin(), dirs.end()),
              (std::set<std::string>{secrets.path(), files.path()}));
    EXPECT_TRUE(watched_directories({{{"REDIS_ADDR", "cache"}}, {}}).empty());
}

// README.md lists every setting between markers; on a mismatch the message is the table to
// paste there.
TEST(table, readme_lists_every_setting) {
    const settings defaults;
    const auto code = [](std::string_view s) { return "`" + std::string(s) + "`"; };
    std::ostringstream out;
    out << "| key | flag | environment | secrets file | YAML | default | meaning |\n"
        << "|---|---|---|---|---|---|---|\n";
    for (const auto& row : table()) {
        std::string variables;
        for (const auto var : row.env) variables += (variables.empty() ? "" : ", ") + code(var);
        std::string fallback;
        if (!row.default_from.empty()) {
            fallback = code(row.default_from);
        } else if (row.at && !json_of(row, defaults).is_null()) {
            const auto d = json_of(row, defaults);
            fallback = code(d.is_string() ? d.get<std::string>() : d.dump());
        }
        std::string meaning(row.help);
        for (std::size_t i = 0; i < row.choices.size(); ++i) {
            meaning += (i == 0 ? "; one of " : ", ") + code(row.choices[i]);
        }
        out << "| " << code(row.key) << (row.secret ? " (secret)" : "") << " | "
            << (row.flag.empty() ? "" : code(row.flag)) << " | " << variables << " | "
            << (row.secret_file.empty() ? "" : code(row.secret_file)) << " | "
            << (row.yaml ? "yes" : "") << " | " << fallback << " | " << meaning << " |\n";
    }
    std::ifstream in(std::string(REDIS_SIDECAR_SOURCE_DIR) + "/README.md");
    ASSERT_TRUE(in) << "README.md is missing";
    const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string begin = "<!-- settings:begin -->\n";
    const std::string end = "<!-- settings:end -->";
    const auto b = doc.find(begin);
    const auto e = doc.find(end);
    ASSERT_NE(b, std::string::npos);
    ASSERT_NE(e, std::string::npos);
    EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), out.str())
        << "paste this between the markers of README.md:\n"
        << out.str();
}

}  // namespace
}  // namespace redis_sidecar::config
