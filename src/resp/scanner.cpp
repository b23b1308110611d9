#include "redis_sidecar/resp/scanner.hpp"

#include <algorithm>
#include <cstring>

namespace redis_sidecar::resp {
namespace {

/// "No error": resp::error starts at 1, so the zero value is free to mean success internally.
constexpr error ok{};

/// Longest length or integer line: "-9223372036854775808" is 20 characters. Longer lines
/// (leading zeros) are rejected so a peer cannot keep a header open forever.
constexpr std::size_t max_number_length = 20;

/// Most negative 64-bit integer's magnitude, the largest an integer reply may carry.
constexpr std::uint64_t min_int64_magnitude = std::uint64_t{1} << 63;

/// Most values one frame may still owe (the sum of open aggregates' lengths): 10^12, so terabytes
/// of reply. Far above anything real; an endless stream of nested headers fails on it.
constexpr std::int64_t max_pending = std::int64_t{1} << 40;

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

/// The type bytes of RESP2 and RESP3 (including attributes and the streamed-aggregate end).
bool is_resp_type(char c) {
    constexpr std::string_view types = "+-:$*_,#!=(%~>|.";
    return types.find(c) != std::string_view::npos;
}

/// isspace() in the C locale, which Redis' sdssplitargs uses between arguments.
bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}

char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// sdssplitargs' escapes inside double quotes.
char unescape(char c) {
    switch (c) {
        case 'n':
            return '\n';
        case 'r':
            return '\r';
        case 't':
            return '\t';
        case 'b':
            return '\b';
        case 'a':
            return '\a';
        default:
            return c;
    }
}

}  // namespace

scanner::scanner(direction dir)
    : scanner(dir, dir == direction::command ? scanner_options::for_commands()
                                             : scanner_options::for_replies()) {}

scanner::scanner(direction dir, const scanner_options& options) : dir_(dir), options_(options) {}

void scanner::reset() {
    state_ = state::frame_start;
    error_ = error::protocol_error;
    error_byte_ = 0;
    frame_done_ = false;
    begin_frame();
}

void scanner::begin_frame() {
    info_ = frame_info{};
    pending_ = 1;
    top_started_ = false;
    segments_size_ = 0;
    after_attribute_ = false;
    in_chunk_ = false;
    capture_name_ = false;
    capture_head_ = false;
    inline_ = inline_state::blank;
    pending_cr_ = false;
    inline_length_ = 0;
    arg_length_ = 0;
}

scan_result scanner::fail(error e, char byte, std::size_t consumed) {
    state_ = state::failed;
    error_ = e;
    error_byte_ = byte;
    return {scan_status::error, consumed, make_error_code(e)};
}

