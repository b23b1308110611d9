#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "redis_sidecar/metrics/families.hpp"

namespace redis_sidecar::metrics {

/// One label of a sample: its name (as declared in the family) and its value (any bytes;
/// escaped on export).
struct label {
    std::string_view name;
    std::string_view value;
};

/// Why a set() or set_histogram() call was refused. Every value but `ok` is a programming error
/// in the caller: the registry keeps what it had, counts the misuse (misuses()) and carries on.
enum class status {
    ok = 0,
    /// No declared family has this name.
    unknown_family,
    /// set() on a histogram, or set_histogram() on a counter or gauge.
    wrong_type,
    /// The labels are not exactly the family's label names (missing, extra or repeated).
    wrong_labels,
    /// A counter set to a negative or NaN value; histogram bounds not finite and increasing, or
    /// the bucket counts not one longer than the bounds.
    invalid_value,
};

/// "ok", "unknown_family", "wrong_type", "wrong_labels" or "invalid_value".
std::string_view name(status s);

/// Formats a sample value as the text format wants it: "+Inf", "-Inf", "NaN", integers without
/// a fraction ("42"), everything else in the shortest form that reads back exactly.
std::string format_value(double v);

/// Escapes a label value for the text format: backslash, double quote and line feed.
std::string escape_label_value(std::string_view v);

/// Escapes HELP text for the text format: backslash and line feed.
std::string escape_help(std::string_view v);

/// A snapshot of metric values, filled by the app at scrape time and rendered as Prometheus
/// text exposition format 0.0.4. Only the families given to the constructor are accepted. Not
/// thread-safe: fill and render on one thread.
class registry {
  public:
    /// The content type of render()'s output.
    static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";
    /// Bounds on one registry's size, so a bug (a label taking unbounded values) cannot grow it
    /// without limit: further new series are refused as invalid_value.
    static constexpr std::size_t max_series_per_family = 1024;
    /// The most histogram buckets (bounds) accepted.
    static constexpr std::size_t max_buckets = 64;

    /// A registry of the given families; the pointers must outlive it.
    explicit registry(std::span<const family* const> families);

    /// Sets the sample of counter or gauge `family_name` with `labels` (any order) to `value`,
    /// replacing an earlier value.
    status set(std::string_view family_name, std::initializer_list<label> labels, double value);
    /// As above for a family without labels.
    status set(std::string_view family_name, double value) { return set(family_name, {}, value); }
    /// The same, naming the family by its declaration.
    status set(const family& f, std::initializer_list<label> labels, double value) {
        return set(f.name, labels, value);
    }
    status set(const family& f, double value) { return set(f.name, {}, value); }

    /// Sets a histogram's sample: `bounds` are the finite upper bounds in increasing order,
    /// `counts` the observations per bucket (NOT cumulative), one more than the bounds (the last
    /// is the +Inf bucket); `sum` the sum of all observations. _count is the sum of `counts`.
    status set_histogram(std::string_view family_name, std::initializer_list<label> labels,
                         std::span<const double> bounds, std::span<const std::uint64_t> counts,
                         double sum);
    status set_histogram(const family& f, std::span<const double> bounds,
                         std::span<const std::uint64_t> counts, double sum) {
        return set_histogram(f.name, {}, bounds, counts, sum);
    }

    /// Forgets every sample (the declared families stay).
    void clear();

    /// The exposition text: for each family with at least one sample, in declaration order,
    /// `# HELP`, `# TYPE` and its samples (sorted by label values).
    std::string render() const;

    /// How many set calls were refused since construction (0 in a correct program; tests of
    /// the app check it after a scrape).
    std::size_t misuses() const { return misuses_; }
    /// What the last refused call was, e.g. "wrong_labels: redis_sidecar_x{probe}".
    const std::string& last_misuse() const { return last_misuse_; }

  private:
    struct histogram_value {
        std::vector<double> bounds;
        std::vector<std::uint64_t> counts;  // per bucket, the last one +Inf
        double sum = 0;
    };
    struct family_values {
        const family* declared = nullptr;
        // Label values in the family's label order.
        std::map<std::vector<std::string>, double> samples;
        std::map<std::vector<std::string>, histogram_value> histograms;
    };

    status find(std::string_view family_name, std::initializer_list<label> labels,
                metric_type expected, family_values*& out, std::vector<std::string>& key);
    status refuse(status s, std::string_view family_name);

    std::vector<family_values> families_;
    std::size_t misuses_ = 0;
    std::string last_misuse_;
};

}  // namespace redis_sidecar::metrics
