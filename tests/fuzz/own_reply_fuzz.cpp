// The sidecar's handling of the replies to its own commands (the opener's HELLO/AUTH/SETNAME/
// SELECT/PING pipeline, the health rounds' PING and HELLO, the recycler's re-authentication) with
// arbitrary upstream bytes: resp::reply_reader (the scanner's bounds before hiredis allocates)
// fed in the pieces the input picks, then check_handshake and parse_hello on whatever replies
// come out; or (flag 0x20) the recycler's upstream::reset_reader: the replies a client still
// owed, RESET's and the re-authentication's. Nothing may crash, hang or allocate without bound;
// a handshake that succeeds must have had one well-formed reply per step, a reset that succeeds
// must have seen "+RESET".
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "redis_sidecar/config/settings.hpp"
#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/upstream/handshake.hpp"
#include "redis_sidecar/upstream/reset_reader.hpp"

namespace {

namespace upstream = redis_sidecar::upstream;
namespace resp = redis_sidecar::resp;

// The handshakes the sidecar sends, picked by the input's first byte.
upstream::handshake pick(std::uint8_t flags, bool& hello) {
    redis_sidecar::config::upstream_settings s;
    s.host = "cache";
    if ((flags & 1U) != 0) s.username = "app";
    if ((flags & 2U) != 0) s.password = redis_sidecar::config::secret("fuzz-password-0123456789");
    if ((flags & 4U) != 0) s.db = 3;
    hello = (flags & 8U) == 0;
    return upstream::make_handshake(s, "redis-sidecar:fuzz",
                                    {.hello = hello, .ping = (flags & 16U) == 0});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    bool hello = true;
    const auto h = pick(data[0], hello);
    const std::size_t piece = 1 + data[1] % 64;  // how the bytes arrive
    const std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);

    if ((data[0] & 0x20U) != 0) {
        // The recycler: 0-2 owed replies, or uncounted (the client left request/reply).
        const unsigned owed_flag = data[0] >> 6U;
        const auto owed = owed_flag == 3 ? std::nullopt : std::optional<std::uint64_t>(owed_flag);
        if (!hello) return 0;  // the recycler always re-authenticates with HELLO
        upstream::reset_reader reset(resp::scanner(resp::direction::reply), owed, h);
        std::optional<upstream::reset_result> out;
        for (std::size_t at = 0; at < bytes.size() && !out; at += piece) {
            out = reset.feed(bytes.substr(at, piece));
        }
        if (out && !out->ec && bytes.find("+RESET\r\n") == std::string_view::npos) {
            __builtin_trap();
        }
        return 0;
    }
    // A small buffer bound, so that the bound itself is exercised too.
    resp::reply_reader reader(64 * 1024);
    std::vector<resp::reply> replies;
    std::error_code ec;
    for (std::size_t at = 0; at < bytes.size() && !ec && replies.size() < h.steps.size();
         at += piece) {
        reader.feed(bytes.substr(at, piece));
        while (auto r = reader.next(ec)) {
            replies.push_back(std::move(*r));
            if (replies.size() == h.steps.size()) break;
        }
    }
    for (const auto& r : replies) (void)upstream::parse_hello(r);
    if (replies.size() != h.steps.size()) return 0;  // the opener times out or fails the read
    const auto out = upstream::check_handshake(h, replies, hello);
    if (!out.ec && !out.no_hello && out.failed_step.empty() == false) __builtin_trap();
    return 0;
}