scan_result scanner::scan(std::string_view bytes) {
    if (state_ == state::failed) return {scan_status::error, 0, make_error_code(error_)};
    if (frame_done_) {
        frame_done_ = false;
        info_ = frame_info{};
    }
    const char* const data = bytes.data();
    const std::size_t size = bytes.size();
    std::size_t i = 0;
    bool done = false;
    while (i < size && !done) {
        switch (state_) {
            case state::frame_start: {
                std::size_t n = 0;
                if (dir_ == direction::command
                        ? data[i] == '*' && fast_command(data + i, size - i, n)
                        : fast_reply(data + i, size - i, n)) {
                    i += n;
                    done = true;
                    break;
                }
                begin_frame();
                const char c = data[i];
                if (dir_ == direction::reply) {
                    state_ = state::type_byte;
                } else if (c == '*') {
                    info_.type = '*';
                    top_started_ = true;
                    pending_ = 0;  // the command takes the frame's one slot
                    kind_ = line_kind::aggregate_length;
                    type_ = c;
                    negative_ = streamed_mark_ = false;
                    magnitude_ = digits_ = line_length_ = 0;
                    state_ = state::line;
                    ++i;
                } else if (is_resp_type(c)) {
                    return fail(error::unexpected_command_type, c, i);
                } else {
                    info_.is_inline = true;
                    state_ = state::inline_line;
                }
                break;
            }
            case state::type_byte: {
                const char c = data[i];
                if (const error e = on_type_byte(c); e != ok) return fail(e, c, i);
                ++i;
                break;
            }
            case state::line: {
                while (i < size) {
                    const char c = data[i];
                    if (c == '\r') {
                        state_ = state::line_lf;
                        ++i;
                        break;
                    }
                    if (c == '\n') return fail(error::expected_crlf, c, i);
                    if (const error e = on_line_byte(c); e != ok) return fail(e, c, i);
                    ++i;
                }
                break;
            }
            case state::line_lf: {
                if (data[i] != '\n') return fail(error::expected_crlf, data[i], i);
                if (const error e = finish_line(done); e != ok) return fail(e, '\n', i);
                ++i;
                break;
            }
            case state::payload: {
                const auto take = static_cast<std::size_t>(
                    std::min<std::uint64_t>(static_cast<std::uint64_t>(remaining_), size - i));
                if (verbatim_) {
                    // A verbatim string is "xxx:" (3-byte format) followed by the text.
                    const auto offset = static_cast<std::size_t>(payload_length_ - remaining_);
                    if (offset <= 3 && offset + take > 3 && data[i + 3 - offset] != ':') {
                        return fail(error::invalid_verbatim_string, data[i + 3 - offset],
                                    i + 3 - offset);
                    }
                }
                if (capture_name_ || capture_head_) capture_payload(data + i, take);
                remaining_ -= static_cast<std::int64_t>(take);
                i += take;
                if (remaining_ == 0) state_ = state::payload_cr;
                break;
            }
            case state::payload_cr: {
                if (data[i] != '\r') return fail(error::expected_crlf, data[i], i);
                state_ = state::payload_lf;
                ++i;
                break;
            }
            case state::payload_lf: {
                if (data[i] != '\n') return fail(error::expected_crlf, data[i], i);
                ++i;
                if (in_chunk_) {
                    in_chunk_ = false;
                    state_ = state::chunk_start;
                } else {
                    if (capture_name_) info_.name_complete = true;
                    done = complete_value();
                }
                break;
            }
            case state::chunk_start: {
                const char c = data[i];
                if (c != ';') return fail(error::invalid_stream_chunk, c, i);
                kind_ = line_kind::chunk_length;
                type_ = c;
                negative_ = streamed_mark_ = false;
                magnitude_ = digits_ = line_length_ = 0;
                capture_head_ = capture_name_ = false;
                state_ = state::line;
                ++i;
                break;
            }
            case state::inline_line: {
                while (i < size) {
                    const char c = data[i];
                    if (pending_cr_) {
                        pending_cr_ = false;
                        if (c != '\n') {
                            // The CR was not the line end: it is part of the line.
                            if (const error e = inline_char('\r'); e != ok) {
                                return fail(e, '\r', i);
                            }
                        }
                    }
                    if (c == '\n') {
                        bool is_frame = false;
                        switch (inline_) {
                            case inline_state::blank:
                            case inline_state::ignore_rest:
                                break;
                            case inline_state::word:
                            case inline_state::after_quote:
                                inline_end_arg();
                                break;
                            default:
                                return fail(error::unbalanced_quotes, c, i);
                        }
                        is_frame = info_.argc > 0;
                        ++i;
                        // A blank line is no command: skip it like Redis does.
                        if (!is_frame) info_ = frame_info{};
                        state_ = state::frame_start;
                        done = is_frame;
                        break;
                    }
                    if (c == '\r') {
                        pending_cr_ = true;
                    } else if (const error e = inline_char(c); e != ok) {
                        return fail(e, c, i);
                    }
                    ++i;
                }
                break;
            }
            case state::failed:
                return {scan_status::error, i, make_error_code(error_)};
        }
    }
    if (done) {
        frame_done_ = true;
        state_ = state::frame_start;
        return {scan_status::frame_done, i, {}};
    }
    return {scan_status::need_more, i, {}};
}

