#include "secret_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include "redis_sidecar/config/table.hpp"
#include "redis_sidecar/log/logger.hpp"

namespace redis_sidecar::app {

secret_watcher::secret_watcher(boost::asio::io_context& io, config::inputs inputs,
                               const config::settings& current,
                               std::function<void(const config::settings&)> on_change)
    : io_(io),
      inputs_(std::move(inputs)),
      username_(current.upstream.username),
      password_(current.upstream.password),
      client_password_(current.listen.client_password),
      on_change_(std::move(on_change)),
      timer_(io) {}

secret_watcher::~secret_watcher() {
    try {
        stop();
    } catch (const std::exception& e) {  // timer cancel may throw; a destructor must not
        log::error("secret watcher stop failed", {{"error", e.what()}});
    }
}

void secret_watcher::start() {
    watch_directories();
    schedule(poll_interval);
}

void secret_watcher::stop() {
    stopped_ = true;
    timer_.cancel();
    if (inotify_) {
        boost::system::error_code ignored;
        inotify_->close(ignored);
        inotify_.reset();
    }
}

void secret_watcher::trigger() {
    schedule(std::chrono::milliseconds(0));
}

void secret_watcher::watch_directories() {
    std::vector<std::string> dirs;
    try {
        dirs = config::watched_directories(inputs_);
    } catch (const std::exception& e) {
        log::warn("cannot list the secrets' directories; they are polled", {{"error", e.what()}});
        return;
    }
    if (dirs.empty()) return;
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        log::warn("inotify unavailable; secrets are polled", {{"every", "2s"}});
        return;
    }
    for (const auto& d : dirs) {
        if (::inotify_add_watch(fd, d.c_str(),
                                IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM |
                                    IN_CLOSE_WRITE | IN_ATTRIB) < 0) {
            log::warn("cannot watch a secrets directory; it is polled", {{"dir", d}});
        }
    }
    inotify_.emplace(io_, fd);
    read_events();
}

void secret_watcher::read_events() {
    inotify_->async_read_some(boost::asio::buffer(events_),
                              [this](const boost::system::error_code& ec, std::size_t) {
                                  if (ec || stopped_) return;
                                  schedule(debounce);
                                  read_events();
                              });
}

void secret_watcher::schedule(std::chrono::milliseconds delay) {
    if (stopped_) return;
    const auto when = std::chrono::steady_clock::now() + delay;
    // An earlier check already pending covers this one.
    if (timer_.expiry() > std::chrono::steady_clock::now() && timer_.expiry() <= when) return;
    timer_.expires_at(when);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || stopped_) return;
        check();
        schedule(poll_interval);
    });
}

void secret_watcher::check() {
    try {
        const auto fresh = config::resolve(inputs_);
        const auto& up = fresh.values.upstream;
        if (password_ && !up.password) {
            throw config::config_error(
                "the upstream password is gone (an empty or removed secret)");
        }
        if (up.username == username_ && up.password == password_ &&
            fresh.values.listen.client_password == client_password_) {
            last_error_.clear();
            return;
        }
        username_ = up.username;
        password_ = up.password;
        client_password_ = fresh.values.listen.client_password;
        last_error_.clear();
        ++counters_.reloads;
        log::info("secrets changed; applying them");
        on_change_(fresh.values);
    } catch (const std::exception& e) {
        // Once per distinct problem, not at every poll.
        if (last_error_ == e.what()) return;
        last_error_ = e.what();
        ++counters_.failures;
        log::error("secret reload failed; keeping the last good values", {{"error", e.what()}});
    }
}

}  // namespace redis_sidecar::app
