#pragma once

// What a metric family is. The families themselves are declared once each, beside the counter
// they export: the app's in src/app/exports.cpp, the admin server's probe counters in
// http/admin_server.hpp. Their names, types and labels are a public API (dashboards and alerts
// depend on them): add freely, rename or remove only on purpose and say so in
// docs/observability.md, which lists the same families (a test checks the two agree).

#include <array>
#include <cstddef>
#include <span>
#include <string_view>

namespace redis_sidecar::metrics {

/// A Prometheus metric type.
enum class metric_type { counter, gauge, histogram };

/// "counter", "gauge" or "histogram", as in a `# TYPE` line.
std::string_view name(metric_type t);

/// The most labels one family has (histograms add `le` on export, not counted here).
inline constexpr std::size_t max_labels = 2;

/// One metric family: what `# HELP` and `# TYPE` say and which labels every sample carries.
struct family {
    std::string_view name;  ///< full name, "redis_sidecar_" prefix; counters end in "_total"
    metric_type type;       ///< counter, gauge or histogram
    std::string_view help;  ///< one line of help text
    std::array<std::string_view, max_labels> labels{};  ///< label names; unused slots empty

    /// How many label names the family has.
    constexpr std::size_t label_count() const {
        std::size_t n = 0;
        while (n < labels.size() && !labels[n].empty()) ++n;
        return n;
    }
};

}  // namespace redis_sidecar::metrics