namespace {

/// A length or integer line's digits and CRLF, all in [p, end): the value and the position
/// after the LF. nullptr for whatever the byte-wise path must judge: no CRLF yet, no digit, a
/// leading zero, more than 18 digits (cannot overflow), any other byte.
const char* fast_number(const char* p, const char* end, std::uint64_t& value) {
    const char* const start = p;
    std::uint64_t v = 0;
    while (p < end && is_digit(*p)) {
        v = v * 10 + static_cast<std::uint64_t>(*p - '0');
        if (++p - start > 18) return nullptr;
    }
    const auto digits = p - start;
    if (digits == 0 || (digits > 1 && *start == '0')) return nullptr;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return nullptr;
    value = v;
    return p + 2;
}

}  // namespace

// "*N\r\n" then N times "$L\r\n" + L bytes + "\r\n", all present.
bool scanner::fast_command(const char* data, std::size_t size, std::size_t& consumed) {
    const char* const end = data + size;
    std::uint64_t argc = 0;
    const char* p = fast_number(data + 1, end, argc);
    if (p == nullptr || argc == 0 ||
        argc > static_cast<std::uint64_t>(options_.max_aggregate_length)) {
        return false;
    }
    frame_info info;
    info.type = '*';
    info.argc = static_cast<std::int64_t>(argc);
    for (std::uint64_t k = 0; k < argc; ++k) {
        if (p == end || *p != '$') return false;
        std::uint64_t length = 0;
        p = fast_number(p + 1, end, length);
        if (p == nullptr || length > static_cast<std::uint64_t>(options_.max_bulk_length) ||
            static_cast<std::uint64_t>(end - p) < length + 2) {
            return false;
        }
        if (k == 0) {
            const std::size_t n = std::min<std::size_t>(length, command_name_capacity);
            for (std::size_t j = 0; j < n; ++j) info.name_bytes[j] = to_lower(p[j]);
            info.name_size = static_cast<std::uint8_t>(n);
            info.name_too_long = length > command_name_capacity;
            info.name_complete = true;
        }
        p += length;
        if (p[0] != '\r' || p[1] != '\n') return false;
        p += 2;
    }
    info_ = info;
    consumed = static_cast<std::size_t>(p - data);
    return true;
}

// One RESP2 value that is no aggregate ("+…", "-…", ":N", "$-1", "$L" + payload), all in
// [p, end): the position after it, or nullptr. A simple string's text goes to `line`.
const char* scanner::fast_value(const char* p, const char* end, std::string_view& line) const {
    const char type = *p++;
    switch (type) {
        case '+':
        case '-': {
            const auto* cr =
                static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(end - p)));
            if (cr == nullptr || end - cr < 2 || cr[1] != '\n') return nullptr;
            const auto length = static_cast<std::size_t>(cr - p);
            if (length > options_.max_line_length || std::memchr(p, '\n', length) != nullptr) {
                return nullptr;
            }
            line = std::string_view(p, length);
            return cr + 2;
        }
        case ':': {
            if (p < end && *p == '-') ++p;
            std::uint64_t value = 0;
            return fast_number(p, end, value);
        }
        case '$': {
            if (end - p >= 4 && std::memcmp(p, "-1\r\n", 4) == 0) return p + 4;
            std::uint64_t length = 0;
            p = fast_number(p, end, length);
            if (p == nullptr || length > static_cast<std::uint64_t>(options_.max_bulk_length) ||
                static_cast<std::uint64_t>(end - p) < length + 2) {
                return nullptr;
            }
            p += length;
            return p[0] == '\r' && p[1] == '\n' ? p + 2 : nullptr;
        }
        default:
            return nullptr;
    }
}

// A top-level value of fast_value's kinds, or an array of them (MGET, LRANGE, HGETALL in
// RESP2), all present.
bool scanner::fast_reply(const char* data, std::size_t size, std::size_t& consumed) {
    const char* const end = data + size;
    const char* p = data;
    frame_info info;
    info.type = data[0];
    std::string_view line;
    if (data[0] == '*') {
        std::uint64_t n = 0;
        p = fast_number(data + 1, end, n);
        if (p == nullptr || n == 0 ||
            n > static_cast<std::uint64_t>(options_.max_aggregate_length)) {
            return false;
        }
        for (std::uint64_t k = 0; k < n; ++k) {
            if (p == end || (p = fast_value(p, end, line)) == nullptr) return false;
        }
    } else {
        p = fast_value(data, end, line);
        if (p == nullptr) return false;
        if (data[0] == '+' || data[0] == '-') {
            const std::size_t n = std::min(line.size(), reply_head_capacity);
            std::copy_n(line.data(), n, info.head_bytes.begin());
            info.head_size = static_cast<std::uint8_t>(n);
            info.head_truncated = line.size() > reply_head_capacity;
        }
    }
    info_ = info;
    consumed = static_cast<std::size_t>(p - data);
    return true;
}

