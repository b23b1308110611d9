// IAM's parsers with arbitrary bytes: what STS, the Pod Identity agent, the environment (URLs,
// expiry times) and an endpoint name can hand the sidecar. Each input's first byte picks the
// parser; none may crash, hang or allocate without bound, and a parse that succeeds must carry
// what the sidecar then relies on.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "redis_sidecar/aws/credentials.hpp"
#include "redis_sidecar/config/values.hpp"

namespace aws = redis_sidecar::aws;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto which = data[0] % 5;
    const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        switch (which) {
            case 0:
            case 1: {
                const aws::http_response r{(data[0] & 0x80U) != 0 ? 400U : 200U, body};
                const auto c = which == 0 ? aws::parse_web_identity_response(r)
                                          : aws::parse_container_response(r);
                if (c.access_key_id.empty() || c.secret_access_key.empty() || !c.expiration) {
                    __builtin_trap();  // a success must carry keys and an expiry
                }
                break;
            }
            case 2:
                (void)aws::parse_iso8601(body);
                break;
            case 3: {
                const auto u = aws::parse_url(body, "FUZZ");
                if (u.host.empty() || u.target.empty() || u.target.front() != '/') __builtin_trap();
                (void)aws::http_allowed(u);
                break;
            }
            case 4:
                if (const auto e = redis_sidecar::config::parse_elasticache_endpoint(body);
                    e && e->cache_name.empty()) {
                    __builtin_trap();
                }
                break;
        }
    } catch (const aws::aws_error&) {
        // The expected outcome for most inputs: a classified error.
    }
    return 0;
}
