// libFuzzer target for resp::scanner. For both directions and two sets of limits, the input is
// scanned whole, one byte at a time and in pieces whose sizes come from the input itself; the
// outcomes must be identical and every scan() must honour its contract. In the reply direction
// the input is also wrapped in thousands of nesting levels, which must move every frame boundary
// by exactly the wrapper's size. Any difference aborts.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "redis_sidecar/resp/scanner.hpp"

namespace {

using namespace redis_sidecar::resp;

/// Byte-at-a-time runs are quadratic in nothing but slow in libFuzzer; cap them.
constexpr std::size_t max_bytewise_input = 64 * 1024;

struct outcome {
    std::vector<std::size_t> ends;
    std::vector<frame_info> infos;
    scan_status final_status = scan_status::need_more;
    std::error_code error;
    std::size_t consumed = 0;

    bool operator==(const outcome&) const = default;
};

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "resp_scanner_fuzz: %s\n", what);
    std::abort();
}

/// Feeds `input` in pieces whose sizes `next_piece()` returns.
template <typename Pieces>
outcome run(direction dir, const scanner_options& options, std::string_view input,
            Pieces next_piece) {
    scanner s(dir, options);
    outcome out;
    while (!input.empty()) {
        std::string_view piece = input.substr(0, next_piece());
        input.remove_prefix(piece.size());
        while (true) {
            const scan_result r = s.scan(piece);
            if (r.consumed > piece.size()) fail("consumed more than given");
            out.consumed += r.consumed;
            if (r.status == scan_status::error) {
                if (!r.error || !s.failed()) fail("error without error state");
                if (s.scan(piece).consumed != 0) fail("failed scanner consumed bytes");
                out.final_status = scan_status::error;
                out.error = r.error;
                return out;
            }
            if (r.status == scan_status::need_more) {
                if (r.consumed != piece.size()) fail("need_more left bytes unconsumed");
                break;
            }
            if (r.consumed == 0) fail("empty frame");
            out.ends.push_back(out.consumed);
            out.infos.push_back(s.info());
            piece.remove_prefix(r.consumed);
            if (piece.empty()) break;
        }
    }
    return out;
}

void check(direction dir, const scanner_options& options, std::string_view input) {
    const outcome whole = run(dir, options, input, [&] { return input.size(); });
    if (whole.final_status != scan_status::error && whole.consumed != input.size()) {
        fail("whole input not consumed");
    }
    if (input.size() <= max_bytewise_input) {
        if (!(run(dir, options, input, [] { return std::size_t{1}; }) == whole)) {
            fail("byte-at-a-time result differs");
        }
    }
    // Piece sizes from the input's own bytes: 1..32, cycling.
    std::size_t k = 0;
    const outcome derived = run(dir, options, input, [&] {
        const auto b = static_cast<unsigned char>(input[k++ % input.size()]);
        return std::size_t{1} + (b % 32);
    });
    if (!(derived == whole)) fail("input-derived split result differs");
}

/// Deep nesting: the input's first reply wrapped in `depth` levels of "*1" must end exactly
/// 4 * depth bytes later (or fail with the same error that many bytes later), and every later
/// frame likewise. Checked whole and in input-derived pieces.
void check_nesting(std::size_t depth, std::string_view input) {
    if (input.empty()) return;
    const scanner_options options = scanner_options::for_replies();
    const outcome plain = run(direction::reply, options, input, [&] { return input.size(); });
    std::string wrapped;
    wrapped.reserve(depth * 4 + input.size());
    for (std::size_t i = 0; i < depth; ++i) wrapped += "*1\r\n";
    wrapped += input;
    const std::string_view w(wrapped);
    std::size_t k = 0;
    const outcome outcomes[] = {
        run(direction::reply, options, w, [&] { return w.size(); }),
        run(direction::reply, options, w,
            [&] {
                const auto b = static_cast<unsigned char>(w[k++ % w.size()]);
                return std::size_t{1} + (b % 97);
            }),
    };
    for (const outcome& o : outcomes) {
        if (o.final_status != plain.final_status || o.error != plain.error) {
            fail("wrapping a reply in *1 levels changed its outcome");
        }
        if (o.consumed != plain.consumed + 4 * depth) fail("wrapped reply consumed differs");
        if (o.ends.size() != plain.ends.size()) fail("wrapped reply has other frames");
        for (std::size_t i = 0; i < o.ends.size(); ++i) {
            if (o.ends[i] != plain.ends[i] + 4 * depth) fail("wrapped reply ends elsewhere");
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    scanner_options tight;  // small limits so the fuzzer reaches every limit check
    tight.max_inline_length = 16;
    tight.max_line_length = 16;
    tight.max_aggregate_length = 5;
    tight.max_bulk_length = 64;
    scanner_options resp2 = scanner_options::for_replies();
    resp2.resp3 = false;

    check(direction::command, scanner_options::for_commands(), input);
    check(direction::reply, scanner_options::for_replies(), input);
    check(direction::command, tight, input);
    check(direction::reply, tight, input);
    check(direction::reply, resp2, input);
    // The first byte picks a depth up to 8,064 levels (Lua returns ~8,000); the rest is the reply.
    check_nesting(static_cast<std::size_t>(data[0] % 64) * 128, input.substr(1));
    return 0;
}
