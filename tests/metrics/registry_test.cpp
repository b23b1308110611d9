#include "redis_sidecar/metrics/registry.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "text_format_parser.hpp"

namespace redis_sidecar::metrics {
namespace {

namespace tf = text_format;

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr std::array<double, 3> small_bounds = {0.001, 0.5, 2.5};

// Families to exercise the registry with: one of each shape (the sidecar's real list is
// app::all_families(), checked in exports_test.cpp).
constexpr family upstream_up{"redis_sidecar_upstream_up", metric_type::gauge,
                             "1 when at least one healthy upstream connection is open."};
constexpr family clients{"redis_sidecar_clients", metric_type::gauge, "Local clients connected."};
constexpr family upstream_connects{"redis_sidecar_upstream_connects_total", metric_type::counter,
                                   "Upstream connections opened successfully."};
constexpr family upstream_connect_failures{"redis_sidecar_upstream_connect_failures_total",
                                           metric_type::counter,
                                           "Upstream connection attempts that failed.",
                                           {"class"}};
constexpr family upstream_recycles{"redis_sidecar_upstream_recycles_total",
                                   metric_type::counter,
                                   "Upstream connections returned to the pool.",
                                   {"kind"}};
constexpr family upstream_handshake_duration{
    "redis_sidecar_upstream_handshake_duration_seconds", metric_type::histogram,
    "Time to open an upstream connection: DNS, TCP, TLS, HELLO/AUTH and PING."};
constexpr family build_info{"redis_sidecar_build_info",
                            metric_type::gauge,
                            "Always 1; the sidecar's version as a label.",
                            {"version"}};
constexpr family probe_requests{"redis_sidecar_probe_requests_total",
                                metric_type::counter,
                                "Probe requests served, by probe and HTTP status code.",
                                {"probe", "code"}};
constexpr std::array<const family*, 8> all_families = {
    &upstream_handshake_duration, &upstream_up,       &clients,    &upstream_connects,
    &upstream_connect_failures,   &upstream_recycles, &build_info, &probe_requests};

// Fills every declared family with one or two samples (label values chosen per label name).
registry filled() {
    registry r(all_families);
    for (const family* f : all_families) {
        const std::size_t n = f->label_count();
        if (f->type == metric_type::histogram) {
            const std::array<std::uint64_t, 4> counts = {1, 2, 0, 3};
            EXPECT_EQ(r.set_histogram(*f, small_bounds, counts, 12.5), status::ok) << f->name;
        } else if (n == 0) {
            EXPECT_EQ(r.set(*f, 7), status::ok) << f->name;
        } else if (n == 1) {
            EXPECT_EQ(r.set(*f, {{f->labels[0], "a"}}, 1), status::ok) << f->name;
            EXPECT_EQ(r.set(*f, {{f->labels[0], "b"}}, 0), status::ok) << f->name;
        } else {
            EXPECT_EQ(r.set(*f, {{f->labels[0], "x"}, {f->labels[1], "200"}}, 3), status::ok);
            EXPECT_EQ(r.set(*f, {{f->labels[1], "503"}, {f->labels[0], "x"}}, 4), status::ok);
        }
    }
    return r;
}

// --- values and escaping -----------------------------------------------------------------------

struct value_case {
    double value;
    const char* text;
};

class format_value_test : public ::testing::TestWithParam<value_case> {};

TEST_P(format_value_test, formats_per_spec_and_reads_back) {
    const auto& c = GetParam();
    EXPECT_EQ(format_value(c.value), c.text);
    const auto back = tf::detail::parse_value(format_value(c.value));
    ASSERT_TRUE(back.has_value());
    if (std::isnan(c.value)) {
        EXPECT_TRUE(std::isnan(*back));
    } else {
        EXPECT_EQ(*back, c.value);
    }
}

INSTANTIATE_TEST_SUITE_P(
    table, format_value_test,
    ::testing::Values(value_case{0, "0"}, value_case{1, "1"}, value_case{42, "42"},
                      value_case{0.5, "0.5"}, value_case{0.001, "0.001"},
                      value_case{0.0025, "0.0025"}, value_case{-0.25, "-0.25"},
                      value_case{1e20, "1e+20"}, value_case{1712345678, "1712345678"},
                      value_case{1712345678.25, "1712345678.25"},
                      value_case{18446744073709551615.0, "1.8446744073709552e+19"},
                      value_case{0.1, "0.1"}, value_case{1.0 / 3, "0.3333333333333333"},
                      value_case{-7, "-7"}, value_case{123456.789, "123456.789"},
                      value_case{inf, "+Inf"}, value_case{-inf, "-Inf"},
                      value_case{std::numeric_limits<double>::quiet_NaN(), "NaN"}));

TEST(escaping, label_values_and_help) {
    EXPECT_EQ(escape_label_value(R"(a\b"c)"
                                 "\n"
                                 "d"),
              R"(a\\b\"c\nd)");
    EXPECT_EQ(escape_label_value("plain ünïcode {}=,"), "plain ünïcode {}=,");
    EXPECT_EQ(escape_help("a\\b\"c\nd"), R"(a\\b"c\nd)");
}

TEST(escaping, label_values_round_trip_through_the_parser) {
    const std::vector<std::string> values = {"",
                                             "plain",
                                             "back\\slash",
                                             "quo\"te",
                                             "new\nline",
                                             "\\\"\n\\n\\\"",
                                             "trailing\\",
                                             "\"",
                                             "{a=\"b\"}",
                                             "ümlaut ✓",
                                             std::string("tab\tand\rcr")};
    registry r(all_families);
    for (const auto& v : values) ASSERT_EQ(r.set(build_info, {{"version", v}}, 1), status::ok);
    const auto parsed = tf::parse(r.render());
    ASSERT_TRUE(parsed.doc) << parsed.error << "\n" << r.render();
    const auto* f = parsed.doc->find("redis_sidecar_build_info");
    ASSERT_NE(f, nullptr);
    std::set<std::string> seen;
    for (const auto& s : f->samples) seen.insert(s.labels.at("version"));
    EXPECT_EQ(seen, std::set<std::string>(values.begin(), values.end()));
}

TEST(escaping, help_text_round_trips_through_the_parser) {
    static constexpr family odd{"redis_sidecar_odd", metric_type::gauge,
                                "Back\\slash, \"quotes\" and a\nnew line."};
    static constexpr std::array<const family*, 1> list = {&odd};
    registry r(list);
    ASSERT_EQ(r.set(odd, 1), status::ok);
    EXPECT_EQ(r.render(),
              "# HELP redis_sidecar_odd Back\\\\slash, \"quotes\" and a\\nnew line.\n"
              "# TYPE redis_sidecar_odd gauge\n"
              "redis_sidecar_odd 1\n");
    const auto parsed = tf::parse(r.render());
    ASSERT_TRUE(parsed.doc) << parsed.error;
    EXPECT_EQ(parsed.doc->families.at(0).help, odd.help);
}

// --- rendering ---------------------------------------------------------------------------------

TEST(render, exact_text_for_a_small_registry) {
    registry r(all_families);
    ASSERT_EQ(r.set(probe_requests, {{"code", "503"}, {"probe", "readyz"}}, 2), status::ok);
    ASSERT_EQ(r.set(probe_requests, {{"probe", "livez"}, {"code", "200"}}, 10), status::ok);
    ASSERT_EQ(r.set(upstream_up, 1), status::ok);
    ASSERT_EQ(r.set(upstream_up, 0), status::ok);  // replaces
    const std::array<std::uint64_t, 4> counts = {1, 2, 0, 3};
    ASSERT_EQ(r.set_histogram(upstream_handshake_duration, small_bounds, counts, 12.5), status::ok);
    EXPECT_EQ(r.render(),
              "# HELP redis_sidecar_upstream_handshake_duration_seconds Time to open an upstream "
              "connection: DNS, TCP, TLS, HELLO/AUTH and PING.\n"
              "# TYPE redis_sidecar_upstream_handshake_duration_seconds histogram\n"
              "redis_sidecar_upstream_handshake_duration_seconds_bucket{le=\"0.001\"} 1\n"
              "redis_sidecar_upstream_handshake_duration_seconds_bucket{le=\"0.5\"} 3\n"
              "redis_sidecar_upstream_handshake_duration_seconds_bucket{le=\"2.5\"} 3\n"
              "redis_sidecar_upstream_handshake_duration_seconds_bucket{le=\"+Inf\"} 6\n"
              "redis_sidecar_upstream_handshake_duration_seconds_sum 12.5\n"
              "redis_sidecar_upstream_handshake_duration_seconds_count 6\n"
              "# HELP redis_sidecar_upstream_up 1 when at least one healthy upstream connection "
              "is open.\n"
              "# TYPE redis_sidecar_upstream_up gauge\n"
              "redis_sidecar_upstream_up 0\n"
              "# HELP redis_sidecar_probe_requests_total Probe requests served, by probe and HTTP "
              "status code.\n"
              "# TYPE redis_sidecar_probe_requests_total counter\n"
              "redis_sidecar_probe_requests_total{probe=\"livez\",code=\"200\"} 10\n"
              "redis_sidecar_probe_requests_total{probe=\"readyz\",code=\"503\"} 2\n");
}

TEST(render, every_family_filled_parses_strictly) {
    const registry r = filled();
    EXPECT_EQ(r.misuses(), 0u) << r.last_misuse();
    const std::string text = r.render();
    const auto parsed = tf::parse(text);
    ASSERT_TRUE(parsed.doc) << parsed.error << "\n" << text;
    ASSERT_EQ(parsed.doc->families.size(), all_families.size());
    for (std::size_t i = 0; i < all_families.size(); ++i) {
        const auto& got = parsed.doc->families[i];
        EXPECT_EQ(got.name, all_families[i]->name);
        EXPECT_EQ(got.type, name(all_families[i]->type));
        EXPECT_EQ(got.help, all_families[i]->help);
        for (const auto& s : got.samples) {
            // Every sample carries exactly the declared labels (plus le on buckets).
            std::size_t expected = all_families[i]->label_count();
            if (s.name.ends_with("_bucket")) ++expected;
            EXPECT_EQ(s.labels.size(), expected) << s.name;
        }
    }
}

TEST(render, empty_registry_renders_nothing_and_clear_forgets) {
    registry r = filled();
    EXPECT_FALSE(r.render().empty());
    r.clear();
    EXPECT_EQ(r.render(), "");
    EXPECT_EQ(registry(all_families).render(), "");
}

TEST(render, histogram_with_all_observations_in_inf_and_none) {
    static constexpr std::array<double, 0> no_bounds{};
    registry r(all_families);
    const std::array<std::uint64_t, 1> only_inf = {5};
    ASSERT_EQ(r.set_histogram(upstream_handshake_duration, no_bounds, only_inf, inf), status::ok);
    const auto parsed = tf::parse(r.render());
    ASSERT_TRUE(parsed.doc) << parsed.error << r.render();
    EXPECT_NE(r.render().find("_bucket{le=\"+Inf\"} 5\n"), std::string::npos);
    EXPECT_NE(r.render().find("_sum +Inf\n"), std::string::npos);
}

// --- misuse is an error code, never a crash ----------------------------------------------------

struct misuse_case {
    const char* what;
    status expected;
    status (*call)(registry&);
};

class misuse_test : public ::testing::TestWithParam<misuse_case> {};

TEST_P(misuse_test, is_refused_counted_and_changes_nothing) {
    registry r = filled();
    const std::string before = r.render();
    EXPECT_EQ(GetParam().call(r), GetParam().expected) << GetParam().what;
    EXPECT_EQ(r.misuses(), 1u);
    EXPECT_TRUE(r.last_misuse().starts_with(name(GetParam().expected))) << r.last_misuse();
    EXPECT_EQ(r.render(), before);
}

const std::array<std::uint64_t, 4> four_counts = {1, 1, 1, 1};
const std::array<double, 3> descending = {1, 0.5, 2};
const std::array<double, 3> repeated = {0.5, 0.5, 2};
const std::array<double, 3> with_inf = {0.5, 1, inf};

INSTANTIATE_TEST_SUITE_P(
    table, misuse_test,
    ::testing::Values(
        misuse_case{"unknown name", status::unknown_family,
                    [](registry& r) { return r.set("redis_sidecar_nope", 1); }},
        misuse_case{"name without prefix", status::unknown_family,
                    [](registry& r) { return r.set("pool_connections_open", 1); }},
        misuse_case{"set on a histogram", status::wrong_type,
                    [](registry& r) { return r.set(upstream_handshake_duration, 1); }},
        misuse_case{
            "histogram on a gauge", status::wrong_type,
            [](registry& r) { return r.set_histogram(upstream_up, small_bounds, four_counts, 1); }},
        misuse_case{"missing label", status::wrong_labels,
                    [](registry& r) { return r.set(upstream_connect_failures, 1); }},
        misuse_case{"extra label", status::wrong_labels,
                    [](registry& r) {
                        return r.set(upstream_up, {{"x", "y"}}, 1);
                    }},
        misuse_case{"wrong label name", status::wrong_labels,
                    [](registry& r) {
                        return r.set(upstream_recycles, {{"class", "clean"}}, 1);
                    }},
        misuse_case{"repeated label", status::wrong_labels,
                    [](registry& r) {
                        return r.set(probe_requests, {{"probe", "a"}, {"probe", "b"}}, 1);
                    }},
        misuse_case{"histogram with labels", status::wrong_labels,
                    [](registry& r) {
                        return r.set_histogram(upstream_handshake_duration.name, {{"a", "b"}},
                                               small_bounds, four_counts, 1);
                    }},
        misuse_case{"negative counter", status::invalid_value,
                    [](registry& r) { return r.set(upstream_connects, -1); }},
        misuse_case{"NaN counter", status::invalid_value,
                    [](registry& r) { return r.set(upstream_connects, std::nan("")); }},
        misuse_case{"counts not bounds + 1", status::invalid_value,
                    [](registry& r) {
                        return r.set_histogram(upstream_handshake_duration,
                                               std::span(small_bounds).first(2), four_counts, 1);
                    }},
        misuse_case{"descending bounds", status::invalid_value,
                    [](registry& r) {
                        return r.set_histogram(upstream_handshake_duration, descending, four_counts,
                                               1);
                    }},
        misuse_case{"repeated bound", status::invalid_value,
                    [](registry& r) {
                        return r.set_histogram(upstream_handshake_duration, repeated, four_counts,
                                               1);
                    }},
        misuse_case{"infinite bound", status::invalid_value,
                    [](registry& r) {
                        return r.set_histogram(upstream_handshake_duration, with_inf, four_counts,
                                               1);
                    }},
        misuse_case{"NaN sum", status::invalid_value, [](registry& r) {
                        return r.set_histogram(upstream_handshake_duration, small_bounds,
                                               four_counts, std::nan(""));
                    }}));

TEST(misuse, gauges_take_any_value_including_negative_and_nan) {
    registry r(all_families);
    EXPECT_EQ(r.set(upstream_up, -1), status::ok);
    EXPECT_EQ(r.set(clients, std::nan("")), status::ok);
    EXPECT_EQ(r.misuses(), 0u);
    const auto parsed = tf::parse(r.render());
    ASSERT_TRUE(parsed.doc) << parsed.error;
}

TEST(misuse, series_per_family_are_bounded) {
    registry r(all_families);
    for (std::size_t i = 0; i < registry::max_series_per_family; ++i) {
        ASSERT_EQ(r.set(build_info, {{"version", std::to_string(i)}}, 1), status::ok);
    }
    EXPECT_EQ(r.set(build_info, {{"version", "one too many"}}, 1), status::invalid_value);
    EXPECT_EQ(r.set(build_info, {{"version", "0"}}, 1), status::ok) << "existing series updates";
}

// --- the parser itself rejects what it must (so a passing parse means something) -------------

struct bad_text_case {
    const char* what;
    const char* text;
};

class parser_rejects_test : public ::testing::TestWithParam<bad_text_case> {};

TEST_P(parser_rejects_test, rejects) {
    EXPECT_FALSE(tf::parse(GetParam().text).doc) << GetParam().what;
}

#define HT(n, t) "# HELP " n " h.\n# TYPE " n " " t "\n"
INSTANTIATE_TEST_SUITE_P(
    table, parser_rejects_test,
    ::testing::Values(
        bad_text_case{"no TYPE", "# HELP a h.\na 1\n"},
        bad_text_case{"no HELP", "# TYPE a gauge\na 1\n"},
        bad_text_case{"no final newline", HT("a", "gauge") "a 1"},
        bad_text_case{"blank line", HT("a", "gauge") "\na 1\n"},
        bad_text_case{"bad type", HT("a", "gaugez") "a 1\n"},
        bad_text_case{"sample of other family", HT("a", "gauge") "b 1\n"},
        bad_text_case{"bad escape", HT("a", "gauge") "a{l=\"\\t\"} 1\n"},
        bad_text_case{"unterminated", HT("a", "gauge") "a{l=\"x} 1\n"},
        bad_text_case{"bad value", HT("a", "gauge") "a one\n"},
        bad_text_case{"inf spelled wrong", HT("a", "gauge") "a Inf\n"},
        bad_text_case{"timestamp", HT("a", "gauge") "a 1 1700000000\n"},
        bad_text_case{"repeated series", HT("a", "gauge") "a 1\na 2\n"},
        bad_text_case{"negative counter", HT("a_total", "counter") "a_total -1\n"},
        bad_text_case{
            "family twice",
            HT("a", "gauge") "a 1\n" HT("b", "gauge") "b 1\n" HT("a", "gauge") "a{x=\"1\"} 1\n"},
        bad_text_case{"not cumulative",
                      HT("h", "histogram") "h_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\n"
                                           "h_sum 1\nh_count 2\n"},
        bad_text_case{"no +Inf bucket",
                      HT("h", "histogram") "h_bucket{le=\"1\"} 3\nh_sum 1\nh_count 3\n"},
        bad_text_case{"+Inf != count",
                      HT("h", "histogram") "h_bucket{le=\"+Inf\"} 3\nh_sum 1\nh_count 4\n"},
        bad_text_case{"no _sum", HT("h", "histogram") "h_bucket{le=\"+Inf\"} 3\nh_count 3\n"},
        bad_text_case{"bad label name", HT("a", "gauge") "a{1l=\"x\"} 1\n"},
        bad_text_case{"other comment", "# hello\n"}));
#undef HT

}  // namespace
}  // namespace redis_sidecar::metrics