error scanner::on_type_byte(char c) {
    auto begin_line = [this](line_kind k, char t) {
        kind_ = k;
        type_ = t;
        negative_ = streamed_mark_ = false;
        magnitude_ = digits_ = line_length_ = 0;
        capture_head_ = capture_name_ = false;
        state_ = state::line;
    };
    if (dir_ == direction::command) {
        // Inside a multibulk command: every argument is a bulk string.
        if (c != '$') return error::expected_bulk;
        begin_line(line_kind::bulk_length, c);
        capture_name_ = pending_ == info_.argc;
        return take_slot();
    }
    line_kind k{};
    bool resp3_only = true;
    switch (c) {
        case '+':
        case '-':
            k = line_kind::simple;
            resp3_only = false;
            break;
        case ':':
            k = line_kind::integer;
            resp3_only = false;
            break;
        case '$':
            k = line_kind::bulk_length;
            resp3_only = false;
            break;
        case '*':
            k = line_kind::aggregate_length;
            resp3_only = false;
            break;
        case ',':
            k = line_kind::simple;
            break;
        case '(':
            k = line_kind::integer;
            break;
        case '_':
            k = line_kind::null;
            break;
        case '#':
            k = line_kind::boolean;
            break;
        case '!':
        case '=':
            k = line_kind::bulk_length;
            break;
        case '%':
        case '~':
        case '>':
        case '|':
            k = line_kind::aggregate_length;
            break;
        case '.':
            k = line_kind::end_marker;
            break;
        default:
            return error::invalid_reply_type;
    }
    if (resp3_only && !options_.resp3) return error::invalid_reply_type;
    const bool top = segments_size_ == 0 && !top_started_;
    if (c == '.') {
        if (segments_size_ == 0 || after_attribute_) return error::unexpected_end_marker;
        const segment& g = segments_[segments_size_ - 1];
        if (!g.streamed || pending_ != 0 || (g.pairs && g.elements % 2 != 0)) {
            return error::unexpected_end_marker;
        }
    } else if (c == '|') {
        // An attribute takes no slot: the value it annotates does.
        if (top) info_.has_attribute = true;
    } else {
        after_attribute_ = false;
        if (top) {
            info_.type = c;
            info_.is_push = c == '>';
            top_started_ = true;
        }
        if (const error e = take_slot(); e != ok) return e;
    }
    begin_line(k, c);
    capture_head_ = top && (c == '+' || c == '-' || c == '!');
    return ok;
}

