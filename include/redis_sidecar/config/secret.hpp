#pragma once

#include <ostream>
#include <string>
#include <utility>

namespace redis_sidecar::config {

/// A password or token. Printing it in any way the code base prints things (stream, to_string,
/// JSON through config::to_json) yields "<redacted>"; only reveal() gives the bytes, and only the
/// code that sends AUTH calls it.
class secret {
  public:
    secret() = default;
    explicit secret(std::string value) : value_(std::move(value)) {}

    /// The secret's bytes, for the one place that must send them upstream.
    const std::string& reveal() const { return value_; }
    bool empty() const { return value_.empty(); }
    std::size_t size() const { return value_.size(); }

    friend bool operator==(const secret& a, const secret& b) { return a.value_ == b.value_; }
    friend std::ostream& operator<<(std::ostream& os, const secret&) { return os << redacted; }

    static constexpr const char* redacted = "<redacted>";

  private:
    std::string value_;
};

inline std::string to_string(const secret&) {
    return secret::redacted;
}

}  // namespace redis_sidecar::config
