#pragma once

// A small, strict parser of the Prometheus text exposition format 0.0.4, written for the tests
// so that render()'s output is checked by something other than the code that wrote it. Stricter
// than Prometheus: comment lines other than HELP/TYPE, blank lines, timestamps and a missing
// final newline are errors, because render() never writes them.

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace redis_sidecar::metrics::text_format {

struct sample {
    std::string name;                           ///< as written (may end in _bucket/_sum/_count)
    std::map<std::string, std::string> labels;  ///< unescaped
    double value = 0;
};

struct family_text {
    std::string name;
    std::string help;  ///< unescaped
    std::string type;
    std::vector<sample> samples;
};

struct document {
    std::vector<family_text> families;  ///< in order of appearance

    const family_text* find(std::string_view name) const {
        for (const auto& f : families) {
            if (f.name == name) return &f;
        }
        return nullptr;
    }
};

struct parse_result {
    std::optional<document> doc;
    std::string error;  ///< "line N: what" when doc is empty
};

namespace detail {

inline bool is_name_start(char c, bool allow_colon) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (allow_colon && c == ':');
}
inline bool is_name_char(char c, bool allow_colon) {
    return is_name_start(c, allow_colon) || (c >= '0' && c <= '9');
}

// Reads a metric (allow_colon) or label name at `pos`.
inline std::optional<std::string> read_name(std::string_view line, std::size_t& pos,
                                            bool allow_colon) {
    const std::size_t start = pos;
    if (pos >= line.size() || !is_name_start(line[pos], allow_colon)) return std::nullopt;
    while (pos < line.size() && is_name_char(line[pos], allow_colon)) ++pos;
    return std::string(line.substr(start, pos - start));
}

inline std::optional<double> parse_value(std::string_view text) {
    if (text == "+Inf") return HUGE_VAL;
    if (text == "-Inf") return -HUGE_VAL;
    if (text == "NaN") return std::nan("");
    if (text.empty()) return std::nullopt;
    for (char c : text) {
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
            return std::nullopt;
        }
    }
    const std::string s(text);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size()) return std::nullopt;
    return v;
}

// Unescapes HELP text (\\ and \n only) or a label value (also \").
inline std::optional<std::string> unescape(std::string_view text, bool quote_allowed) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n') return std::nullopt;
        if (text[i] != '\\') {
            out += text[i];
            continue;
        }
        if (++i == text.size()) return std::nullopt;
        switch (text[i]) {
            case '\\':
                out += '\\';
                break;
            case 'n':
                out += '\n';
                break;
            case '"':
                if (!quote_allowed) return std::nullopt;
                out += '"';
                break;
            default:
                return std::nullopt;
        }
    }
    return out;
}

inline std::string base_name(const std::string& sample_name, const std::string& type) {
    if (type != "histogram") return sample_name;
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        if (sample_name.size() > suffix.size() &&
            sample_name.compare(sample_name.size() - suffix.size(), suffix.size(), suffix) == 0) {
            return sample_name.substr(0, sample_name.size() - suffix.size());
        }
    }
    return sample_name;
}

inline std::string check_histogram(const family_text& f) {
    // Group by the labels other than le.
    struct series {
        std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
        std::optional<double> sum, count;
    };
    std::map<std::map<std::string, std::string>, series> groups;
    for (const auto& s : f.samples) {
        auto labels = s.labels;
        if (s.name == f.name + "_bucket") {
            const auto le = labels.find("le");
            if (le == labels.end()) return s.name + ": bucket without le";
            const auto bound = parse_value(le->second);
            if (!bound) return s.name + ": bad le \"" + le->second + "\"";
            labels.erase(le);
            groups[labels].buckets.emplace_back(*bound, s.value);
        } else if (s.name == f.name + "_sum" || s.name == f.name + "_count") {
            if (labels.count("le") != 0) return s.name + ": le outside a bucket";
            auto& slot = s.name == f.name + "_sum" ? groups[labels].sum : groups[labels].count;
            if (slot) return s.name + ": repeated";
            slot = s.value;
        } else {
            return s.name + ": not a histogram sample name";
        }
    }
    for (const auto& [labels, g] : groups) {
        if (g.buckets.empty()) return f.name + ": no buckets";
        if (!g.sum || !g.count) return f.name + ": missing _sum or _count";
        for (std::size_t i = 1; i < g.buckets.size(); ++i) {
            if (!(g.buckets[i].first > g.buckets[i - 1].first))
                return f.name + ": le not increasing";
            if (g.buckets[i].second < g.buckets[i - 1].second) return f.name + ": not cumulative";
        }
        if (!std::isinf(g.buckets.back().first) || g.buckets.back().first < 0) {
            return f.name + ": last bucket is not +Inf";
        }
        if (g.buckets.back().second != *g.count) return f.name + ": +Inf bucket != _count";
    }
    return {};
}

}  // namespace detail

