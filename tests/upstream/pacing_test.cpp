// The pool's connect pacing (token bucket + backoff with full jitter), driven by a fake clock:
// no sockets, no sleeps.

#include "redis_sidecar/upstream/pacing.hpp"

#include <gtest/gtest.h>

namespace redis_sidecar::upstream {
namespace {

using namespace std::chrono_literals;
using clock = connect_pacer::clock;

const clock::time_point t0{std::chrono::hours(1)};

TEST(pacing, a_full_bucket_grants_a_burst_then_one_per_interval) {
    connect_pacer p({.max_per_second = 50, .backoff_base = 100ms, .backoff_max = 10s}, t0, 1);
    auto g = p.request(80, t0);
    EXPECT_EQ(g.count, 50u);  // the burst: one second's worth
    ASSERT_TRUE(g.again);
    EXPECT_EQ(*g.again, t0 + 20ms);  // 1/50 s
    EXPECT_EQ(p.request(1, t0).count, 0u);
    EXPECT_EQ(p.request(5, t0 + 20ms).count, 1u);
    EXPECT_EQ(p.request(5, t0 + 120ms).count, 5u);
    // Refills to at most the burst, however long it rested.
    EXPECT_EQ(p.request(500, t0 + 1h).count, 50u);
}

TEST(pacing, nothing_wanted_is_nothing_granted_and_no_retry) {
    connect_pacer p({}, t0, 1);
    const auto g = p.request(0, t0);
    EXPECT_EQ(g.count, 0u);
    EXPECT_FALSE(g.again);
}

TEST(pacing, a_slow_rate_still_grants_one) {
    connect_pacer p({.max_per_second = 0.5, .backoff_base = 100ms, .backoff_max = 10s}, t0, 1);
    EXPECT_EQ(p.request(3, t0).count, 1u);
    const auto g = p.request(1, t0 + 1s);
    EXPECT_EQ(g.count, 0u);
    EXPECT_EQ(*g.again, t0 + 1s + 2s);
    EXPECT_EQ(p.request(1, t0 + 2s).count, 1u);
}

TEST(pacing, backoff_doubles_to_its_cap_with_full_jitter) {
    connect_pacer p({.max_per_second = 1000, .backoff_base = 100ms, .backoff_max = 1s}, t0, 7);
    EXPECT_EQ(p.backoff_ceiling(), 0ms);
    const std::chrono::milliseconds ceilings[] = {100ms, 200ms, 400ms, 800ms, 1s, 1s, 1s};
    auto now = t0;
    for (const auto ceiling : ceilings) {
        p.failed(now, now);
        EXPECT_EQ(p.backoff_ceiling(), ceiling);
        EXPECT_GE(p.next_allowed(), now);
        EXPECT_LE(p.next_allowed(), now + ceiling);
        // Asking before the backoff ends gets nothing and the time to ask again.
        if (p.next_allowed() > now) {
            const auto g = p.request(1, now);
            EXPECT_EQ(g.count, 0u);
            EXPECT_EQ(*g.again, p.next_allowed());
        }
        now = p.next_allowed();
        EXPECT_EQ(p.request(1, now).count, 1u);
    }
    EXPECT_EQ(p.consecutive_failures(), 7u);
    p.succeeded(now);
    EXPECT_EQ(p.consecutive_failures(), 0u);
    EXPECT_EQ(p.backoff_ceiling(), 0ms);
    EXPECT_EQ(p.request(1, now).count, 1u);
}

TEST(pacing, jitter_spreads_the_waits) {
    // Full jitter: over many failures at the cap, waits cover the range, not one value.
    connect_pacer p({.max_per_second = 1000, .backoff_base = 1s, .backoff_max = 1s}, t0, 3);
    auto now = t0;
    std::chrono::nanoseconds shortest = 1h, longest{0};
    for (int i = 0; i < 200; ++i) {
        p.failed(now, now);
        const auto wait = p.next_allowed() - now;
        shortest = std::min<std::chrono::nanoseconds>(shortest, wait);
        longest = std::max<std::chrono::nanoseconds>(longest, wait);
        now = p.next_allowed() + 1ms;
    }
    EXPECT_LT(shortest, 100ms);
    EXPECT_GT(longest, 900ms);
    EXPECT_LE(longest, 1s);
}

TEST(pacing, a_batch_cut_at_once_is_not_yet_a_failing_upstream) {
    connect_pacer p({.max_per_second = 1000, .backoff_base = 100ms, .backoff_max = 1s}, t0, 5);
    // Four opens started together at t0 all fail (a CLIENT KILL during their handshakes).
    for (int i = 0; i < 4; ++i) p.failed(t0, t0 + 10ms + std::chrono::milliseconds(i));
    EXPECT_EQ(p.consecutive_failures(), 4u);
    EXPECT_FALSE(p.failing());
    // The retry, started after the first failure, fails too: now the upstream is failing.
    p.failed(t0 + 200ms, t0 + 210ms);
    EXPECT_TRUE(p.failing());
    p.succeeded(t0 + 300ms);
    EXPECT_FALSE(p.failing());
    // A new run starts from scratch: its first failure alone does not confirm it.
    p.failed(t0 + 400ms, t0 + 410ms);
    EXPECT_FALSE(p.failing());
    p.failed(t0 + 410ms, t0 + 420ms);
    EXPECT_TRUE(p.failing());
}

TEST(pacing, many_failures_do_not_overflow_the_ceiling) {
    connect_pacer p({.max_per_second = 1, .backoff_base = 100ms, .backoff_max = 10s}, t0, 1);
    for (int i = 0; i < 1000; ++i) p.failed(t0, t0);
    EXPECT_EQ(p.backoff_ceiling(), 10s);
}

}  // namespace
}  // namespace redis_sidecar::upstream
