// libFuzzer target for bridge::client_core, the bridge's socket-free protocol core. The input is
// split into client bytes and upstream bytes (the first byte says where, and with which
// settings); both are fed in pieces whose sizes come from the input. Whatever arrives, the core
// must not crash, must consume every upstream byte it is given (or close the client), must never
// deliver more upstream bytes than it received, and must end with a valid release decision.
// Sanitizers (ASan, UBSan) catch the rest.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "redis_sidecar/bridge/core.hpp"
#include "redis_sidecar/cluster/port_map.hpp"

namespace {

using namespace redis_sidecar;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "bridge_core_fuzz: %s\n", what);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto flags = static_cast<unsigned char>(input[0]);
    const std::string_view body = input.substr(1);
    // Where the client's bytes end and the upstream's begin; which settings.
    const std::size_t split = body.size() * (flags & 0x0f) / 15;
    const std::string_view client = body.substr(0, split);
    const std::string_view upstream = body.substr(split);

    config::upstream_settings up;
    up.username = "app";
    up.password = config::secret("pw");
    up.db = (flags & 0x10) != 0 ? 3 : 0;
    bridge::bridge_stats stats;
    bridge::session_context ctx;
    ctx.stats = &stats;
    ctx.upstream_user = [&up] { return up.username.value_or("default"); };
    ctx.reauth = [&up] {
        return upstream::make_handshake(up, "redis-sidecar:fuzz", {.hello = true, .ping = false});
    };
    ctx.passthrough_auth = (flags & 0x20) != 0;
    if ((flags & 0x40) != 0) ctx.client_password = config::secret("local");
    cluster::port_map_book addresses(7000, 7003);  // small: it fills up
    if ((flags & 0x80) != 0) ctx.cluster = &addresses;
    bridge::client_core core(ctx);

    std::size_t k = 0;
    auto piece = [&](std::size_t left) {
        const auto b = static_cast<unsigned char>(input[k++ % input.size()]);
        return std::min(left, std::size_t{1} + (b % 64));
    };
    bool closed = false;
    std::size_t delivered = 0;
    auto drain = [&](std::string_view& pending) {
        for (int guard = 0; guard < 1'000'000 && !closed; ++guard) {
            const std::size_t before = pending.size();
            auto w = core.next_write(pending);
            switch (w.what) {
                case bridge::client_write::kind::none:
                    return;
                case bridge::client_write::kind::close:
                    closed = true;
                    return;
                case bridge::client_write::kind::upstream:
                    if (w.bytes.empty()) fail("empty upstream write");
                    delivered += w.bytes.size();
                    if (before - pending.size() < w.bytes.size()) fail("delivered unread bytes");
                    break;
                case bridge::client_write::kind::local:
                    if (w.local.empty()) fail("empty local reply");
                    // A rewritten cluster reply came from upstream bytes, but may be longer.
                    if (ctx.cluster != nullptr && before > pending.size()) {
                        delivered += before - pending.size();
                    }
                    break;
            }
            if (w.close_after) closed = true;
        }
        if (!closed) fail("next_write never settled");
    };
    std::string_view none;
    for (std::size_t at = 0; at < client.size() && core.accepts_input();) {
        const auto n = piece(client.size() - at);
        core.feed_client(client.substr(at, n));
        at += n;
        core.upstream_output().clear();
        drain(none);
    }
    for (std::size_t at = 0; at < upstream.size() && !closed;) {
        const auto n = piece(upstream.size() - at);
        std::string_view pending = upstream.substr(at, n);
        at += n;
        drain(pending);
        if (!pending.empty() && !closed) fail("upstream bytes left undelivered");
    }
    if (delivered > upstream.size()) fail("delivered more than received");
    const auto d = core.release(false, false, false, 7);
    if (d.what == bridge::release_decision::kind::clean && core.owed_replies() != 0) {
        fail("clean release with replies owed");
    }
    return 0;
}
