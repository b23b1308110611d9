// libFuzzer target for mux::shared_core's reply router. The input's first byte picks RESP2 or
// RESP3 and how many commands are in flight; the next bytes pick each command's client; the
// rest is what the upstream sends. It is fed whole, one byte at a time and in pieces whose
// sizes come from the input; every run must route the same bytes to the same clients with the
// same reply counts and stop at the same violation, pieces must cover exactly the bytes fed,
// and broken() must account for every command not answered. Any difference aborts.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "redis_sidecar/mux/shared_core.hpp"

namespace {

using namespace redis_sidecar::mux;

constexpr std::size_t max_bytewise_input = 16 * 1024;

struct outcome {
    std::map<client_id, std::string> bytes;
    std::map<client_id, std::size_t> replies;
    bool violation = false;
    std::size_t routed = 0;
    std::map<client_id, std::size_t> lost;

    bool operator==(const outcome&) const = default;
};

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "mux_router_fuzz: %s\n", what);
    std::abort();
}

template <typename Pieces>
outcome run(bool resp3, const std::vector<client_id>& owners, std::string_view input,
            Pieces next_piece) {
    shared_options options;
    options.resp3 = resp3;
    shared_core core(options);
    for (const auto c : owners) {
        if (core.submit(c, "PING\r\n") != submit_status::accepted) fail("submit refused");
    }
    if (core.take_output().size() != owners.size() * 6) fail("batch size");
    outcome out;
    std::vector<routed_piece> pieces;
    while (!input.empty() && !out.violation) {
        const std::string_view piece = input.substr(0, next_piece());
        input.remove_prefix(piece.size());
        pieces.clear();
        out.violation = core.feed_upstream(piece, pieces) == feed_status::violation;
        std::size_t at = 0;
        for (const auto& p : pieces) {
            if (p.bytes.data() != piece.data() + at) fail("pieces not contiguous");
            if (p.bytes.empty()) fail("empty piece");
            at += p.bytes.size();
            out.bytes[p.client].append(p.bytes);
            out.replies[p.client] += p.replies_completed;
        }
        if (!out.violation && at != piece.size()) fail("bytes not routed");
        out.routed += at;
    }
    std::size_t answered = 0;
    for (const auto& [c, n] : out.replies) answered += n;
    if (answered + core.commands_in_flight() != owners.size()) fail("commands unaccounted");
    for (const auto& l : core.broken()) {
        if (l.commands == 0) fail("client lost nothing");
        if (l.partial_reply && out.bytes[l.client].empty()) fail("partial reply never routed");
        out.lost[l.client] = l.commands;
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const bool resp3 = (data[0] & 0x80) != 0;
    const std::size_t commands = 1 + (data[0] & 0x0f);
    if (size < 1 + commands) return 0;
    std::vector<client_id> owners;
    for (std::size_t i = 0; i < commands; ++i) owners.push_back(data[1 + i] % 4);
    const std::string_view input(reinterpret_cast<const char*>(data) + 1 + commands,
                                 size - 1 - commands);
    if (input.empty()) return 0;

    const outcome whole = run(resp3, owners, input, [&] { return input.size(); });
    std::size_t k = 0;
    const outcome derived = run(resp3, owners, input, [&] {
        const auto b = static_cast<unsigned char>(input[k++ % input.size()]);
        return std::size_t{1} + (b % 32);
    });
    // Split runs may route the first bytes of a frame in which a violation is found later;
    // whole runs find it first. Without a violation the outcomes must be identical.
    auto same = [&](const outcome& other) {
        if (whole.violation != other.violation) return false;
        if (!whole.violation) return whole == other;
        return whole.routed <= other.routed;
    };
    if (!same(derived)) fail("input-derived split result differs");
    if (input.size() <= max_bytewise_input) {
        if (!same(run(resp3, owners, input, [] { return std::size_t{1}; }))) {
            fail("byte-at-a-time result differs");
        }
    }
    return 0;
}
