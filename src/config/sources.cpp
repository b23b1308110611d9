#include "sources.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

#include <yaml-cpp/yaml.h>

#include "redis_sidecar/config/values.hpp"

namespace redis_sidecar::config {
namespace detail {

namespace {

std::string directory_of(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// The YAML file has the shape of `config`'s JSON without "sources"; its leaves are the rows
// marked yaml.
bool is_yaml_key(std::string_view key) {
    const auto rows = table();
    return std::any_of(rows.begin(), rows.end(),
                       [&](const setting& row) { return row.yaml && row.key == key; });
}

bool is_prefix_of_key(const std::string& prefix) {
    const auto rows = table();
    return std::any_of(rows.begin(), rows.end(), [&](const setting& row) {
        return row.yaml && row.key.starts_with(prefix + ".");
    });
}

void flatten(const YAML::Node& node, const std::string& prefix, const std::string& path,
             std::map<std::string, std::string, std::less<>>& out) {
    for (const auto& item : node) {
        const auto name = item.first.as<std::string>();
        const auto key = prefix.empty() ? name : prefix + "." + name;
        const auto& value = item.second;
        if (value.IsMap()) {
            if (!is_prefix_of_key(key)) {
                throw config_error(path + ": unknown key '" + key + "'");
            }
            flatten(value, key, path, out);
        } else if (!is_yaml_key(key)) {
            throw config_error(path + ": unknown key '" + key + "'");
        } else if (value.IsSequence()) {
            throw config_error(path + ": '" + key + "' must be a single value, not a list");
        } else if (value.IsScalar()) {
            out[key] = value.Scalar();
        }  // null: as if absent
    }
}

}  // namespace

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

source_reader::source_reader(const inputs& in) : in_(in), flags_(parse_flags(in.args)) {
    if (auto dir = flag_or_env(setting_for("secrets_dir"))) {
        struct stat st {};
        if (::stat(dir->text.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            throw config_error(dir->from.name + ": " + dir->text + " is not a readable directory");
        }
        secrets_dir_ = dir->text;
    }
    if (auto file = flag_or_env(setting_for("config_file"))) load_yaml(file->text);
}

std::map<std::string, std::string, std::less<>> parse_flags(const std::vector<std::string>& args) {
    std::map<std::string, std::string, std::less<>> flags;
    const auto rows = table();
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        std::string_view name = arg;
        std::optional<std::string> value;
        if (const auto eq = arg.find('='); eq != std::string_view::npos) {
            name = arg.substr(0, eq);
            value = std::string(arg.substr(eq + 1));
        }
        const auto row = std::find_if(rows.begin(), rows.end(), [&](const setting& s) {
            return !s.flag.empty() && name == s.flag;
        });
        if (row == rows.end()) {
            throw config_error("unknown flag " + std::string(name) + " (see --help)");
        }
        if (!value) {
            const bool next_is_value = i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0;
            if (takes_bare_flag(*row) && !(next_is_value && parse_bool(args[i + 1]))) {
                value = "true";
            } else if (next_is_value) {
                value = args[++i];
            } else {
                throw config_error("flag " + std::string(name) + " needs a value");
            }
        }
        flags[std::string(name)] = *value;
    }
    return flags;
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
    yaml_path_ = path;
    if (root.IsNull()) return;
    if (!root.IsMap()) throw config_error(path + ": expected a mapping at the top level");
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

std::optional<raw> source_reader::env(std::string_view name_view) const {
    const std::string name(name_view);
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

std::optional<raw> source_reader::secret_file(std::string_view file,
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

std::optional<raw> source_reader::secret_path(std::string_view file) const {
    if (secrets_dir_.empty()) return std::nullopt;
    const auto path = secrets_dir_ + "/" + std::string(file);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return raw{path, {"file:" + path, path}};
}

std::optional<raw> source_reader::yaml(std::string_view key) const {
    const auto it = yaml_.find(key);
    if (it == yaml_.end()) return std::nullopt;
    auto text = std::string(trim(it->second));
    if (text.empty()) return std::nullopt;
    return raw{std::move(text), {"yaml:" + yaml_path_, yaml_path_ + ": " + it->first}};
}

std::optional<raw> source_reader::flag_or_env(const setting& row) const {
    if (auto v = flag(row.flag)) return v;
    for (const auto var : row.env) {
        if (auto v = env(var)) return v;
    }
    return std::nullopt;
}

}  // namespace detail

std::vector<std::string> watched_directories(const inputs& in) {
    const detail::source_reader src(in);
    std::set<std::string> dirs;
    for (const auto& row : table()) {
        for (const auto var : row.env) {
            const auto file = in.env.find(std::string(var) + "_FILE");
            if (file != in.env.end() && !trim(file->second).empty()) {
                dirs.insert(detail::directory_of(std::string(trim(file->second))));
            }
        }
    }
    if (!src.secrets_dir().empty()) dirs.insert(src.secrets_dir());
    if (!src.yaml_path().empty()) dirs.insert(detail::directory_of(src.yaml_path()));
    return {dirs.begin(), dirs.end()};
}

}  // namespace redis_sidecar::config
