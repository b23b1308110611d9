#pragma once

// Drives an io_context from the test thread until a condition holds, with a deadline.

#include <boost/asio/io_context.hpp>

#include <chrono>

namespace redis_sidecar::upstream {

class io_fixture {
  public:
    template <class Pred>
    bool run_until(Pred done, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            if (io_.stopped()) io_.restart();
            io_.run_one_for(std::chrono::milliseconds(10));
        }
        return true;
    }

    /// Lets the loop run for a while (for "nothing more happens" checks).
    void run_for(std::chrono::milliseconds d) {
        run_until([] { return false; }, d);
    }

    boost::asio::io_context io_;
};

}  // namespace redis_sidecar::upstream
