#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "redis_sidecar/resp/error.hpp"

namespace redis_sidecar::resp {

/// Which stream a scanner reads: what a client sends, or what the upstream answers.
enum class direction : std::uint8_t {
    /// Client to server: multibulk commands (`*N` of `$` bulks) and inline commands.
    command,
    /// Server to client: any RESP2 (or RESP3, if enabled) value.
    reply,
};

/// Most streamed aggregates (`*? %? ~?`) and attributes (`|`) open at once in one reply. Counted
/// aggregates (`*N %N ~N >N`) are not limited: they nest to any depth in constant memory (a Lua
/// script can return arrays nested thousands deep). Redis itself sends neither streamed
/// aggregates nor attributes, so the bound only keeps a hostile peer cheap.
inline constexpr std::size_t max_nesting_depth = 64;
/// Longest inline command line, line terminator excluded (Redis' PROTO_INLINE_MAX_SIZE).
inline constexpr std::size_t default_max_inline_length = std::size_t{64} * 1024;
/// Longest bulk string or streamed-string chunk (Redis' default proto-max-bulk-len, 512 MiB).
inline constexpr std::int64_t default_max_bulk_length = std::int64_t{512} * 1024 * 1024;
/// Most arguments of one client command. Redis accepts up to INT_MAX from an authenticated
/// client; a command with more than 1 Mi arguments is not something an application sends
/// through a sidecar (MSET of 512 Ki pairs still fits), and the bound keeps abuse cheap.
inline constexpr std::int64_t default_max_command_args = std::int64_t{1024} * 1024;
/// Most elements of one reply aggregate (map: pairs). Above any Redis collection's size
/// (2^32 - 1); counting costs nothing, so this only rejects nonsense.
inline constexpr std::int64_t default_max_reply_aggregate_length = 4'294'967'295;
/// Longest simple string / error / double / big number line of a reply. Such lines are never
/// buffered, so the bound only needs to reject nonsense; it equals the bulk bound.
inline constexpr std::size_t default_max_line_length = std::size_t{512} * 1024 * 1024;
/// Bytes of a command name kept by frame_info (longer names are flagged, not stored whole).
inline constexpr std::size_t command_name_capacity = 32;
/// Bytes of a top-level simple string / error / blob error kept by frame_info.
inline constexpr std::size_t reply_head_capacity = 32;

/// Limits and dialect of a scanner. Exceeding a limit is an error (see resp::error).
struct scanner_options {
    /// Longest inline command line in bytes, terminator excluded. Command direction only.
    std::size_t max_inline_length = default_max_inline_length;
    /// Longest line-typed reply value in bytes (`+ - , (` lines), terminator excluded.
    std::size_t max_line_length = default_max_line_length;
    /// Most elements of one aggregate; for maps and attributes, pairs. For commands: arguments.
    std::int64_t max_aggregate_length = default_max_reply_aggregate_length;
    /// Most payload bytes of one bulk string / blob error / verbatim string / streamed chunk.
    std::int64_t max_bulk_length = default_max_bulk_length;
    /// Accept RESP3 types in replies. When false only `+ - : $ *` are valid (RESP2).
    bool resp3 = true;

    /// The defaults for a client command stream.
    static constexpr scanner_options for_commands() {
        scanner_options o;
        o.max_aggregate_length = default_max_command_args;
        return o;
    }
    /// The defaults for a reply stream.
    static constexpr scanner_options for_replies() { return {}; }
};

/// What the scanner learned about the current (or just completed) top-level frame, so the
/// caller need not parse it again. Fields fill in as bytes arrive; all are final once scan()
/// returned frame_done, and stay valid until the next call to scan().
struct frame_info {
    /// Command: `*` for a multibulk command, 0 for an inline one. Reply: the type byte of the
    /// top-level value (`+ - : $ * _ , # ! = ( % ~ >`), never `|`: a leading attribute is part
    /// of the frame and flagged by has_attribute instead.
    char type = 0;
    /// Command: it was an inline command.
    bool is_inline = false;
    /// Reply: the top-level value is a RESP3 push (`>`), i.e. not the answer to a command.
    bool is_push = false;
    /// Reply: one or more attributes (`|`) preceded the top-level value, in the same frame.
    bool has_attribute = false;
    /// Command: the first argument was longer than command_name_capacity (so it is no known
    /// command); command_name() then holds only its first bytes.
    bool name_too_long = false;
    /// Command: the first argument has been scanned completely (command_name() is final).
    bool name_complete = false;
    /// Reply: the top-level simple string / error / blob error was longer than head().
    bool head_truncated = false;
    /// Command: the number of arguments (known from `*N` before any argument arrives).
    std::int64_t argc = 0;
    /// Bytes used in name_bytes.
    std::uint8_t name_size = 0;
    /// Bytes used in head_bytes.
    std::uint8_t head_size = 0;
    /// Command: the first argument, ASCII lower-cased. Use command_name().
    std::array<char, command_name_capacity> name_bytes{};
    /// Reply: the first bytes of a top-level `+`, `-` or `!` value, as sent. Use head().
    std::array<char, reply_head_capacity> head_bytes{};

