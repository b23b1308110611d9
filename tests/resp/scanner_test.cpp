#include "redis_sidecar/resp/scanner.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <vector>

// Counts heap allocations so tests can prove the scanner never allocates. Replacing the global
// operators is the only way to observe allocations without a custom allocator parameter. GCC
// sees malloc inside operator new and free inside operator delete and cries mismatch; the pair
// is consistent, so that warning is off for this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<std::size_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
    return ::operator new(size);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}

namespace redis_sidecar::resp {
namespace {

constexpr std::size_t no_offset = static_cast<std::size_t>(-1);

/// What feeding one input produced, independent of how it was split.
struct outcome {
    struct frame {
        std::size_t end = 0;  // stream offset just past the frame
        frame_info info;
        bool operator==(const frame&) const = default;
    };
    std::vector<frame> frames;
    scan_status final_status = scan_status::need_more;
    std::error_code error;
    std::size_t error_offset = no_offset;  // stream offset of the offending byte
    std::size_t consumed = 0;              // total bytes consumed

    bool operator==(const outcome&) const = default;
};

/// Feeds `input` cut at `cuts` (ascending offsets), checking the scan() contract on each call.
outcome run(direction dir, const scanner_options& options, std::string_view input,
            const std::vector<std::size_t>& cuts) {
    scanner s(dir, options);
    outcome out;
    std::size_t start = 0;
    auto feed = [&](std::string_view piece) {
        while (true) {
            const scan_result r = s.scan(piece);
            EXPECT_LE(r.consumed, piece.size());
            out.consumed += r.consumed;
            switch (r.status) {
                case scan_status::need_more:
                    EXPECT_EQ(r.consumed, piece.size()) << "need_more must consume everything";
                    return true;
                case scan_status::frame_done:
                    EXPECT_GT(r.consumed, 0u);
                    out.frames.push_back({out.consumed, s.info()});
                    piece.remove_prefix(r.consumed);
                    if (piece.empty()) return true;
                    break;
                case scan_status::error:
                    out.final_status = scan_status::error;
                    out.error = r.error;
                    out.error_offset = out.consumed;
                    EXPECT_TRUE(s.failed());
                    EXPECT_EQ(s.last_error(), r.error);
                    // A failed scanner stays failed and consumes nothing.
                    EXPECT_EQ(s.scan("+OK\r\n").status, scan_status::error);
                    EXPECT_EQ(s.scan("+OK\r\n").consumed, 0u);
                    return false;
            }
        }
    };
    for (const std::size_t cut : cuts) {
        if (!feed(input.substr(start, cut - start))) return out;
        start = cut;
    }
    feed(input.substr(start));
    return out;
}

std::vector<std::size_t> whole(std::string_view) {
    return {};
}

std::vector<std::size_t> bytewise(std::string_view input) {
    std::vector<std::size_t> cuts;
    for (std::size_t k = 1; k < input.size(); ++k) cuts.push_back(k);
    return cuts;
}

std::vector<std::size_t> random_cuts(std::string_view input, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::size_t> cuts;
    const std::size_t max_piece = seed % 2 == 0 ? 7 : std::max<std::size_t>(1, input.size() / 3);
    std::uniform_int_distribution<std::size_t> piece(1, max_piece);
    for (std::size_t at = piece(rng); at < input.size(); at += piece(rng)) cuts.push_back(at);
    return cuts;
}

/// Runs whole, byte by byte and at random split points; all must agree. Returns the whole run.
outcome run_all_splits(direction dir, const scanner_options& options, std::string_view input) {
    const outcome reference = run(dir, options, input, whole(input));
    EXPECT_EQ(run(dir, options, input, bytewise(input)), reference) << "byte-at-a-time differs";
    for (unsigned seed = 1; seed <= 16; ++seed) {
        EXPECT_EQ(run(dir, options, input, random_cuts(input, seed)), reference)
            << "random split, seed " << seed;
    }
    return reference;
}

// ---------------------------------------------------------------------------------------------
// Table-driven cases.

struct expect_frame {
    std::size_t size;        // bytes of the frame, including skipped empty commands before it
    char type;               // frame_info::type
    std::string text = {};   // command name (command) or head (reply)
    std::int64_t argc = 0;   // command: argument count
    std::string flags = {};  // any of: inline push attr long
};

struct scan_case {
    std::string name;
    direction dir;
    std::string input;
    std::vector<expect_frame> frames;
    std::optional<error> err = std::nullopt;  // else: need_more with everything consumed
    std::size_t err_at = no_offset;           // offending byte's offset, when checked
    scanner_options options = dir == direction::command ? scanner_options::for_commands()
                                                        : scanner_options::for_replies();
};

std::ostream& operator<<(std::ostream& os, const scan_case& c) {
    return os << c.name;
}

scan_case rep(std::string name, std::string input, std::vector<expect_frame> frames,
              std::optional<error> err = std::nullopt, std::size_t err_at = no_offset) {
    return {std::move(name), direction::reply, std::move(input), std::move(frames), err, err_at};
}

scan_case cmd(std::string name, std::string input, std::vector<expect_frame> frames,
              std::optional<error> err = std::nullopt, std::size_t err_at = no_offset) {
    return {std::move(name), direction::command, std::move(input), std::move(frames), err, err_at};
}

std::string repeat(std::string_view s, std::size_t n) {
    std::string out;
    for (std::size_t k = 0; k < n; ++k) out += s;
    return out;
}

const std::string long_error = "-READONLY You can't write against a read only replica.\r\n";
const std::string attribute_reply =
    "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
    "*2\r\n:2039123\r\n:9543892\r\n";

std::vector<scan_case> reply_cases() {
    std::vector<scan_case> v = {
        // RESP2 types.
        rep("simple_string", "+OK\r\n", {{5, '+', "OK"}}),
        rep("simple_string_empty", "+\r\n", {{3, '+', ""}}),
        rep("simple_error", "-ERR unknown command\r\n", {{22, '-', "ERR unknown command"}}),
        rep("simple_error_long_head", long_error,
            {{long_error.size(), '-', "READONLY You can't write against", 0, "long"}}),
        rep("loading_error", "-LOADING Redis is loading\r\n",
            {{27, '-', "LOADING Redis is loading"}}),
        rep("integer", ":1000\r\n", {{7, ':'}}),
        rep("integer_negative", ":-42\r\n", {{6, ':'}}),
        rep("integer_min", ":-9223372036854775808\r\n", {{23, ':'}}),
        rep("integer_max", ":9223372036854775807\r\n", {{22, ':'}}),
        rep("bulk", "$5\r\nhello\r\n", {{11, '$'}}),
        rep("bulk_empty", "$0\r\n\r\n", {{6, '$'}}),
        // Whole frames take the fast path, split ones the byte-wise one: same results.
        rep("flat_array_mixed", "*4\r\n$3\r\nfoo\r\n$-1\r\n:7\r\n+OK\r\n", {{27, '*'}}),
        rep("array_nested_falls_back", "*2\r\n*1\r\n:1\r\n:2\r\n", {{16, '*'}}),
        rep("reply_pipeline", "+OK\r\n$1\r\nx\r\n:1\r\n-ERR x\r\n",
            {{5, '+', "OK"}, {7, '$'}, {4, ':'}, {8, '-', "ERR x"}}),
        rep("integer_19_digits", ":1234567890123456789\r\n", {{22, ':'}}),
        rep("bulk_length_leading_zero", "$03\r\nabc\r\n", {{10, '$'}}),
        rep("simple_with_lf_inside", "+O\nK\r\n", {}, error::expected_crlf, 2),
        rep("bulk_without_crlf", "$1\r\nxyz", {}, error::expected_crlf, 5),
        rep("array_partial", "*3\r\n$1\r\na\r\n:5\r\n", {}),
        rep("bulk_with_crlf_inside", "$4\r\n\r\n\r\n\r\n", {{10, '$'}}),
        rep("bulk_null", "$-1\r\n", {{5, '$'}}),
        rep("array", "*2\r\n$3\r\nfoo\r\n:1\r\n", {{17, '*'}}),
        rep("array_empty", "*0\r\n", {{4, '*'}}),
        rep("array_null", "*-1\r\n", {{5, '*'}}),
        rep("array_nested", "*2\r\n*1\r\n+a\r\n*0\r\n", {{16, '*'}}),
        rep("array_of_nulls", "*3\r\n$-1\r\n*-1\r\n_\r\n", {{17, '*'}}),
        rep("lrange", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", {{25, '*'}}),
        // RESP3 types.
        rep("null", "_\r\n", {{3, '_'}}),
        rep("double", ",3.14\r\n", {{7, ','}}),
        rep("double_inf", ",-inf\r\n", {{7, ','}}),
        rep("boolean_true", "#t\r\n", {{4, '#'}}),
        rep("boolean_false", "#f\r\n", {{4, '#'}}),
        rep("blob_error", "!21\r\nSYNTAX invalid syntax\r\n", {{28, '!', "SYNTAX invalid syntax"}}),
        rep("blob_error_long", "!40\r\n" + std::string(40, 'E') + "\r\n",
            {{47, '!', std::string(32, 'E'), 0, "long"}}),
        rep("verbatim", "=15\r\ntxt:Some string\r\n", {{22, '='}}),
        rep("verbatim_minimal", "=4\r\ntxt:\r\n", {{10, '='}}),
        rep("big_number", "(3492890328409238509324850943850943825024385\r\n", {{46, '('}}),
        rep("big_number_negative", "(-12\r\n", {{6, '('}}),
        rep("map", "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", {{29, '%'}}),
        rep("map_empty", "%0\r\n", {{4, '%'}}),
        rep("set", "~2\r\n+a\r\n+b\r\n", {{12, '~'}}),
        rep("push", ">3\r\n+message\r\n+chan\r\n$5\r\nhello\r\n", {{32, '>', "", 0, "push"}}),
        rep("attribute_top_level", attribute_reply, {{attribute_reply.size(), '*', "", 0, "attr"}}),
        rep("attribute_nested", "*2\r\n|1\r\n+ttl\r\n:3600\r\n+v\r\n:1\r\n", {{29, '*'}}),
        rep("attribute_empty", "|0\r\n+OK\r\n", {{9, '+', "OK", 0, "attr"}}),
        rep("attribute_twice", "|1\r\n+a\r\n+b\r\n|0\r\n:1\r\n", {{20, ':', "", 0, "attr"}}),
        rep("attribute_before_push", "|1\r\n+a\r\n+b\r\n>1\r\n+x\r\n",
            {{20, '>', "", 0, "attr push"}}),
        rep("streamed_string", "$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n", {{36, '$'}}),
        rep("streamed_string_empty", "$?\r\n;0\r\n", {{8, '$'}}),
        rep("streamed_array", "*?\r\n:1\r\n:2\r\n.\r\n", {{15, '*'}}),
        rep("streamed_array_empty", "*?\r\n.\r\n", {{7, '*'}}),
        rep("streamed_map", "%?\r\n+a\r\n:1\r\n.\r\n", {{15, '%'}}),
        rep("streamed_set", "~?\r\n+a\r\n.\r\n", {{11, '~'}}),
        rep("streamed_nested", "*?\r\n*?\r\n$?\r\n;1\r\nx\r\n;0\r\n.\r\n*1\r\n:1\r\n.\r\n",
            {{37, '*'}}),
        rep("streamed_with_attribute", "*?\r\n|1\r\n+a\r\n+b\r\n:1\r\n.\r\n", {{23, '*'}}),
        rep("depth_64", repeat("*1\r\n", 64) + ":1\r\n", {{260, '*'}}),
        rep("depth_64_plus_empty", repeat("*1\r\n", 64) + "*0\r\n", {{260, '*'}}),
        // Counted aggregates nest without limit (a Lua script answers ~8,000 levels of "*1"
        // and then an error); the next frame is still framed on its own.
        rep("depth_8000_lua_stack_limit",
            repeat("*1\r\n", 8000) + "-ERR reached lua stack limit\r\n+OK\r\n",
            {{32000 + 30, '*'}, {5, '+', "OK"}}),
        rep("depth_mixed_widths",
            "*2\r\n*3\r\n:1\r\n*1\r\n*2\r\n$1\r\na\r\n_\r\n%1\r\n+k\r\n*0\r\n"
            ":2\r\n:3\r\n",
            {{46, '*'}, {4, ':'}}),
        rep("streamed_in_deep_counted", repeat("*1\r\n", 100) + "*?\r\n*1\r\n:1\r\n.\r\n",
            {{400 + 15, '*'}}),
        rep("streamed_64", repeat("*?\r\n", 64) + repeat(".\r\n", 64), {{64 * 4 + 64 * 3, '*'}}),
        // Pipelines: exact consumed counts per frame.
        rep("pipeline", "+OK\r\n:1\r\n$3\r\nfoo\r\n*-1\r\n",
            {{5, '+', "OK"}, {4, ':'}, {9, '$'}, {5, '*'}}),
        rep("pipeline_resp3", ">2\r\n+a\r\n+b\r\n_\r\n%1\r\n+k\r\n+v\r\n#t\r\n",
            {{12, '>', "", 0, "push"}, {3, '_'}, {12, '%'}, {4, '#'}}),
        rep("pipeline_partial_tail", "+OK\r\n$5\r\nhel", {{5, '+', "OK"}}),
        rep("partial_only", "*2\r\n$3\r\nfo", {}),
        // Errors.
        rep("bad_type_byte", "?foo\r\n", {}, error::invalid_reply_type, 0),
        rep("bad_type_letter", "+OK\r\nhello\r\n", {{5, '+', "OK"}}, error::invalid_reply_type, 5),
        rep("bad_type_nested", "*1\r\n@\r\n", {}, error::invalid_reply_type, 4),
        rep("multibulk_non_digit", "*abc\r\n", {}, error::invalid_multibulk_length, 1),
        rep("multibulk_negative", "*-2\r\n", {}, error::invalid_multibulk_length, 2),
        rep("multibulk_minus_zero", "*-0\r\n", {}, error::invalid_multibulk_length, 4),
        rep("multibulk_empty", "*\r\n", {}, error::invalid_multibulk_length, 2),
        rep("map_null", "%-1\r\n", {}, error::invalid_multibulk_length, 4),
        rep("push_streamed", ">?\r\n", {}, error::invalid_multibulk_length, 1),
        rep("multibulk_trailing", "*1?\r\n", {}, error::invalid_multibulk_length, 2),
        rep("multibulk_too_long", "*4294967296\r\n", {}, error::multibulk_too_long, 10),
        rep("map_too_long", "%4294967296\r\n", {}, error::multibulk_too_long, 10),
        rep("multibulk_leading_zeros", "*" + std::string(30, '0') + "1\r\n", {},
            error::invalid_multibulk_length, 21),
        rep("bulk_non_digit", "$x\r\n", {}, error::invalid_bulk_length, 1),
        rep("bulk_negative", "$-2\r\n", {}, error::invalid_bulk_length, 2),
        rep("bulk_minus_zero", "$-0\r\n", {}, error::invalid_bulk_length, 4),
        rep("bulk_empty_length", "$\r\n", {}, error::invalid_bulk_length, 2),
        rep("blob_error_streamed", "!?\r\n", {}, error::invalid_bulk_length, 1),
        rep("blob_error_null", "!-1\r\n", {}, error::invalid_bulk_length, 4),
        // 600 MB header: refused on the digit that crosses 512 MiB, before CRLF and payload.
        rep("bulk_600mb_header", "$600000000\r\n", {}, error::bulk_too_long, 9),
        rep("crlf_missing_lf", "+OK\rX", {}, error::expected_crlf, 4),
        rep("crlf_bare_lf", "+OK\n", {}, error::expected_crlf, 3),
        rep("crlf_after_payload", "$3\r\nfooX\r\n", {}, error::expected_crlf, 7),
        rep("crlf_after_payload_lf", "$3\r\nfoo\rX", {}, error::expected_crlf, 8),
        rep("crlf_double_cr", ":1\r\r", {}, error::expected_crlf, 3),
        rep("integer_non_digit", ":abc\r\n", {}, error::invalid_integer, 1),
        rep("integer_empty", ":\r\n", {}, error::invalid_integer, 2),
        rep("integer_minus_only", ":-\r\n", {}, error::invalid_integer, 3),
        rep("integer_overflow", ":9223372036854775808\r\n", {}, error::invalid_integer, 19),
        rep("integer_plus", ":+1\r\n", {}, error::invalid_integer, 1),
        rep("big_number_bad", "(12a\r\n", {}, error::invalid_integer, 3),
        rep("null_not_empty", "_x\r\n", {}, error::invalid_null, 1),
        rep("boolean_bad", "#x\r\n", {}, error::invalid_boolean, 1),
        rep("boolean_long", "#tt\r\n", {}, error::invalid_boolean, 2),
        rep("boolean_empty", "#\r\n", {}, error::invalid_boolean, 2),
        rep("streamed_65", repeat("*?\r\n", 65), {}, error::nesting_too_deep, 259),
        rep("attributes_65", repeat("|1\r\n", 65), {}, error::nesting_too_deep, 259),
        rep("verbatim_short", "=3\r\ntxt\r\n", {}, error::invalid_verbatim_string, 3),
        rep("verbatim_no_colon", "=5\r\ntxtxy\r\n", {}, error::invalid_verbatim_string, 7),
        rep("chunk_missing_semicolon", "$?\r\nfoo", {}, error::invalid_stream_chunk, 4),
        rep("chunk_bad_length", "$?\r\n;x\r\n", {}, error::invalid_stream_chunk, 5),
        rep("chunk_negative", "$?\r\n;-1\r\n", {}, error::invalid_stream_chunk, 5),
        rep("chunk_empty_length", "$?\r\n;\r\n", {}, error::invalid_stream_chunk, 6),
        rep("chunk_too_long", "$?\r\n;600000000\r\n", {}, error::bulk_too_long, 13),
        rep("end_marker_top_level", ".\r\n", {}, error::unexpected_end_marker, 0),
        rep("end_marker_in_counted", "*1\r\n.\r\n", {}, error::unexpected_end_marker, 4),
        rep("end_marker_mid_pair", "%?\r\n+a\r\n.\r\n", {}, error::unexpected_end_marker, 8),
        rep("end_marker_after_attribute", "*?\r\n|1\r\n+a\r\n+b\r\n.\r\n", {},
            error::unexpected_end_marker, 16),
        rep("end_marker_not_empty", "*?\r\n.x\r\n", {}, error::unexpected_end_marker, 5),
    };
    scan_case resp2 =
        rep("resp2_refuses_map", "+OK\r\n%1\r\n", {{5, '+', "OK"}}, error::invalid_reply_type, 5);
    resp2.options.resp3 = false;
    v.push_back(resp2);
    scan_case resp2_stream =
        rep("resp2_refuses_streaming", "*?\r\n", {}, error::invalid_multibulk_length, 1);
    resp2_stream.options.resp3 = false;
    v.push_back(resp2_stream);
    scan_case line_limit = rep("line_too_long", "+12345678\r\n+123456789\r\n",
                               {{11, '+', "12345678"}}, error::line_too_long, 20);
    line_limit.options.max_line_length = 8;
    v.push_back(line_limit);
    return v;
}

const std::string long_name = std::string(40, 'A');
const std::string inline_max = std::string(default_max_inline_length, 'A');

std::vector<scan_case> command_cases() {
    std::vector<scan_case> v = {
        cmd("ping", "*1\r\n$4\r\nPING\r\n", {{14, '*', "ping", 1}}),
        cmd("set", "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", {{33, '*', "set", 3}}),
        cmd("binary_arg", "*2\r\n$3\r\nGeT\r\n$4\r\n\r\n\r\n\r\n", {{23, '*', "get", 2}}),
        cmd("empty_name", "*1\r\n$0\r\n\r\n", {{10, '*', "", 1}}),
        cmd("name_32", "*1\r\n$32\r\n" + std::string(32, 'X') + "\r\n",
            {{43, '*', std::string(32, 'x'), 1}}),
        cmd("name_too_long", "*1\r\n$40\r\n" + long_name + "\r\n",
            {{51, '*', std::string(32, 'a'), 1, "long"}}),
        cmd("empty_commands_skipped", "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", {{23, '*', "ping", 1}}),
        cmd("inline_crlf", "PING\r\n", {{6, 0, "ping", 1, "inline"}}),
        cmd("inline_lf", "PING\n", {{5, 0, "ping", 1, "inline"}}),
        cmd("inline_args", "set k v\n", {{8, 0, "set", 3, "inline"}}),
        cmd("inline_spaces", "  GET \t  key  \r\n", {{16, 0, "get", 2, "inline"}}),
        cmd("inline_quotes", "SET \"a b\" 'c d'\r\n", {{17, 0, "set", 3, "inline"}}),
        cmd("inline_quoted_name", "\"GET\" k\n", {{8, 0, "get", 2, "inline"}}),
        cmd("inline_hex_escape", "\"\\x47ET\" k\n", {{11, 0, "get", 2, "inline"}}),
        cmd("inline_bad_hex_is_literal", "\"\\xZZ\" k\n", {{9, 0, "xzz", 2, "inline"}}),
        cmd("inline_half_hex", "\"\\x4Z\" k\n", {{9, 0, "x4z", 2, "inline"}}),
        cmd("inline_escapes", "ECHO \"a\\n\\\"b\\\\\"\n", {{16, 0, "echo", 2, "inline"}}),
        cmd("inline_single_quote_escape", "ECHO 'it\\'s' '\\x'\n", {{18, 0, "echo", 3, "inline"}}),
        cmd("inline_quote_mid_word", "foo\"bar baz\" x\n", {{15, 0, "foobar baz", 2, "inline"}}),
        cmd("inline_nul_ends_args", std::string("GET a\0b c\n", 10), {{10, 0, "get", 2, "inline"}}),
        cmd("inline_cr_in_line", "GET\rk\r\n", {{7, 0, "get", 2, "inline"}}),
        cmd("inline_cr_before_crlf", "GET\r\r\n", {{6, 0, "get", 1, "inline"}}),
        cmd("inline_cr_in_quotes", "SET k \"a\rb\"\r\n", {{13, 0, "set", 3, "inline"}}),
        cmd("inline_vertical_tab_in_word", "GET\va\n", {{6, 0, "get\va", 1, "inline"}}),
        cmd("inline_name_too_long", long_name + "\n",
            {{41, 0, std::string(32, 'a'), 1, "inline long"}}),
        cmd("inline_blank_lines_skipped", "\r\n\n  \r\nPING\r\n", {{13, 0, "ping", 1, "inline"}}),
        cmd("inline_only_blank", "\r\n\r\n \t\n", {}),
        cmd("inline_max_length", inline_max + "\r\n",
            {{inline_max.size() + 2, 0, std::string(32, 'a'), 1, "inline long"}}),
        cmd("pipeline_mixed", "PING\r\n*1\r\n$4\r\nPING\r\nECHO hi\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
            {{6, 0, "ping", 1, "inline"},
             {14, '*', "ping", 1},
             {8, 0, "echo", 2, "inline"},
             {20, '*', "get", 2}}),
        cmd("pipeline_partial_tail", "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1",
            {{14, '*', "ping", 1}}),
        // Errors.
        cmd("type_simple_string", "+PING\r\n", {}, error::unexpected_command_type, 0),
        cmd("type_bulk", "*1\r\n$4\r\nPING\r\n$4\r\nPING\r\n", {{14, '*', "ping", 1}},
            error::unexpected_command_type, 14),
        cmd("type_integer", ":1\r\n", {}, error::unexpected_command_type, 0),
        cmd("expected_bulk_integer", "*1\r\n:1\r\n", {}, error::expected_bulk, 4),
        cmd("expected_bulk_nested", "*2\r\n$3\r\nGET\r\n*1\r\n", {}, error::expected_bulk, 13),
        cmd("multibulk_non_digit", "*x\r\n", {}, error::invalid_multibulk_length, 1),
        // Redis ignores a request with a negative multibulk length and serves the next one.
        cmd("multibulk_negative_ignored", "*-10\r\n*1\r\n$4\r\nPING\r\n", {{20, '*', "ping", 1}}),
        cmd("multibulk_most_negative_ignored", "*-9223372036854775808\r\n*1\r\n$4\r\nPING\r\n",
            {{23 + 14, '*', "ping", 1}}),
        cmd("command_multibulk_minus_zero", "*-0\r\n", {}, error::invalid_multibulk_length, 4),
        cmd("multibulk_too_negative", "*-9223372036854775809\r\n", {},
            error::invalid_multibulk_length, 20),
        cmd("multibulk_streamed", "*?\r\n", {}, error::invalid_multibulk_length, 1),
        cmd("multibulk_trailing", "*1x\r\n", {}, error::invalid_multibulk_length, 2),
        cmd("multibulk_too_long", "*1048577\r\n", {}, error::multibulk_too_long, 7),
        cmd("bulk_null_in_command", "*1\r\n$-1\r\n", {}, error::invalid_bulk_length, 8),
        cmd("bulk_streamed_in_command", "*1\r\n$?\r\n", {}, error::invalid_bulk_length, 5),
        cmd("bulk_empty_length", "*1\r\n$\r\n", {}, error::invalid_bulk_length, 6),
        cmd("bulk_600mb_header", "*1\r\n$600000000\r\n", {}, error::bulk_too_long, 13),
        cmd("inline_too_long", inline_max + "A\r\n", {}, error::inline_too_long,
            default_max_inline_length),
        cmd("inline_too_long_no_newline", inline_max + "AAAA", {}, error::inline_too_long,
            default_max_inline_length),
        cmd("unbalanced_double", "SET \"abc\r\n", {}, error::unbalanced_quotes, 9),
        cmd("unbalanced_single", "SET 'abc\n", {}, error::unbalanced_quotes, 8),
        cmd("unbalanced_after_quote", "SET \"a\"b\n", {}, error::unbalanced_quotes, 7),
        cmd("unbalanced_escaped_quote", "SET \"a\\\"\n", {}, error::unbalanced_quotes, 8),
        cmd("unbalanced_nul_in_quotes", std::string("SET \"a\0\"\n", 9), {},
            error::unbalanced_quotes, 6),
        cmd("crlf_after_arg", "*1\r\n$4\r\nPINGx\r\n", {}, error::expected_crlf, 12),
        cmd("crlf_in_header", "*1\rx", {}, error::expected_crlf, 3),
        // Whole frames take the fast path, split ones the byte-wise one: same results.
        cmd("pipeline_get_set",
            "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
            {{20, '*', "get", 2}, {27, '*', "set", 3}}),
        cmd("name_33", "*1\r\n$33\r\n" + std::string(33, 'Y') + "\r\n",
            {{44, '*', std::string(32, 'y'), 1, "long"}}),
        cmd("length_leading_zero", "*01\r\n$04\r\nPING\r\n", {{16, '*', "ping", 1}}),
        cmd("argument_not_bulk", "*2\r\n$3\r\nGET\r\n:1\r\n", {}, error::expected_bulk, 13),
        cmd("payload_without_crlf", "*1\r\n$4\r\nPINGxx", {}, error::expected_crlf, 12),
        cmd("fewer_arguments_than_announced", "*3\r\n$3\r\nGET\r\n$1\r\nk\r\n", {}),
    };
    scan_case args_limit = cmd("args_limit_option", "*3\r\n", {}, error::multibulk_too_long, 1);
    args_limit.options.max_aggregate_length = 2;
    v.push_back(args_limit);
    scan_case inline_limit = cmd("inline_limit_option", "GET\r\nGET k\r\n",
                                 {{5, 0, "get", 1, "inline"}}, error::inline_too_long, 9);
    inline_limit.options.max_inline_length = 4;
    v.push_back(inline_limit);
    return v;
}

class scanner_case_test : public ::testing::TestWithParam<scan_case> {};

TEST_P(scanner_case_test, same_result_whole_bytewise_and_random_splits) {
    const scan_case& c = GetParam();
    const outcome got = run_all_splits(c.dir, c.options, c.input);

    ASSERT_EQ(got.frames.size(), c.frames.size());
    std::size_t end = 0;
    for (std::size_t k = 0; k < c.frames.size(); ++k) {
        const expect_frame& want = c.frames[k];
        const frame_info& info = got.frames[k].info;
        end += want.size;
        SCOPED_TRACE("frame " + std::to_string(k));
        EXPECT_EQ(got.frames[k].end, end);
        EXPECT_EQ(info.type, want.type);
        EXPECT_EQ(info.is_inline, want.flags.find("inline") != std::string::npos);
        EXPECT_EQ(info.is_push, want.flags.find("push") != std::string::npos);
        EXPECT_EQ(info.has_attribute, want.flags.find("attr") != std::string::npos);
        const bool is_long = want.flags.find("long") != std::string::npos;
        if (c.dir == direction::command) {
            EXPECT_EQ(info.command_name(), want.text);
            EXPECT_EQ(info.argc, want.argc);
            EXPECT_EQ(info.name_too_long, is_long);
            EXPECT_TRUE(info.name_complete);
            EXPECT_TRUE(info.head().empty());
        } else {
            EXPECT_EQ(info.head(), want.text);
            EXPECT_EQ(info.head_truncated, is_long);
            EXPECT_TRUE(info.command_name().empty());
        }
    }
    if (c.err) {
        EXPECT_EQ(got.final_status, scan_status::error);
        EXPECT_EQ(got.error, make_error_code(*c.err)) << got.error.message();
        if (c.err_at != no_offset) {
            EXPECT_EQ(got.error_offset, c.err_at);
        }
        EXPECT_LE(got.error_offset, c.input.size());
    } else {
        EXPECT_EQ(got.final_status, scan_status::need_more) << got.error.message();
        EXPECT_EQ(got.consumed, c.input.size());
    }
}

std::string case_name(const ::testing::TestParamInfo<scan_case>& info) {
    return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(replies, scanner_case_test, ::testing::ValuesIn(reply_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(commands, scanner_case_test, ::testing::ValuesIn(command_cases()),
                         case_name);

// Every resp::error the scanner can produce is reached by at least one case above.
TEST(scanner_cases, every_scanner_error_is_covered) {
    std::vector<bool> seen(32, false);
    for (const auto& cases : {reply_cases(), command_cases()}) {
        for (const scan_case& c : cases) {
            if (c.err) seen[static_cast<std::size_t>(*c.err)] = true;
        }
    }
    for (int e = static_cast<int>(error::invalid_multibulk_length);
         e <= static_cast<int>(error::unexpected_end_marker); ++e) {
        EXPECT_TRUE(seen[static_cast<std::size_t>(e)])
            << "no case for " << make_error_code(static_cast<error>(e)).message();
    }
}

// ---------------------------------------------------------------------------------------------
// Large payloads and allocation.

TEST(scanner, bulk_of_100mb_in_64k_chunks_without_allocation) {
    constexpr std::size_t payload = std::size_t{100} * 1024 * 1024;
    constexpr std::size_t chunk = 64 * 1024;
    const std::string header = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(payload) + "\r\n";
    const std::string chunk_buffer(chunk, 'v');  // reused for every chunk
    scanner s(direction::command);

    const std::size_t before = g_allocations.load();
    scan_result r = s.scan(header);
    ASSERT_EQ(r.status, scan_status::need_more);
    ASSERT_EQ(r.consumed, header.size());
    for (std::size_t sent = 0; sent < payload; sent += chunk) {
        r = s.scan(chunk_buffer);
        ASSERT_EQ(r.status, scan_status::need_more);
        ASSERT_EQ(r.consumed, chunk);
    }
    r = s.scan("\r\n");
    const std::size_t after = g_allocations.load();

    EXPECT_EQ(r.status, scan_status::frame_done);
    EXPECT_EQ(r.consumed, 2u);
    EXPECT_EQ(s.info().argc, 3);
    EXPECT_EQ(s.info().command_name(), "set");
    EXPECT_EQ(after - before, 0u) << "the scanner allocated";
}

TEST(scanner, reply_bulk_of_100mb_in_64k_chunks) {
    constexpr std::size_t payload = std::size_t{100} * 1024 * 1024;
    constexpr std::size_t chunk = 64 * 1024;
    const std::string chunk_buffer(chunk, 'v');
    const std::string header = "$" + std::to_string(payload) + "\r\n";
    scanner s(direction::reply);
    const std::size_t before = g_allocations.load();
    EXPECT_EQ(s.payload_remaining(), 0u);
    ASSERT_EQ(s.scan(header).status, scan_status::need_more);
    EXPECT_EQ(s.payload_remaining(), payload);  // known from the header
    for (std::size_t sent = 0; sent < payload; sent += chunk) {
        ASSERT_EQ(s.scan(chunk_buffer).status, scan_status::need_more);
        ASSERT_EQ(s.payload_remaining(), payload - sent - chunk);
    }
    // The next frame in the same buffer is not consumed.
    const scan_result r = s.scan("\r\n+OK\r\n");
    EXPECT_EQ(s.payload_remaining(), 0u);
    EXPECT_EQ(g_allocations.load() - before, 0u);
    EXPECT_EQ(r.status, scan_status::frame_done);
    EXPECT_EQ(r.consumed, 2u);
    EXPECT_EQ(s.info().type, '$');
}

TEST(scanner, pipeline_of_many_frames_without_allocation) {
    std::string stream;
    for (int k = 0; k < 1000; ++k) {
        stream += "*3\r\n$3\r\nSET\r\n$8\r\nkey:" + std::to_string(1000 + k) +
                  "\r\n$10\r\n0123456789\r\nGET key\r\n";
    }
    scanner s(direction::command);
    std::string_view rest = stream;
    std::size_t frames = 0;
    const std::size_t before = g_allocations.load();
    while (!rest.empty()) {
        const scan_result r = s.scan(rest);
        ASSERT_NE(r.status, scan_status::error);
        if (r.status == scan_status::frame_done) ++frames;
        rest.remove_prefix(r.consumed);
    }
    EXPECT_EQ(g_allocations.load() - before, 0u);
    EXPECT_EQ(frames, 2000u);
}

TEST(scanner, bulk_600mb_header_refused_before_payload) {
    for (const direction dir : {direction::command, direction::reply}) {
        scanner s(dir);
        const std::string header =
            dir == direction::command ? "*1\r\n$600000000\r\n" : "$600000000\r\n";
        const scan_result r = s.scan(header + std::string(1024, 'x'));
        EXPECT_EQ(r.status, scan_status::error);
        EXPECT_EQ(r.error, make_error_code(error::bulk_too_long));
        EXPECT_LT(r.consumed, header.size());
    }
}

// ---------------------------------------------------------------------------------------------
// API details.

TEST(scanner, command_name_known_before_the_frame_ends) {
    scanner s(direction::command);
    EXPECT_EQ(s.scan("*2\r\n$4\r\nAUTH\r\n$6\r\nsec").status, scan_status::need_more);
    EXPECT_EQ(s.info().argc, 2);
    EXPECT_TRUE(s.info().name_complete);
    EXPECT_EQ(s.info().command_name(), "auth");
    EXPECT_EQ(s.scan("ret\r\n").status, scan_status::frame_done);
    EXPECT_EQ(s.info().command_name(), "auth");
    // The next scan() starts a new frame and clears the info.
    EXPECT_EQ(s.scan("*1\r\n").status, scan_status::need_more);
    EXPECT_EQ(s.info().argc, 1);
    EXPECT_FALSE(s.info().name_complete);
    EXPECT_EQ(s.info().command_name(), "");
}

TEST(scanner, reset_clears_error) {
    scanner s(direction::command);
    EXPECT_EQ(s.scan("+x\r\n").status, scan_status::error);
    EXPECT_TRUE(s.failed());
    s.reset();
    EXPECT_FALSE(s.failed());
    EXPECT_FALSE(s.last_error());
    const scan_result r = s.scan("PING\r\n");
    EXPECT_EQ(r.status, scan_status::frame_done);
    EXPECT_EQ(r.consumed, 6u);
}

TEST(scanner, empty_input_needs_more) {
    scanner s(direction::reply);
    const scan_result r = s.scan("");
    EXPECT_EQ(r.status, scan_status::need_more);
    EXPECT_EQ(r.consumed, 0u);
}

TEST(scanner, deep_nesting_frames_in_constant_memory) {
    // A million levels of "*1" then a leaf, twice: both frames end exactly where they should.
    scanner s(direction::reply);
    const std::string deep = repeat("*1\r\n", 1'000'000) + ":1\r\n";
    const std::string input = deep + deep;
    std::size_t pos = 0;
    for (int frame = 0; frame < 2; ++frame) {
        const scan_result r = s.scan(std::string_view(input).substr(pos));
        ASSERT_EQ(r.status, scan_status::frame_done) << frame;
        EXPECT_EQ(r.consumed, deep.size());
        EXPECT_EQ(s.info().type, '*');
        pos += r.consumed;
    }
    EXPECT_EQ(pos, input.size());
}

TEST(scanner, endless_nested_headers_end_in_an_error) {
    // Each map header owes 2 * (2^32 - 1) more values; the sum is bounded (2^40, far above any
    // real reply), so an endless stream of headers fails instead of overflowing the counter.
    scanner s(direction::reply);
    const std::string header = "%4294967295\r\n";
    scan_result r;
    int headers = 0;
    while (headers < 1000 && r.status != scan_status::error) {
        r = s.scan(header);
        ++headers;
    }
    EXPECT_EQ(r.error, make_error_code(error::nesting_too_deep));
    EXPECT_EQ(headers, 129);
}

struct error_reply_case {
    direction dir;
    std::string input;
    std::string reply;
};

class scanner_error_reply_test : public ::testing::TestWithParam<error_reply_case> {};

TEST_P(scanner_error_reply_test, matches_redis_wording) {
    scanner s(GetParam().dir);
    ASSERT_EQ(s.scan(GetParam().input).status, scan_status::error);
    EXPECT_EQ(s.error_reply(), GetParam().reply);
}

INSTANTIATE_TEST_SUITE_P(
    all, scanner_error_reply_test,
    ::testing::Values(
        error_reply_case{direction::command, "*1\r\nx",
                         "-ERR Protocol error: expected '$', got 'x'\r\n"},
        error_reply_case{direction::command, "*1\r\n\x01",
                         "-ERR Protocol error: expected '$', got '\\x01'\r\n"},
        error_reply_case{direction::command, "*x",
                         "-ERR Protocol error: invalid multibulk length\r\n"},
        error_reply_case{direction::command, "*1\r\n$-5\r\n",
                         "-ERR Protocol error: invalid bulk length\r\n"},
        error_reply_case{direction::command, "\"a\n",
                         "-ERR Protocol error: unbalanced quotes in request\r\n"},
        error_reply_case{direction::command, "+PING\r\n",
                         "-ERR Protocol error: expected '*' or an inline command, got '+'\r\n"},
        error_reply_case{direction::reply, "@",
                         "-ERR Protocol error: invalid reply type byte, got '@'\r\n"}));

TEST(error_category, names_and_messages) {
    EXPECT_STREQ(category().name(), "resp");
    const std::error_code ec = error::inline_too_long;
    EXPECT_EQ(ec.category(), category());
    EXPECT_EQ(ec.message(), "too big inline request");
    for (int e = 1; e <= static_cast<int>(error::out_of_memory); ++e) {
        EXPECT_NE(category().message(e), "unknown resp error") << e;
    }
    EXPECT_EQ(category().message(999), "unknown resp error");
}

}  // namespace
}  // namespace redis_sidecar::resp
