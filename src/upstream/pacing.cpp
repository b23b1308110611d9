#include "redis_sidecar/upstream/pacing.hpp"

#include <algorithm>

namespace redis_sidecar::upstream {

namespace {

/// Backoff exponent cap (2^16 · base is far beyond any sane backoff_max).
constexpr unsigned max_backoff_exponent = 16;
/// The slowest rate honoured (a configured 0 would never open anything).
constexpr double min_rate = 0.001;

}  // namespace

connect_pacer::connect_pacer(options o, clock::time_point now, std::uint32_t seed)
    : options_(o), tokens_(std::max(1.0, o.max_per_second)), tokens_at_(now), rng_(seed) {}

bool connect_pacer::take_token(clock::time_point now) {
    const double rate = std::max(min_rate, options_.max_per_second);
    if (now > tokens_at_) {
        tokens_ =
            std::min(std::max(1.0, rate),
                     tokens_ + std::chrono::duration<double>(now - tokens_at_).count() * rate);
        tokens_at_ = now;
    }
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
}

connect_pacer::grant connect_pacer::request(std::size_t wanted, clock::time_point now) {
    if (wanted == 0) return {};
    if (now < next_allowed_) return {0, next_allowed_};
    grant g;
    while (g.count < wanted && take_token(now)) ++g.count;
    if (g.count < wanted) {
        const double rate = std::max(min_rate, options_.max_per_second);
        g.again = now + std::chrono::duration_cast<clock::duration>(
                            std::chrono::duration<double>(1.0 / rate));
    }
    return g;
}

std::chrono::milliseconds connect_pacer::backoff_ceiling() const {
    if (failures_ == 0) return std::chrono::milliseconds(0);
    const auto exp = std::min(failures_ - 1, max_backoff_exponent);
    return std::min<std::chrono::milliseconds>(options_.backoff_max,
                                               options_.backoff_base * (1LL << exp));
}

void connect_pacer::failed(clock::time_point started, clock::time_point now) {
    if (failures_ == 0) {
        first_failure_ = now;
    } else if (started >= first_failure_) {
        confirmed_ = true;
    }
    ++failures_;
    std::uniform_int_distribution<long long> jitter(
        0, std::max<long long>(0, backoff_ceiling().count()));
    next_allowed_ = std::max(next_allowed_, now + std::chrono::milliseconds(jitter(rng_)));
}

void connect_pacer::succeeded(clock::time_point now) {
    failures_ = 0;
    confirmed_ = false;
    next_allowed_ = now;
}

}  // namespace redis_sidecar::upstream
