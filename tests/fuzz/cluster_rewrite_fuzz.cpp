// libFuzzer target for cluster mode's reply rewriting: the first byte picks the command whose
// reply the rest is (CLUSTER SLOTS, SHARDS, NODES, REPLICAS, or none: an error that may be
// MOVED/ASK). Whatever the upstream sent, rewrite_reply must not crash and must give the client
// exactly one well-formed RESP value; when it rewrote, that value must be rewritten again to
// itself (every address in it is already a local one).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "redis_sidecar/cluster/port_map.hpp"
#include "redis_sidecar/cluster/rewrite.hpp"
#include "redis_sidecar/resp/value.hpp"

namespace {

using namespace redis_sidecar;

[[noreturn]] void fail(const char* what, std::string_view detail = {}) {
    std::fprintf(stderr, "cluster_rewrite_fuzz: %s %.*s\n", what, static_cast<int>(detail.size()),
                 detail.data());
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto kind = static_cast<cluster::reply_kind>(static_cast<unsigned char>(input[0]) % 5);
    const auto reply = input.substr(1);
    cluster::port_map_book b(7000, 7015);
    const auto r = cluster::rewrite_reply(kind, reply, b);
    std::string error;
    if (!r.bytes.empty() && r.bytes.front() != '-' && r.bytes.front() != '+' && r.bytes != reply &&
        !resp::parse_value(r.bytes, error)) {
        fail("rewritten reply is not RESP:", error);
    }
    if (r.rewritten && kind != cluster::reply_kind::none) {
        const auto again = cluster::rewrite_reply(kind, r.bytes, b);
        if (!again.error.empty()) fail("a rewritten reply cannot be read again:", again.error);
    }
    return 0;
}
