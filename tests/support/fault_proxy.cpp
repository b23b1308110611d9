#include "support/fault_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <list>
#include <random>
#include <system_error>
#include <vector>

namespace redis_sidecar::testing {

namespace {

using clock = std::chrono::steady_clock;

[[noreturn]] void fail(const char* what) {
    throw std::system_error(errno, std::generic_category(), std::string("fault_proxy: ") + what);
}

void set_nodelay(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// Closes with an RST instead of a FIN.
void reset_fd(unique_fd& fd) {
    if (!fd) return;
    linger l{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    fd.reset();
}

struct chunk {
    clock::time_point due;
    std::string bytes;
    std::size_t off = 0;
};

/// One direction of one connection.
struct half {
    std::deque<chunk> queue;
    std::size_t buffered = 0;
    clock::time_point last_due{};  // of the newest chunk: a later chunk is never due before it
    bool source_eof = false;
    bool cut = false;   // half_close(): FIN once the queue is delivered; later bytes dropped
    bool shut = false;  // FIN passed on
    /// Nothing more to do in this direction: FIN sent, and the source will send no more.
    bool done() const { return shut && source_eof; }
};

struct connection {
    unique_fd client;
    unique_fd target;
    bool connecting = true;
    bool dead = false;
    half h[2];  // [0] client -> target, [1] target -> client

    int source(std::size_t d) const { return d == 0 ? client.get() : target.get(); }
    int dest(std::size_t d) const { return d == 0 ? target.get() : client.get(); }
};

constexpr std::size_t read_chunk = 64 * 1024;
constexpr auto max_wait = std::chrono::milliseconds(50);

}  // namespace

fault_proxy::fault_proxy(std::string target_host, std::uint16_t target_port)
    : host_(std::move(target_host)), target_port_(target_port) {
    listener_ = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listener_) fail("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        fail("bind");
    }
    if (::listen(listener_.get(), 128) != 0) fail("listen");
    socklen_t len = sizeof addr;
    if (::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        fail("getsockname");
    }
    port_ = ntohs(addr.sin_port);
    wakeup_ = unique_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wakeup_) fail("eventfd");
    thread_ = std::thread([this] { run(); });
}

fault_proxy::~fault_proxy() {
    stop_ = true;
    wake();
    if (thread_.joinable()) thread_.join();
}

void fault_proxy::wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wakeup_.get(), &one, sizeof one);
}

void fault_proxy::set_latency(direction d, std::chrono::milliseconds latency) {
    dir_[index(d)].latency_ms = latency.count();
    wake();
}

void fault_proxy::set_jitter(direction d, std::chrono::milliseconds jitter) {
    dir_[index(d)].jitter_ms = jitter.count();
    wake();
}

void fault_proxy::set_bandwidth(direction d, std::size_t bytes_per_second) {
    dir_[index(d)].bandwidth = bytes_per_second;
    wake();
}

void fault_proxy::set_stopped(direction d, bool stopped) {
    dir_[index(d)].stopped = stopped;
    wake();
}

