#include "redis_sidecar/resp/error.hpp"

namespace redis_sidecar::resp {
namespace {

class resp_category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "resp"; }

    std::string message(int value) const override {
        switch (static_cast<error>(value)) {
            case error::invalid_multibulk_length:
                return "invalid multibulk length";
            case error::multibulk_too_long:
                return "invalid multibulk length: too many elements";
            case error::invalid_bulk_length:
                return "invalid bulk length";
            case error::bulk_too_long:
                return "invalid bulk length: larger than the limit";
            case error::expected_bulk:
                return "expected '$'";
            case error::unexpected_command_type:
                return "expected '*' or an inline command";
            case error::invalid_reply_type:
                return "invalid reply type byte";
            case error::inline_too_long:
                return "too big inline request";
            case error::unbalanced_quotes:
                return "unbalanced quotes in request";
            case error::expected_crlf:
                return "expected CRLF";
            case error::invalid_integer:
                return "invalid integer";
            case error::invalid_null:
                return "invalid null";
            case error::invalid_boolean:
                return "invalid boolean";
            case error::line_too_long:
                return "line too long";
            case error::nesting_too_deep:
                return "too deeply nested";
            case error::invalid_verbatim_string:
                return "invalid verbatim string";
            case error::invalid_stream_chunk:
                return "invalid streamed string chunk";
            case error::unexpected_end_marker:
                return "unexpected end of aggregate";
            case error::protocol_error:
                return "invalid reply";
            case error::reply_too_large:
                return "reply too large";
            case error::out_of_memory:
                return "out of memory";
        }
        return "unknown resp error";
    }
};

}  // namespace

const std::error_category& category() noexcept {
    static const resp_category instance;
    return instance;
}

}  // namespace redis_sidecar::resp
