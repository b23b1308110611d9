#include <algorithm>

#include <nlohmann/json.hpp>

#include "redis_sidecar/config/table.hpp"
#include "redis_sidecar/config/values.hpp"

namespace redis_sidecar::config {

namespace {

using json = nlohmann::json;

template <class T>
requires std::is_arithmetic_v<T> json printable(T v) {
    return v;
}
json printable(const std::string& s) {
    return s.empty() ? json(nullptr) : json(s);
}
json printable(std::chrono::milliseconds d) {
    return format_duration(d);
}
json printable(const std::optional<std::string>& v) {
    return v ? json(*v) : json(nullptr);
}
json printable(const std::optional<secret>& v) {
    return v ? json(secret::redacted) : json(nullptr);
}

}  // namespace

json json_of(const setting& row, const settings& s) {
    // The rows' accessors take a mutable settings; this one only reads through them.
    return std::visit([](const auto* field) { return printable(*field); },
                      row.at(const_cast<settings&>(s)));
}

json to_json(const settings& s) {
    json j = json::object();
    for (const auto& row : table()) {
        if (!row.at) continue;
        // Appended, not "/" + key: GCC 12 at -O3 sees a false -Wrestrict in operator+ (105329).
        std::string pointer(1, '/');
        pointer += row.key;
        std::replace(pointer.begin(), pointer.end(), '.', '/');
        j[json::json_pointer(pointer)] = json_of(row, s);
    }
    j["sources"] = s.sources;
    return j;
}

}  // namespace redis_sidecar::config
