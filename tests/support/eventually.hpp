#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

namespace redis_sidecar::testing {

/// Calls `pred` until it returns true or `timeout` has passed, pausing `step` between calls;
/// returns the last result. `pred` is always called at least once and once more at (or after)
/// the deadline, so a condition that became true just in time is not missed. This is the way to
/// wait for something in a test: never a bare sleep.
///
///     ASSERT_TRUE(eventually([&] { return sidecar.out().find("ready") != npos; }, 5s));
template <class F>
bool eventually(F pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (pred()) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        const auto remaining = deadline - now;
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(remaining, step));
    }
}

}  // namespace redis_sidecar::testing
