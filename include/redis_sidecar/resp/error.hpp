#pragma once

#include <string>
#include <system_error>

namespace redis_sidecar::resp {

/// Why a byte stream is not valid RESP (or exceeds a limit). Every message can be sent to a
/// client as `-ERR Protocol error: <message>`, the way Redis reports the same problem; see
/// scanner::error_reply() for the variant that names the offending byte.
enum class error {
    /// A multibulk/aggregate length is not a decimal number, is negative other than `-1` where
    /// a null is allowed, or is `?` where streaming is not allowed (always in a command).
    invalid_multibulk_length = 1,
    /// An aggregate announces more elements than the configured limit (for commands: more
    /// arguments than scanner_options::max_aggregate_length).
    multibulk_too_long,
    /// A bulk length is not a decimal number, is negative (other than `-1` in a reply), or is
    /// `?` where streaming is not allowed.
    invalid_bulk_length,
    /// A bulk string (or one streamed-string chunk) announces more bytes than the limit
    /// (512 MiB by default, like Redis' proto-max-bulk-len). Reported on the length's digits,
    /// before any payload.
    bulk_too_long,
    /// An argument of a multibulk command does not start with `$`.
    expected_bulk,
    /// A command stream frame starts with a RESP type byte other than `*` (Redis would take it
    /// for an inline command; the sidecar refuses it instead).
    unexpected_command_type,
    /// A reply value starts with a byte that is not a RESP type (RESP2 types only when the
    /// scanner is in RESP2 mode).
    invalid_reply_type,
    /// An inline command line is longer than the limit (64 KiB by default).
    inline_too_long,
    /// An inline command has an unterminated quote, or a closing quote not followed by a space.
    unbalanced_quotes,
    /// A line or a bulk payload is not terminated by CRLF (a lone CR or LF, or payload longer
    /// than announced).
    expected_crlf,
    /// An integer (`:`) or big number (`(`) line is not an optionally negative decimal number
    /// (or an integer does not fit in 64 bits).
    invalid_integer,
    /// A null (`_`) line is not empty.
    invalid_null,
    /// A boolean (`#`) line is not exactly `t` or `f`.
    invalid_boolean,
    /// A simple string, error, double or big number line in a reply is longer than the limit.
    line_too_long,
    /// Streamed aggregates and attributes are nested deeper than max_nesting_depth (64), or a
    /// reply owes more values than anything real (counted aggregates nest without limit).
    nesting_too_deep,
    /// A verbatim string (`=`) is shorter than 4 bytes or lacks the `:` after its 3-byte format.
    invalid_verbatim_string,
    /// A streamed string part does not start with `;` or its length is malformed.
    invalid_stream_chunk,
    /// An end marker (`.`) outside a streamed aggregate, after an attribute, or in the middle of
    /// a map's key/value pair.
    unexpected_end_marker,
    /// hiredis reported a protocol error the scanner did not catch first (reply_reader only).
    protocol_error,
    /// reply_reader holds more unparsed bytes than its limit.
    reply_too_large,
    /// hiredis could not allocate memory (reply_reader only).
    out_of_memory,
};

/// The category of resp::error; name() is "resp".
const std::error_category& category() noexcept;

/// Makes `error` usable as a std::error_code.
inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), category()};
}

}  // namespace redis_sidecar::resp

template <>
struct std::is_error_code_enum<redis_sidecar::resp::error> : std::true_type {};
