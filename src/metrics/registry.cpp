#include "redis_sidecar/metrics/registry.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <system_error>

namespace redis_sidecar::metrics {

namespace {

// Longest "%.17g" of a double: 24 characters.
constexpr std::size_t double_chars = 32;

void append_labels(std::string& out, const family& f, const std::vector<std::string>& values,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
    const std::size_t n = f.label_count();
    if (n == 0 && extra_name.empty()) return;
    out += '{';
    for (std::size_t i = 0; i < n; ++i) {
        if (i > 0) out += ',';
        out += f.labels[i];
        out += "=\"";
        out += escape_label_value(values[i]);
        out += '"';
    }
    if (!extra_name.empty()) {
        if (n > 0) out += ',';
        out += extra_name;
        out += "=\"";
        out += extra_value;  // only ever a formatted number
        out += '"';
    }
    out += '}';
}

void append_sample(std::string& out, const family& f, std::string_view suffix,
                   const std::vector<std::string>& values, double value,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
    out += f.name;
    out += suffix;
    append_labels(out, f, values, extra_name, extra_value);
    out += ' ';
    out += format_value(value);
    out += '\n';
}

}  // namespace

std::string_view name(metric_type t) {
    switch (t) {
        case metric_type::counter:
            return "counter";
        case metric_type::gauge:
            return "gauge";
        case metric_type::histogram:
            return "histogram";
    }
    return "untyped";
}

std::string_view name(status s) {
    switch (s) {
        case status::ok:
            return "ok";
        case status::unknown_family:
            return "unknown_family";
        case status::wrong_type:
            return "wrong_type";
        case status::wrong_labels:
            return "wrong_labels";
        case status::invalid_value:
            return "invalid_value";
    }
    return "unknown";
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    // snprintf and strtod, not std::to_chars: libstdc++'s to_chars(double) pulls libm into the
    // binary (see REDIS_SIDECAR_STATIC_DEPS). The program never calls setlocale: "C" formatting.
    char buf[double_chars];
    if (v > -1e15 && v < 1e15 && static_cast<double>(static_cast<long long>(v)) == v) {
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
        return buf;
    }
    for (int precision = 15; precision < 17; ++precision) {  // the shortest that reads back
        std::snprintf(buf, sizeof buf, "%.*g", precision, v);
        if (std::strtod(buf, nullptr) == v) return buf;
    }
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string escape_help(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
    return out;
}

registry::registry(std::span<const family* const> families) {
    families_.reserve(families.size());
    for (const family* f : families) families_.push_back(family_values{f, {}, {}});
}

status registry::refuse(status s, std::string_view family_name) {
    ++misuses_;
    last_misuse_ = std::string(name(s)) + ": " + std::string(family_name);
    return s;
}

status registry::find(std::string_view family_name, std::initializer_list<label> labels,
                      metric_type expected, family_values*& out, std::vector<std::string>& key) {
    const auto it = std::find_if(families_.begin(), families_.end(), [&](const family_values& v) {
        return v.declared->name == family_name;
    });
    if (it == families_.end()) return status::unknown_family;
    const family& f = *it->declared;
    const bool histogram = f.type == metric_type::histogram;
    if (histogram != (expected == metric_type::histogram)) return status::wrong_type;

    const std::size_t n = f.label_count();
    if (labels.size() != n) return status::wrong_labels;
    key.assign(n, std::string());
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t matches = 0;
        for (const label& l : labels) {
            if (l.name != f.labels[i]) continue;
            ++matches;
            key[i] = std::string(l.value);
        }
        if (matches != 1) return status::wrong_labels;
    }
    out = &*it;
    return status::ok;
}

status registry::set(std::string_view family_name, std::initializer_list<label> labels,
                     double value) {
    family_values* values = nullptr;
    std::vector<std::string> key;
    if (const auto s = find(family_name, labels, metric_type::counter, values, key);
        s != status::ok) {
        return refuse(s, family_name);
    }
    if (values->declared->type == metric_type::counter && !(value >= 0)) {
        return refuse(status::invalid_value, family_name);
    }
    auto& samples = values->samples;
    if (samples.size() >= max_series_per_family && samples.find(key) == samples.end()) {
        return refuse(status::invalid_value, family_name);
    }
    samples[std::move(key)] = value;
    return status::ok;
}

status registry::set_histogram(std::string_view family_name, std::initializer_list<label> labels,
                               std::span<const double> bounds,
                               std::span<const std::uint64_t> counts, double sum) {
    family_values* values = nullptr;
    std::vector<std::string> key;
    if (const auto s = find(family_name, labels, metric_type::histogram, values, key);
        s != status::ok) {
        return refuse(s, family_name);
    }
    const bool bounds_ok =
        bounds.size() <= max_buckets && counts.size() == bounds.size() + 1 &&
        std::all_of(bounds.begin(), bounds.end(), [](double b) { return std::isfinite(b); }) &&
        std::adjacent_find(bounds.begin(), bounds.end(), std::greater_equal<>()) == bounds.end();
    if (!bounds_ok || std::isnan(sum)) return refuse(status::invalid_value, family_name);
    auto& series = values->histograms;
    if (series.size() >= max_series_per_family && series.find(key) == series.end()) {
        return refuse(status::invalid_value, family_name);
    }
    series[std::move(key)] =
        histogram_value{{bounds.begin(), bounds.end()}, {counts.begin(), counts.end()}, sum};
    return status::ok;
}

void registry::clear() {
    for (auto& v : families_) {
        v.samples.clear();
        v.histograms.clear();
    }
}

std::string registry::render() const {
    std::string out;
    for (const auto& v : families_) {
        if (v.samples.empty() && v.histograms.empty()) continue;
        const family& f = *v.declared;
        out += "# HELP ";
        out += f.name;
        out += ' ';
        out += escape_help(f.help);
        out += "\n# TYPE ";
        out += f.name;
        out += ' ';
        out += name(f.type);
        out += '\n';
        for (const auto& [key, value] : v.samples) append_sample(out, f, "", key, value);
        for (const auto& [key, h] : v.histograms) {
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i < h.bounds.size(); ++i) {
                cumulative += h.counts[i];
                append_sample(out, f, "_bucket", key, static_cast<double>(cumulative), "le",
                              format_value(h.bounds[i]));
            }
            cumulative += h.counts.back();
            append_sample(out, f, "_bucket", key, static_cast<double>(cumulative), "le", "+Inf");
            append_sample(out, f, "_sum", key, h.sum);
            append_sample(out, f, "_count", key, static_cast<double>(cumulative));
        }
    }
    return out;
}

}  // namespace redis_sidecar::metrics
