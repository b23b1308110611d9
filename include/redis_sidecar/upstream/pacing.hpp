#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>

namespace redis_sidecar::upstream {

/// When the pool may open connections: a token bucket (at most max_per_second, in bursts of as
/// many) and, after failed opens, exponential backoff with full jitter. Socket-free and
/// clock-free: every call is given the time, so tests drive it without sleeping.
class connect_pacer {
  public:
    using clock = std::chrono::steady_clock;

    struct options {
        double max_per_second = 50;
        std::chrono::milliseconds backoff_base{100};   ///< backoff after n failures: a random
        std::chrono::milliseconds backoff_max{10000};  ///< wait in [0, min(max, base·2^(n-1))]
    };

    /// The bucket starts full at `now`; `seed` seeds the jitter.
    connect_pacer(options o, clock::time_point now, std::uint32_t seed);

    struct grant {
        std::size_t count = 0;                   ///< opens that may start now
        std::optional<clock::time_point> again;  ///< when to ask for the rest; none: all granted
    };
    /// Asks to start `wanted` opens at `now`.
    grant request(std::size_t wanted, clock::time_point now);

    /// An open that started at `started` failed at `now`: the next may start only after a
    /// backoff.
    void failed(clock::time_point started, clock::time_point now);
    /// An open succeeded at `now`: the backoff ends.
    void succeeded(clock::time_point now);

    /// Failed opens since the last success.
    unsigned consecutive_failures() const { return failures_; }
    /// Whether the upstream is failing rather than one batch of connections having been cut (a
    /// CLIENT KILL or a restart during their handshakes): an open that started after the first
    /// failure of this run failed too. Until then the pool lets waiters wait for the retry;
    /// after, it fails them at once.
    bool failing() const { return confirmed_; }
    /// The earliest time the next open may start.
    clock::time_point next_allowed() const { return next_allowed_; }
    /// The current backoff ceiling: min(max, base·2^(failures-1)); zero without failures.
    std::chrono::milliseconds backoff_ceiling() const;

  private:
    bool take_token(clock::time_point now);

    options options_;
    double tokens_;
    clock::time_point tokens_at_;
    clock::time_point next_allowed_{};
    unsigned failures_ = 0;
    clock::time_point first_failure_{};
    bool confirmed_ = false;
    std::minstd_rand rng_;
};

}  // namespace redis_sidecar::upstream