/// Parses `text`; on the first violation returns the line number and what is wrong.
inline parse_result parse(std::string_view text) {
    using namespace detail;
    document doc;
    std::set<std::string> closed;  // families whose block has ended
    std::set<std::string> series_seen;
    family_text* current = nullptr;
    std::size_t line_no = 0;
    auto fail = [&](const std::string& what) {
        return parse_result{std::nullopt, "line " + std::to_string(line_no) + ": " + what};
    };
    if (!text.empty() && text.back() != '\n') return fail("no final newline");

    while (!text.empty()) {
        ++line_no;
        const std::size_t eol = text.find('\n');
        const std::string_view line = text.substr(0, eol);
        text.remove_prefix(eol + 1);
        if (line.empty()) return fail("blank line");

        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            const bool help = line[2] == 'H';
            std::size_t pos = 7;
            const auto name = read_name(line, pos, true);
            if (!name || pos >= line.size() || line[pos] != ' ') return fail("bad metadata name");
            const std::string_view rest = line.substr(pos + 1);
            if (current == nullptr || current->name != *name) {
                if (closed.count(*name) != 0) return fail(*name + ": family appears twice");
                if (current != nullptr) closed.insert(current->name);
                doc.families.push_back(family_text{*name, {}, {}, {}});
                current = &doc.families.back();
            }
            if (!current->samples.empty()) return fail(*name + ": metadata after samples");
            if (help) {
                if (!current->help.empty()) return fail(*name + ": HELP twice");
                const auto h = unescape(rest, false);
                if (!h || h->empty()) return fail(*name + ": bad HELP text");
                current->help = *h;
            } else {
                if (!current->type.empty()) return fail(*name + ": TYPE twice");
                if (rest != "counter" && rest != "gauge" && rest != "histogram" &&
                    rest != "summary" && rest != "untyped") {
                    return fail(*name + ": bad TYPE " + std::string(rest));
                }
                current->type = std::string(rest);
            }
            continue;
        }
        if (line.starts_with("#")) return fail("comment that is not HELP or TYPE");

        sample s;
        std::size_t pos = 0;
        const auto name = read_name(line, pos, true);
        if (!name) return fail("bad sample name");
        s.name = *name;
        std::string series_id = s.name;
        if (pos < line.size() && line[pos] == '{') {
            ++pos;
            bool first = true;
            while (true) {
                if (pos < line.size() && line[pos] == '}') {
                    ++pos;
                    break;
                }
                if (!first) {
                    if (pos >= line.size() || line[pos] != ',') return fail("expected , or }");
                    ++pos;
                }
                first = false;
                const auto label = read_name(line, pos, false);
                if (!label) return fail("bad label name");
                if (line.substr(pos, 2) != "=\"") return fail("expected =\" after label name");
                pos += 2;
                std::size_t end = pos;
                while (end < line.size() && line[end] != '"') end += line[end] == '\\' ? 2 : 1;
                if (end >= line.size()) return fail("unterminated label value");
                const auto value = unescape(line.substr(pos, end - pos), true);
                if (!value) return fail("bad escape in label value");
                if (!s.labels.emplace(*label, *value).second) return fail("repeated label");
                pos = end + 1;
            }
            for (const auto& [k, v] : s.labels) series_id += "\x1f" + k + "\x1e" + v;
        }
        if (pos >= line.size() || line[pos] != ' ') return fail("expected a space before value");
        const auto value = parse_value(line.substr(pos + 1));
        if (!value) return fail("bad value (or a timestamp)");
        s.value = *value;

        if (current == nullptr || current->type.empty() || current->help.empty()) {
            return fail(s.name + ": sample without HELP and TYPE");
        }
        if (base_name(s.name, current->type) != current->name) {
            return fail(s.name + ": sample outside its family's block");
        }
        if (current->type == "counter" && !(s.value >= 0)) return fail(s.name + ": bad counter");
        if (!series_seen.insert(series_id).second) return fail(s.name + ": repeated series");
        current->samples.push_back(std::move(s));
    }
    for (const auto& f : doc.families) {
        if (f.help.empty() || f.type.empty()) return fail(f.name + ": HELP or TYPE missing");
        if (f.type == "histogram") {
            if (const auto e = check_histogram(f); !e.empty()) return fail(e);
        }
    }
    return parse_result{std::move(doc), {}};
}

}  // namespace redis_sidecar::metrics::text_format
