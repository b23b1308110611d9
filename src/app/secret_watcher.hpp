#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <functional>
#include <optional>
#include <string>

#include "redis_sidecar/config/resolver.hpp"

namespace redis_sidecar::app {

/// Notices a rotated Secret: inotify on every directory a secret comes from (Kubernetes swaps a
/// `..data` symlink there), a polling fallback, and SIGHUP (trigger()). Each time, it resolves
/// the configuration again and reports the credentials when they changed; an unreadable, empty or
/// vanished secret keeps the last good one and is reported as an error.
class secret_watcher {
  public:
    /// How often files are re-read when inotify says nothing (it misses changes on some volumes).
    static constexpr std::chrono::seconds poll_interval{2};
    /// Events within this window are handled once (a symlink swap is several events).
    static constexpr std::chrono::milliseconds debounce{100};

    struct counters {
        std::uint64_t reloads = 0;   ///< credentials changed and applied
        std::uint64_t failures = 0;  ///< a reload found bad input and kept the last good values
    };

    secret_watcher(boost::asio::io_context& io, config::inputs inputs,
                   const config::settings& current,
                   std::function<void(const config::settings&)> on_change);
    ~secret_watcher();

    void start();
    void stop();
    /// Re-reads now (SIGHUP).
    void trigger();
    const counters& stats() const { return counters_; }

  private:
    void watch_directories();
    void read_events();
    void schedule(std::chrono::milliseconds delay);
    void check();

    boost::asio::io_context& io_;
    config::inputs inputs_;
    std::optional<std::string> username_;
    std::optional<config::secret> password_;
    std::optional<config::secret> client_password_;
    std::function<void(const config::settings&)> on_change_;
    std::optional<boost::asio::posix::stream_descriptor> inotify_;
    std::array<char, 4096> events_{};
    boost::asio::steady_timer timer_;
    bool stopped_ = false;
    std::string last_error_;  // the failure last reported, so a lasting one is reported once
    counters counters_;
};

}  // namespace redis_sidecar::app