    /// Command: the lower-cased command name (at most command_name_capacity bytes).
    std::string_view command_name() const { return {name_bytes.data(), name_size}; }
    /// Reply: the first bytes of a top-level simple string / error / blob error, e.g.
    /// "READONLY You can't write against" (no type byte, no CRLF).
    std::string_view head() const { return {head_bytes.data(), head_size}; }

    friend bool operator==(const frame_info&, const frame_info&) = default;
};

/// Outcome of one scanner::scan() call.
enum class scan_status : std::uint8_t {
    /// All given bytes were consumed and the frame is not finished yet.
    need_more,
    /// A top-level frame ended with the last consumed byte.
    frame_done,
    /// The input is invalid; `error` says why. The scanner stays failed until reset().
    error,
};

/// The result of scanner::scan().
struct scan_result {
    scan_status status = scan_status::need_more;
    /// Bytes of the input that belong to the current frame (or to skipped empty commands).
    /// need_more: always the whole input. frame_done: up to and including the frame's last
    /// byte. error: the bytes before the offending one.
    std::size_t consumed = 0;
    /// Set when status is error (a resp::error).
    std::error_code error;
};

/// Incremental RESP frame scanner: bytes in, top-level frame boundaries out. It never buffers
/// or allocates: all state (including the nesting stack) lives in the object, the caller may
/// drop bytes once they are consumed, and a frame may be split at any byte. Bulk payloads are
/// only counted, so a 500 MB value costs nothing but the time to pass it through.
///
/// Command direction (mirrors Redis' processMultibulkBuffer / processInlineBuffer):
/// - a frame starting with `*` is a multibulk command whose elements must all be `$` bulks;
/// - a frame starting with any other RESP type byte is refused (unexpected_command_type);
/// - anything else is an inline command, split into arguments exactly like Redis'
///   sdssplitargs (quotes, `\xHH` and `\n`-style escapes), ended by LF or CRLF;
/// - empty commands (`*0`, `*-1`, blank inline lines) produce no reply in Redis; the scanner
///   skips them: their bytes are counted in the consumed bytes of the next frame (forwarding
///   or dropping them is equally harmless).
///
/// Reply direction: any RESP2/RESP3 value, including streamed strings (`$?` + `;N` chunks +
/// `;0`) and streamed aggregates (`*? %? ~?` ... `.`). Attributes (`|`) are not frames of
/// their own: they belong to the frame of the value they precede (frame_info::has_attribute).
/// `$-1` and `*-1` are nulls; other negative lengths are errors.
///
/// Framing needs no stack for counted aggregates: one counter holds how many values the current
/// frame still needs (an aggregate of N takes its parent's slot and adds N), so any depth frames
/// exactly in constant memory. Only streamed aggregates and attributes, whose end is not known
/// from a count, open a segment on a small fixed stack (max_nesting_depth).
class scanner {
  public:
    /// A scanner with the default options for `dir`.
    explicit scanner(direction dir);
    /// A scanner with explicit limits.
    scanner(direction dir, const scanner_options& options);

    /// Consumes bytes up to and including the end of at most one top-level frame.
    scan_result scan(std::string_view bytes);

    /// Forgets any partial frame and a previous error; the options stay.
    void reset();

    /// The current or last completed frame (see frame_info for when it is final).
    const frame_info& info() const { return info_; }
    /// The stream direction.
    direction dir() const { return dir_; }
    /// True once scan() has returned an error (until reset()).
    bool failed() const { return state_ == state::failed; }
    /// The error scan() returned, or an empty error_code.
    std::error_code last_error() const {
        return failed() ? make_error_code(error_) : std::error_code{};
    }
    /// The byte that caused the error.
    char error_byte() const { return error_byte_; }
    /// Bytes of the bulk payload being scanned still to come (its CRLF not counted); 0 outside
    /// a payload. From the `$N` header, so a large value is known as soon as it begins.
    std::uint64_t payload_remaining() const {
        return state_ == state::payload ? static_cast<std::uint64_t>(remaining_) : 0;
    }
    /// A reply to send a client after an error, e.g. "-ERR Protocol error: expected '$', got
    /// 'x'\r\n" (the byte is named for expected_bulk, unexpected_command_type and
    /// invalid_reply_type, escaped as \xHH when not printable). Allocates; error path only.
    std::string error_reply() const;