error scanner::on_line_byte(char c) {
    ++line_length_;
    switch (kind_) {
        case line_kind::simple:
            if (line_length_ > options_.max_line_length) return error::line_too_long;
            if (capture_head_) {
                if (info_.head_size < reply_head_capacity) {
                    info_.head_bytes[info_.head_size++] = c;
                } else {
                    info_.head_truncated = true;
                }
            }
            return ok;
        case line_kind::null:
            return error::invalid_null;
        case line_kind::boolean:
            return line_length_ == 1 && (c == 't' || c == 'f') ? ok : error::invalid_boolean;
        case line_kind::end_marker:
            return error::unexpected_end_marker;
        case line_kind::integer: {
            const bool big = type_ == '(';
            if (big ? line_length_ > options_.max_line_length : line_length_ > max_number_length) {
                return big ? error::line_too_long : error::invalid_integer;
            }
            if (c == '-' && line_length_ == 1) {
                negative_ = true;
                return ok;
            }
            if (!is_digit(c)) return error::invalid_integer;
            ++digits_;
            if (!big) {
                const std::uint64_t limit =
                    negative_ ? min_int64_magnitude : min_int64_magnitude - 1;
                const auto d = static_cast<std::uint64_t>(c - '0');
                if (magnitude_ > (limit - d) / 10) return error::invalid_integer;
                magnitude_ = magnitude_ * 10 + d;
            }
            return ok;
        }
        case line_kind::bulk_length:
        case line_kind::aggregate_length:
        case line_kind::chunk_length: {
            const bool aggregate = kind_ == line_kind::aggregate_length;
            const error invalid = aggregate ? error::invalid_multibulk_length
                                  : kind_ == line_kind::bulk_length ? error::invalid_bulk_length
                                                                    : error::invalid_stream_chunk;
            if (line_length_ > max_number_length || streamed_mark_) return invalid;
            if (line_length_ == 1 && c == '?') {
                const bool streamable =
                    dir_ == direction::reply && options_.resp3 &&
                    (type_ == '$' || type_ == '*' || type_ == '%' || type_ == '~');
                if (!streamable) return invalid;
                streamed_mark_ = true;
                return ok;
            }
            if (line_length_ == 1 && c == '-' && kind_ != line_kind::chunk_length) {
                negative_ = true;
                return ok;
            }
            if (!is_digit(c)) return invalid;
            ++digits_;
            const auto d = static_cast<std::uint64_t>(c - '0');
            // Only "-1" is a valid negative length; a positive one is checked against its limit
            // digit by digit, so an oversized header is refused before its CRLF.
            // A command's negative multibulk length is any number (Redis ignores the request).
            const std::uint64_t limit =
                negative_ ? (aggregate && dir_ == direction::command ? min_int64_magnitude : 1)
                          : static_cast<std::uint64_t>(aggregate ? options_.max_aggregate_length
                                                                 : options_.max_bulk_length);
            if (magnitude_ > (limit - std::min(limit, d)) / 10 || d > limit) {
                return negative_ ? invalid
                                 : (aggregate ? error::multibulk_too_long : error::bulk_too_long);
            }
            magnitude_ = magnitude_ * 10 + d;
            return ok;
        }
    }
    return ok;
}

error scanner::finish_line(bool& frame_done) {
    switch (kind_) {
        case line_kind::simple:
        case line_kind::null:
            frame_done = complete_value();
            return ok;
        case line_kind::boolean:
            if (line_length_ != 1) return error::invalid_boolean;
            frame_done = complete_value();
            return ok;
        case line_kind::integer:
            if (digits_ == 0) return error::invalid_integer;
            frame_done = complete_value();
            return ok;
        case line_kind::end_marker:
            // on_type_byte checked that the innermost segment is a complete streamed aggregate.
            pending_ = segments_[--segments_size_].saved_pending;
            frame_done = complete_value();
            return ok;
        case line_kind::chunk_length:
            if (digits_ == 0) return error::invalid_stream_chunk;
            if (magnitude_ == 0) {  // ";0": the streamed string is complete
                frame_done = complete_value();
                return ok;
            }
            in_chunk_ = true;
            return start_payload(static_cast<std::int64_t>(magnitude_));
        case line_kind::bulk_length:
            if (streamed_mark_) {
                state_ = state::chunk_start;
                return ok;
            }
            if (digits_ == 0 || (negative_ && magnitude_ != 1)) return error::invalid_bulk_length;
            if (negative_) {
                // "$-1" is a RESP2 null reply; Redis refuses any negative length in a command.
                if (dir_ == direction::command || type_ != '$') return error::invalid_bulk_length;
                frame_done = complete_value();
                return ok;
            }
            if (type_ == '=' && magnitude_ < 4) return error::invalid_verbatim_string;
            return start_payload(static_cast<std::int64_t>(magnitude_));
        case line_kind::aggregate_length: {
            if (streamed_mark_) return open_segment(0, true);
            if (digits_ == 0 || (negative_ && magnitude_ == 0)) {
                return error::invalid_multibulk_length;
            }
            if (negative_ && dir_ == direction::reply && (type_ != '*' || magnitude_ != 1)) {
                return error::invalid_multibulk_length;
            }
            if (negative_ || magnitude_ == 0) {
                if (dir_ == direction::command) {
                    // "*0" and "*-N" are empty commands Redis ignores without a reply.
                    info_ = frame_info{};
                    state_ = state::frame_start;
                    return ok;
                }
                if (type_ == '|') {  // an empty attribute still precedes a value
                    after_attribute_ = true;
                    state_ = state::type_byte;
                    return ok;
                }
                frame_done = complete_value();  // "*-1" null array or an empty aggregate
                return ok;
            }
            const auto n = static_cast<std::int64_t>(magnitude_);
            if (dir_ == direction::command) info_.argc = n;
            if (type_ == '|') return open_segment(2 * n, false);
            return open_aggregate(type_ == '%' ? 2 * n : n);
        }
    }
    return ok;
}

