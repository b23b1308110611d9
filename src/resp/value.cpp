#include "redis_sidecar/resp/value.hpp"

#include <charconv>
#include <cstdint>

namespace redis_sidecar::resp {

namespace {

class parser {
  public:
    parser(std::string_view bytes, const value_limits& limits) : in_(bytes), limits_(limits) {}

    bool parse(value& v, std::size_t depth) {
        if (depth > limits_.max_depth) return fail("nested too deeply");
        if (++elements_ > limits_.max_elements) return fail("too many elements");
        if (pos_ >= in_.size()) return fail("truncated");
        v.type = in_[pos_++];
        std::string_view line;
        if (!read_line(line)) return false;
        switch (v.type) {
            case '+':
            case '-':
            case ':':
            case ',':
            case '(':
            case '#':
            case '_':
                v.text.assign(line);
                return true;
            case '$':
            case '!':
            case '=': {
                long long n = 0;
                if (!number(line, n)) return false;
                if (n == -1 && v.type == '$') {
                    v.null = true;
                    return true;
                }
                if (n < 0 || static_cast<std::uint64_t>(n) + 2 > in_.size() - pos_) {
                    return fail("bad blob length");
                }
                v.text.assign(in_.substr(pos_, static_cast<std::size_t>(n)));
                pos_ += static_cast<std::size_t>(n);
                if (in_.substr(pos_, 2) != "\r\n") return fail("blob not terminated");
                pos_ += 2;
                return true;
            }
            case '*':
            case '~':
            case '>':
            case '%':
            case '|': {
                long long n = 0;
                if (!number(line, n)) return false;
                if (n == -1 && v.type == '*') {
                    v.null = true;
                    return true;
                }
                if (n < 0) return fail("bad aggregate length");
                auto count = static_cast<std::uint64_t>(n);
                if (v.is_map()) count *= 2;
                if (v.type == '|') ++count;  // the annotated value
                // Every element takes at least 3 bytes: a count beyond the input is a lie.
                if (count > (in_.size() - pos_) / 3 + 1) return fail("aggregate longer than reply");
                v.items.resize(static_cast<std::size_t>(count));
                for (auto& item : v.items) {
                    if (!parse(item, depth + 1)) return false;
                }
                return true;
            }
            default:
                return fail("unknown type");
        }
    }

    bool at_end() const { return pos_ == in_.size(); }
    std::string error;

  private:
    bool read_line(std::string_view& line) {
        const auto end = in_.find("\r\n", pos_);
        if (end == std::string_view::npos) return fail("truncated");
        line = in_.substr(pos_, end - pos_);
        pos_ = end + 2;
        return true;
    }
    bool number(std::string_view s, long long& n) {
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec != std::errc() || p != s.data() + s.size()) return fail("bad length");
        return true;
    }
    bool fail(const char* why) {
        if (error.empty()) error = why;
        return false;
    }

    std::string_view in_;
    std::size_t pos_ = 0;
    std::size_t elements_ = 0;
    const value_limits& limits_;
};

}  // namespace

std::optional<value> parse_value(std::string_view bytes, std::string& error,
                                 const value_limits& limits) {
    parser p(bytes, limits);
    value v;
    if (!p.parse(v, 0)) {
        error = p.error;
        return std::nullopt;
    }
    if (!p.at_end()) {
        error = "bytes after the value";
        return std::nullopt;
    }
    return v;
}

void serialize(const value& v, std::string& out) {
    out.push_back(v.type);
    if (v.null) {
        out.append("-1\r\n");
        return;
    }
    if (v.is_aggregate()) {
        auto n = v.items.size();
        if (v.type == '|') --n;
        if (v.is_map()) n /= 2;
        out.append(std::to_string(n)).append("\r\n");
        for (const auto& item : v.items) serialize(item, out);
        return;
    }
    if (v.type == '$' || v.type == '!' || v.type == '=') {
        out.append(std::to_string(v.text.size())).append("\r\n");
    }
    out.append(v.text).append("\r\n");
}

std::string serialize(const value& v) {
    std::string out;
    serialize(v, out);
    return out;
}

}  // namespace redis_sidecar::resp
