#include "redis_sidecar/log/logger.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace redis_sidecar::log {

namespace {

std::atomic<int> min_level{static_cast<int>(level::info)};
std::atomic<format> line_format{format::json};

const char* name(level l) {
    switch (l) {
        case level::debug:
            return "debug";
        case level::info:
            return "info";
        case level::warn:
            return "warn";
        case level::error:
            return "error";
    }
    return "info";
}

void append_json_string(std::string& out, std::string_view s) {
    out.push_back('"');
    for (const char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out.push_back(c);
                }
        }
    }
    out.push_back('"');
}

std::string timestamp() {
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms.count()));
    return buf;
}

}  // namespace

void configure(std::string_view level_name, std::string_view fmt) {
    for (auto l : {level::debug, level::info, level::warn, level::error}) {
        if (level_name == name(l)) min_level = static_cast<int>(l);
    }
    if (fmt == "json") line_format = format::json;
    if (fmt == "text") line_format = format::text;
}

bool enabled(level l) {
    return static_cast<int>(l) >= min_level.load(std::memory_order_relaxed);
}

std::string format_line(level l, std::string_view msg, std::initializer_list<field> fields,
                        format fmt) {
    std::string line;
    line.reserve(128);
    if (fmt == format::json) {
        line += "{\"ts\":\"" + timestamp() + "\",\"level\":\"" + name(l) + "\",\"msg\":";
        append_json_string(line, msg);
        for (const auto& [k, v] : fields) {
            line.push_back(',');
            append_json_string(line, k);
            line.push_back(':');
            append_json_string(line, v);
        }
        line += "}\n";
    } else {
        // Appended piece by piece: `" " + std::string(k)` inserts at the front of a temporary,
        // which GCC 12 at -O3 reports as a -Wrestrict overlap (a false positive, GCC bug 105329).
        line += timestamp();
        line.push_back(' ');
        line += name(l);
        line.push_back(' ');
        line += msg;
        for (const auto& [k, v] : fields) {
            line.push_back(' ');
            line += k;
            line.push_back('=');
            if (v.find(' ') != std::string_view::npos || v.empty()) {
                append_json_string(line, v);
            } else {
                line += v;
            }
        }
        line += "\n";
    }
    return line;
}

void write(level l, std::string_view msg, std::initializer_list<field> fields) {
    if (!enabled(l)) return;
    const auto line = format_line(l, msg, fields, line_format.load(std::memory_order_relaxed));
    // One write(2): whole lines even with several threads; a short write to a pipe is retried.
    std::size_t done = 0;
    while (done < line.size()) {
        const auto n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
        if (n <= 0) return;
        done += static_cast<std::size_t>(n);
    }
}

}  // namespace redis_sidecar::log