  private:
    enum class state : std::uint8_t {
        frame_start,  // before a frame's first byte
        type_byte,    // expecting a value's type byte
        line,         // inside the line that follows a type byte
        line_lf,      // a line's CR seen, expecting LF
        payload,      // inside a bulk payload
        payload_cr,   // payload done, expecting CR
        payload_lf,   // payload done, expecting LF
        chunk_start,  // streamed string: expecting ';'
        inline_line,  // inside an inline command
        failed,
    };
    enum class line_kind : std::uint8_t {
        simple,            // + - , : any bytes
        integer,           // : (
        null,              // _
        boolean,           // #
        end_marker,        // .
        bulk_length,       // $ ! =
        aggregate_length,  // * % ~ > |
        chunk_length,      // ;
    };
    enum class inline_state : std::uint8_t {
        blank,          // between arguments
        word,           // unquoted argument
        dquote,         // inside "..."
        dquote_escape,  // after a backslash inside "..."
        dquote_hex1,    // after \x inside "..."
        dquote_hex2,    // after \xH inside "..."
        squote,         // inside '...'
        squote_escape,  // after a backslash inside '...'
        after_quote,    // after a closing quote
        ignore_rest,    // after a NUL: Redis ignores the rest of the line
    };
    // A streamed aggregate or an attribute: values inside it are counted apart from the
    // enclosing ones, which wait in `saved_pending`.
    struct segment {
        std::int64_t saved_pending = 0;  // the enclosing segment's pending_ when this one opened
        std::int64_t elements = 0;       // streamed: elements started (a map's must be even)
        bool streamed = false;           // false: an attribute
        bool pairs = false;              // streamed map: elements come in key/value pairs
    };

    error on_type_byte(char c);
    error on_line_byte(char c);
    error finish_line(bool& frame_done);
    error start_payload(std::int64_t length);
    error take_slot();
    error open_aggregate(std::int64_t elements);
    error open_segment(std::int64_t pending, bool streamed);
    bool complete_value();
    void capture_payload(const char* data, std::size_t size);
    error inline_byte(char c);
    error inline_char(char c);
    void inline_append(char c);
    void inline_end_arg();
    bool finish_inline();
    void begin_frame();
    // Fast paths: a whole common frame already in the buffer, parsed in one pass. They change
    // nothing unless the frame is complete and ordinary; anything else (a split frame, an
    // error, a leading zero, nesting, RESP3) is left to the byte-wise state machine, which
    // then sees the same bytes, so both paths give the same frame_info and the same errors.
    bool fast_command(const char* data, std::size_t size, std::size_t& consumed);
    bool fast_reply(const char* data, std::size_t size, std::size_t& consumed);
    const char* fast_value(const char* p, const char* end, std::string_view& line) const;
    scan_result fail(error e, char byte, std::size_t consumed);

    direction dir_;
    scanner_options options_;
    state state_ = state::frame_start;
    error error_ = error::protocol_error;
    char error_byte_ = 0;
    bool frame_done_ = false;  // the last scan() finished a frame; info_ resets on the next

    // Current line.
    line_kind kind_ = line_kind::simple;
    char type_ = 0;               // type byte that started the line
    bool negative_ = false;       // numeric line: leading '-'
    bool streamed_mark_ = false;  // numeric line: '?'
    std::uint64_t magnitude_ = 0;
    std::size_t digits_ = 0;
    std::size_t line_length_ = 0;
    bool capture_head_ = false;  // copy this value's first bytes to info_.head_bytes

    // Current payload.
    std::int64_t payload_length_ = 0;
    std::int64_t remaining_ = 0;
    bool in_chunk_ = false;      // the payload is a streamed-string chunk
    bool capture_name_ = false;  // the payload is a command's first argument
    bool verbatim_ = false;      // the payload is a verbatim string: byte 3 must be ':'

    bool after_attribute_ = false;  // an attribute ended; a value must follow

    // Inline command.
    inline_state inline_ = inline_state::blank;
    bool pending_cr_ = false;  // a CR that is the line end if LF follows
    char hex1_ = 0;
    std::size_t inline_length_ = 0;
    std::size_t arg_length_ = 0;

    // Values the innermost segment (or the top-level frame) still needs before it is complete.
    std::int64_t pending_ = 1;
    bool top_started_ = false;  // the top-level value's type byte has been seen
    std::size_t segments_size_ = 0;
    std::array<segment, max_nesting_depth> segments_{};
    frame_info info_;
};

}  // namespace redis_sidecar::resp
