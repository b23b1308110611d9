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

namespace {

// The region an endpoint's region label names: a region as is ("eu-west-1"), or the short code
// ElastiCache puts in endpoint names ("use1", "euc1"); "" when unknown.
std::string region_of_label(std::string_view label) {
    static constexpr std::pair<std::string_view, std::string_view> codes[] = {
        {"use1", "us-east-1"},       {"use2", "us-east-2"},       {"usw1", "us-west-1"},
        {"usw2", "us-west-2"},       {"cac1", "ca-central-1"},    {"caw1", "ca-west-1"},
        {"sae1", "sa-east-1"},       {"euw1", "eu-west-1"},       {"euw2", "eu-west-2"},
        {"euw3", "eu-west-3"},       {"euc1", "eu-central-1"},    {"euc2", "eu-central-2"},
        {"eun1", "eu-north-1"},      {"eus1", "eu-south-1"},      {"eus2", "eu-south-2"},
        {"aps1", "ap-south-1"},      {"aps2", "ap-south-2"},      {"apse1", "ap-southeast-1"},
        {"apse2", "ap-southeast-2"}, {"apse3", "ap-southeast-3"}, {"apse4", "ap-southeast-4"},
        {"apne1", "ap-northeast-1"}, {"apne2", "ap-northeast-2"}, {"apne3", "ap-northeast-3"},
        {"ape1", "ap-east-1"},       {"afs1", "af-south-1"},      {"mes1", "me-south-1"},
        {"mec1", "me-central-1"},    {"ilc1", "il-central-1"},    {"cnn1", "cn-north-1"},
        {"cnw1", "cn-northwest-1"},  {"usgw1", "us-gov-west-1"},  {"usge1", "us-gov-east-1"}};
    for (const auto& [code, region] : codes) {
        if (label == code) return std::string(region);
    }
    // A region itself: letters, '-', letters (or more '-' parts), '-', digits.
    const auto last_dash = label.rfind('-');
    const bool looks_like_region =
        label.find('-') < last_dash && last_dash + 1 < label.size() &&
        std::all_of(label.begin() + static_cast<std::ptrdiff_t>(last_dash) + 1, label.end(),
                    [](unsigned char c) { return std::isdigit(c) != 0; }) &&
        std::all_of(label.begin(), label.begin() + static_cast<std::ptrdiff_t>(last_dash),
                    [](unsigned char c) { return std::islower(c) != 0 || c == '-'; });
    return looks_like_region ? std::string(label) : std::string();
}

}  // namespace

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
                                    region_of_label(labels[2])};
    }
    // <master|replica|clustercfg|node>.<rg>.<id>.<az code>
    if (labels.size() == 4) {
        return elasticache_endpoint{std::string(labels[1]), false, region_of_label(labels[3])};
    }
    return std::nullopt;
}

}  // namespace redis_sidecar::config