error scanner::start_payload(std::int64_t length) {
    payload_length_ = remaining_ = length;
    verbatim_ = type_ == '=';
    if (capture_name_ && length > static_cast<std::int64_t>(command_name_capacity)) {
        info_.name_too_long = true;
    }
    if (capture_head_ && length > static_cast<std::int64_t>(reply_head_capacity)) {
        info_.head_truncated = true;
    }
    state_ = length > 0 ? state::payload : state::payload_cr;
    return ok;
}

// A value begins: it fills one of the slots its parent is waiting for, or, directly inside a
// streamed aggregate (which has no count), it is one more element of it.
error scanner::take_slot() {
    if (pending_ > 0) {
        --pending_;
        return ok;
    }
    if (segments_size_ == 0 || !segments_[segments_size_ - 1].streamed) {
        return error::protocol_error;  // unreachable: a frame with no slot left has ended
    }
    ++segments_[segments_size_ - 1].elements;
    return ok;
}

error scanner::open_aggregate(std::int64_t elements) {
    if (pending_ > max_pending - elements) return error::nesting_too_deep;
    pending_ += elements;
    state_ = state::type_byte;
    return ok;
}

error scanner::open_segment(std::int64_t pending, bool streamed) {
    if (segments_size_ >= max_nesting_depth) return error::nesting_too_deep;
    segments_[segments_size_++] = {pending_, 0, streamed, type_ == '%'};
    pending_ = pending;
    state_ = state::type_byte;
    return ok;
}

// A value ended. Slots are taken when values begin, so when none is pending the innermost
// counted aggregates are all complete: the frame ends, a streamed aggregate waits for its next
// element or its end marker, and an attribute hands over to the value it annotates.
bool scanner::complete_value() {
    state_ = state::type_byte;
    while (pending_ == 0) {
        if (segments_size_ == 0) return true;
        const segment& g = segments_[segments_size_ - 1];
        if (g.streamed) return false;
        pending_ = g.saved_pending;
        --segments_size_;
        after_attribute_ = true;
    }
    return false;
}

void scanner::capture_payload(const char* data, std::size_t size) {
    const auto offset = static_cast<std::size_t>(payload_length_ - remaining_);
    if (capture_name_ && offset < command_name_capacity) {
        const std::size_t n = std::min(size, command_name_capacity - offset);
        for (std::size_t k = 0; k < n; ++k) info_.name_bytes[offset + k] = to_lower(data[k]);
        info_.name_size = static_cast<std::uint8_t>(offset + n);
    }
    if (capture_head_ && offset < reply_head_capacity) {
        const std::size_t n = std::min(size, reply_head_capacity - offset);
        std::copy_n(data, n, info_.head_bytes.begin() + static_cast<std::ptrdiff_t>(offset));
        info_.head_size = static_cast<std::uint8_t>(offset + n);
    }
}

error scanner::inline_char(char c) {
    if (++inline_length_ > options_.max_inline_length) return error::inline_too_long;
    return inline_byte(c);
}

