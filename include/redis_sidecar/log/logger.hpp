#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace redis_sidecar::log {

enum class level { debug = 0, info = 1, warn = 2, error = 3 };
enum class format { json, text };

/// One key/value field of a log line. Values are plain text: callers never pass secrets
/// (config::secret has no implicit conversion to a string, so it cannot slip in).
using field = std::pair<std::string_view, std::string_view>;

/// Sets the minimum level and the line format ("debug"/"info"/"warn"/"error", "json"/"text").
/// Unknown names leave the current value. Thread-safe with respect to write().
void configure(std::string_view min_level, std::string_view line_format);

bool enabled(level l);

/// Writes one line to stderr: JSON {"ts","level","msg",fields...} or text
/// "ts LEVEL msg key=value ...". Lines are written whole (one write call) so threads don't
/// interleave them.
void write(level l, std::string_view msg, std::initializer_list<field> fields = {});

inline void debug(std::string_view m, std::initializer_list<field> f = {}) {
    if (enabled(level::debug)) write(level::debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<field> f = {}) {
    write(level::info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<field> f = {}) {
    write(level::warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<field> f = {}) {
    write(level::error, m, f);
}

/// Formats a line without writing it (for tests).
std::string format_line(level l, std::string_view msg, std::initializer_list<field> fields,
                        format fmt);

}  // namespace redis_sidecar::log