void fault_proxy::wait_done(const std::atomic<unsigned>& done, unsigned want) {
    const auto deadline = clock::now() + std::chrono::seconds(5);
    while (done.load() < want && clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

std::size_t fault_proxy::reset_all() {
    const unsigned want = ++reset_requested_;
    wake();
    wait_done(reset_done_, want);
    return last_reset_count_.load();
}

std::size_t fault_proxy::half_close(direction d) {
    auto& s = dir_[index(d)];
    const unsigned want = ++s.half_close_requested;
    wake();
    wait_done(s.half_close_done, want);
    return s.last_half_close_count.load();
}

void fault_proxy::run() {
    std::list<connection> conns;
    double tokens[2] = {0, 0};
    clock::time_point refilled = clock::now();
    std::vector<pollfd> fds;
    std::vector<connection*> owners;  // fds[i + 2] belongs to owners[i]
    std::mt19937_64 rng(18);          // jitter: the same draws every run

    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(target_port_);
    if (::inet_pton(AF_INET, host_.c_str(), &target.sin_addr) != 1) return;

    while (!stop_) {
        auto now = clock::now();

        // Reset every connection on request.
        if (reset_done_.load() != reset_requested_.load()) {
            std::size_t n = 0;
            for (auto& c : conns) {
                reset_fd(c.client);
                reset_fd(c.target);
                ++n;
            }
            conns.clear();
            open_ = 0;
            last_reset_count_ = n;
            reset_done_ = reset_requested_.load();
        }

        // Half-close a direction of every connection on request.
        for (std::size_t d = 0; d < 2; ++d) {
            auto& s = dir_[d];
            if (s.half_close_done.load() == s.half_close_requested.load()) continue;
            std::size_t n = 0;
            for (auto& c : conns) {
                if (c.dead || c.h[d].shut || c.h[d].cut) continue;
                c.h[d].cut = true;
                ++n;
            }
            s.last_half_close_count = n;
            s.half_close_done = s.half_close_requested.load();
        }

        // Token buckets: one per direction, shared by all connections.
        const double dt = std::chrono::duration<double>(now - refilled).count();
        refilled = now;
        bool stopped[2];
        std::size_t rate[2];
        for (std::size_t d = 0; d < 2; ++d) {
            stopped[d] = dir_[d].stopped.load();
            rate[d] = dir_[d].bandwidth.load();
            if (rate[d] == 0) {
                tokens[d] = std::numeric_limits<double>::infinity();
            } else {
                const double burst = std::max(static_cast<double>(rate[d]) / 20, 4096.0);
                tokens[d] = std::min(burst, std::isinf(tokens[d])
                                                ? burst
                                                : tokens[d] + dt * static_cast<double>(rate[d]));
            }
        }

        // Write what is due, within the tokens; pass FINs on; drop dead connections.
        for (auto it = conns.begin(); it != conns.end();) {
            auto& c = *it;
            for (std::size_t d = 0; d < 2 && !c.dead && !c.connecting; ++d) {
                auto& h = c.h[d];
                while (!stopped[d] && !h.queue.empty() && h.queue.front().due <= now &&
                       tokens[d] >= 1) {
                    auto& ch = h.queue.front();
                    std::size_t len = ch.bytes.size() - ch.off;
                    if (!std::isinf(tokens[d])) {
                        len = std::min(len, static_cast<std::size_t>(tokens[d]));
                    }
                    const auto n = ::send(c.dest(d), ch.bytes.data() + ch.off, len,
                                          MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (n < 0) {
                        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                            c.dead = true;
                        }
                        break;
                    }
                    const auto sent = static_cast<std::size_t>(n);
                    ch.off += sent;
                    h.buffered -= sent;
                    tokens[d] -= static_cast<double>(sent);
                    dir_[d].forwarded += sent;
                    if (ch.off == ch.bytes.size()) h.queue.pop_front();
                }
                if (!stopped[d] && (h.source_eof || h.cut) && h.queue.empty() && !h.shut) {
                    ::shutdown(c.dest(d), SHUT_WR);
                    h.shut = true;
                }
            }
            if (c.dead || (c.h[0].done() && c.h[1].done())) {
                if (c.dead) {
                    reset_fd(c.client);
                    reset_fd(c.target);
                }
                it = conns.erase(it);
                --open_;
            } else {
                ++it;
            }
        }

        // What to wait for, and for how long at most.
        auto wait = max_wait;
        auto wait_until = [&](clock::time_point t) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(t - now);
            wait = std::clamp(left, std::chrono::milliseconds(1), wait);
        };
        fds.clear();
        owners.clear();
        fds.push_back({wakeup_.get(), POLLIN, 0});
        fds.push_back({listener_.get(), POLLIN, 0});
        for (auto& c : conns) {
            short ev[2] = {0, 0};  // [0] client fd, [1] target fd
            if (c.connecting) {
                ev[1] |= POLLOUT;
            }
            for (std::size_t d = 0; d < 2; ++d) {
                auto& h = c.h[d];
                const std::size_t src = d == 0 ? 0 : 1;
                const std::size_t dst = 1 - src;
                if (!h.source_eof && h.buffered < max_buffer && !(d == 1 && c.connecting)) {
                    ev[src] |= POLLIN;
                }
                if (c.connecting || stopped[d] || h.queue.empty()) continue;
                if (h.queue.front().due > now) {
                    wait_until(h.queue.front().due);
                } else if (tokens[d] < 1) {
                    const double need = 1 - tokens[d];
                    wait_until(now + std::chrono::microseconds(
                                         static_cast<long long>(need * 1e6 /
                                                                static_cast<double>(rate[d])) +
                                         1000));
                } else {
                    ev[dst] |= POLLOUT;
                }
            }
            // A socket with nothing to wait for whose peer has sent its FIN is left out (fd -1):
            // once this side's FIN is out too it reports POLLHUP at once, for ever.
            fds.push_back({ev[0] == 0 && c.h[0].source_eof ? -1 : c.client.get(), ev[0], 0});
            owners.push_back(&c);
            fds.push_back({ev[1] == 0 && c.h[1].source_eof ? -1 : c.target.get(), ev[1], 0});
            owners.push_back(&c);
        }

        if (::poll(fds.data(), fds.size(), static_cast<int>(wait.count())) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        now = clock::now();
        if (fds[0].revents != 0) {
            std::uint64_t v = 0;
            [[maybe_unused]] auto n = ::read(wakeup_.get(), &v, sizeof v);
        }

        // Reads (and connect completions, errors).
        std::array<char, read_chunk> buf{};
        for (std::size_t i = 2; i < fds.size(); ++i) {
            const auto re = fds[i].revents;
            if (re == 0) continue;
            auto& c = *owners[i - 2];
            if (c.dead) continue;
            const bool is_target = fds[i].fd == c.target.get();
            if (is_target && c.connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(c.target.get(), SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) {
                    c.dead = true;
                } else {
                    c.connecting = false;
                }
                continue;
            }
            if ((re & POLLERR) != 0) {
                c.dead = true;
                continue;
            }
            if ((re & (POLLIN | POLLHUP)) == 0) continue;
            const std::size_t d = is_target ? 1 : 0;
            auto& h = c.h[d];
            if (h.source_eof || h.buffered >= max_buffer) {
                if ((re & POLLHUP) != 0 && (re & POLLIN) == 0) c.dead = true;
                continue;
            }
            const auto n = ::recv(fds[i].fd, buf.data(),
                                  std::min(buf.size(), max_buffer - h.buffered), MSG_DONTWAIT);
            if (n > 0 && (h.cut || h.shut)) {
                dir_[d].dropped += static_cast<std::size_t>(n);
            } else if (n > 0) {
                auto due = now + std::chrono::milliseconds(dir_[d].latency_ms.load());
                if (const auto jitter_ms = dir_[d].jitter_ms.load(); jitter_ms > 0) {
                    std::uniform_int_distribution<long long> draw(0, jitter_ms * 1000);
                    due += std::chrono::microseconds(draw(rng));
                }
                due = std::max(due, h.last_due);
                h.last_due = due;
                h.queue.push_back({due, std::string(buf.data(), static_cast<std::size_t>(n)), 0});
                h.buffered += static_cast<std::size_t>(n);
            } else if (n == 0) {
                h.source_eof = true;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                c.dead = true;
            }
        }

        // New connections.
        if ((fds[1].revents & POLLIN) != 0) {
            for (int k = 0; k < 64; ++k) {
                unique_fd client(
                    ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
                if (!client) break;
                ++accepted_;
                unique_fd out(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
                if (!out) {
                    reset_fd(client);
                    continue;
                }
                set_nodelay(client.get());
                set_nodelay(out.get());
                const int r =
                    ::connect(out.get(), reinterpret_cast<const sockaddr*>(&target), sizeof target);
                if (r != 0 && errno != EINPROGRESS) {
                    reset_fd(client);
                    continue;
                }
                auto& c = conns.emplace_back();
                c.client = std::move(client);
                c.target = std::move(out);
                c.connecting = r != 0;
                ++open_;
            }
        }
    }
}

}  // namespace redis_sidecar::testing