// Redis' sdssplitargs as a state machine fed one byte at a time: same arguments, same errors.
error scanner::inline_byte(char c) {
    switch (inline_) {
        case inline_state::blank:
            if (is_space(c)) return ok;
            if (c == '\0') {
                inline_ = inline_state::ignore_rest;
                return ok;
            }
            ++info_.argc;
            arg_length_ = 0;
            inline_ = inline_state::word;
            [[fallthrough]];
        case inline_state::word:
            switch (c) {
                case ' ':
                case '\n':
                case '\r':
                case '\t':
                    inline_end_arg();
                    inline_ = inline_state::blank;
                    return ok;
                case '\0':
                    inline_end_arg();
                    inline_ = inline_state::ignore_rest;
                    return ok;
                case '"':
                    inline_ = inline_state::dquote;
                    return ok;
                case '\'':
                    inline_ = inline_state::squote;
                    return ok;
                default:
                    inline_append(c);
                    return ok;
            }
        case inline_state::dquote:
            if (c == '\\') {
                inline_ = inline_state::dquote_escape;
            } else if (c == '"') {
                inline_ = inline_state::after_quote;
            } else if (c == '\0') {
                return error::unbalanced_quotes;
            } else {
                inline_append(c);
            }
            return ok;
        case inline_state::dquote_escape:
            if (c == '\0') return error::unbalanced_quotes;
            if (c == 'x') {
                inline_ = inline_state::dquote_hex1;
                return ok;
            }
            inline_append(unescape(c));
            inline_ = inline_state::dquote;
            return ok;
        case inline_state::dquote_hex1:
            if (is_hex(c)) {
                hex1_ = c;
                inline_ = inline_state::dquote_hex2;
                return ok;
            }
            inline_append('x');  // "\x" without two hex digits is a literal 'x'
            inline_ = inline_state::dquote;
            return inline_byte(c);
        case inline_state::dquote_hex2:
            if (is_hex(c)) {
                inline_append(static_cast<char>(hex_value(hex1_) * 16 + hex_value(c)));
                inline_ = inline_state::dquote;
                return ok;
            }
            inline_append('x');
            inline_append(hex1_);
            inline_ = inline_state::dquote;
            return inline_byte(c);
        case inline_state::squote:
            if (c == '\\') {
                inline_ = inline_state::squote_escape;
            } else if (c == '\'') {
                inline_ = inline_state::after_quote;
            } else if (c == '\0') {
                return error::unbalanced_quotes;
            } else {
                inline_append(c);
            }
            return ok;
        case inline_state::squote_escape:
            inline_ = inline_state::squote;
            if (c == '\'') {
                inline_append('\'');
                return ok;
            }
            inline_append('\\');
            return inline_byte(c);
        case inline_state::after_quote:
            // A closing quote must be followed by a space or nothing at all.
            if (c == '\0') {
                inline_end_arg();
                inline_ = inline_state::ignore_rest;
                return ok;
            }
            if (!is_space(c)) return error::unbalanced_quotes;
            inline_end_arg();
            inline_ = inline_state::blank;
            return ok;
        case inline_state::ignore_rest:
            return ok;
    }
    return ok;
}

void scanner::inline_append(char c) {
    ++arg_length_;
    if (info_.argc != 1) return;
    if (info_.name_size < command_name_capacity) {
        info_.name_bytes[info_.name_size++] = to_lower(c);
    } else {
        info_.name_too_long = true;
    }
}

void scanner::inline_end_arg() {
    if (info_.argc == 1) info_.name_complete = true;
}

std::string scanner::error_reply() const {
    std::string out = "-ERR Protocol error: ";
    out += make_error_code(error_).message();
    if (error_ == error::expected_bulk || error_ == error::unexpected_command_type ||
        error_ == error::invalid_reply_type) {
        // Like Redis' "expected '$', got '%c'", but a byte a terminal would mangle is escaped.
        const auto u = static_cast<unsigned char>(error_byte_);
        out += ", got '";
        if (u >= 0x20 && u < 0x7f && u != '\'') {
            out += error_byte_;
        } else {
            constexpr std::string_view digits = "0123456789abcdef";
            out += "\\x";
            out += digits[u >> 4];
            out += digits[u & 0xf];
        }
        out += '\'';
    }
    out += "\r\n";
    return out;
}

}  // namespace redis_sidecar::resp
