#include "redis_sidecar/config/values.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <vector>

namespace redis_sidecar::config {

namespace {

bool is_space(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

constexpr std::chrono::milliseconds max_duration = std::chrono::hours(24);

}  // namespace

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

std::optional<bool> parse_bool(std::string_view s) {
    s = trim(s);
    for (auto t : {"true", "1", "yes", "on"}) {
        if (iequals(s, t)) return true;
    }
    for (auto f : {"false", "0", "no", "off"}) {
        if (iequals(s, f)) return false;
    }
    return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
    s = trim(s);
    double scale_ms = 1000.0;  // a bare number is seconds
    auto strip = [&s](std::string_view suffix) {
        if (s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix) {
            s.remove_suffix(suffix.size());
            return true;
        }
        return false;
    };
    if (strip("ms")) {
        scale_ms = 1.0;
    } else if (strip("s")) {
        scale_ms = 1000.0;
    } else if (strip("m")) {
        scale_ms = 60'000.0;
    } else if (strip("h")) {
        scale_ms = 3'600'000.0;
    }
    if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front()))) return std::nullopt;
    // Digits with an optional fraction ("1.5"), parsed here: std::from_chars for double would
    // pull libm into the binary (see REDIS_SIDECAR_STATIC_DEPS in CMakeLists.txt).
    double number = 0;
    std::size_t i = 0;
    for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
        number = number * 10 + (s[i] - '0');
    }
    if (i < s.size() && s[i] == '.') {
        double place = 0.1;
        for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
            number += (s[i] - '0') * place;
            place /= 10;
        }
    }
    if (i != s.size() || !std::isfinite(number)) return std::nullopt;
    const double ms = number * scale_ms;
    if (ms > static_cast<double>(max_duration.count())) return std::nullopt;
    // ms is finite and ≥ 0: rounds half up like llround, without libm (and without ms + 0.5,
    // which rounds 0.49999999999999994 up).
    auto whole = static_cast<long long>(ms);
    if (ms - static_cast<double>(whole) >= 0.5) ++whole;
    return std::chrono::milliseconds(whole);
}

std::string format_duration(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
    return std::to_string(d.count()) + "ms";
}

std::optional<std::uint64_t> parse_uint(std::string_view s, std::uint64_t min, std::uint64_t max) {
    s = trim(s);
    if (s.empty() || s.size() > 19) return std::nullopt;
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size() || value < min || value > max) {
        return std::nullopt;
    }
    return value;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
    auto v = parse_uint(s, 1, 65535);
    if (!v) return std::nullopt;
    return static_cast<std::uint16_t>(*v);
}

std::optional<std::pair<std::uint16_t, std::uint16_t>> parse_port_range(std::string_view s) {
    const auto dash = s.find('-');
    const auto first = parse_port(s.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : parse_port(s.substr(dash + 1));
    if (!first || !last || *last < *first) return std::nullopt;
    return std::pair{*first, *last};
}

std::optional<elasticache_endpoint> parse_elasticache_endpoint(std::string_view host) {
    std::string name(host);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!name.empty() && name.back() == '.') name.pop_back();
    std::string_view rest;
    for (const std::string_view suffix : {".cache.amazonaws.com", ".cache.amazonaws.com.cn"}) {
        if (name.size() > suffix.size() &&
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
            rest = std::string_view(name).substr(0, name.size() - suffix.size());
        }
    }
    std::vector<std::string_view> labels;
    while (!rest.empty()) {
        const auto dot = rest.find('.');
        labels.push_back(rest.substr(0, dot));
        rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
    }
    if (std::any_of(labels.begin(), labels.end(), [](auto l) { return l.empty(); })) {
        return std::nullopt;
    }
    // <name>-<id>.serverless.<region>
    if (labels.size() == 3 && labels[1] == "serverless") {
        const auto dash = labels[0].rfind('-');
        if (dash == std::string_view::npos || dash == 0) return std::nullopt;
        return elasticache_endpoint{std::string(labels[0].substr(0, dash)), true,
                                    std::string(labels[2])};
    }
    // <master|replica|clustercfg|node>.<rg>.<id>.<az code>
    if (labels.size() == 4) return elasticache_endpoint{std::string(labels[1]), false, {}};
    return std::nullopt;
}

}  // namespace redis_sidecar::config
