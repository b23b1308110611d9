#pragma once

// A stand-in Redis that answers the sidecar's own commands (HELLO, AUTH, PING, INFO, ROLE,
// RESET, SELECT, CLIENT ...) with whatever a test scripts: exact bytes, bytes then a close, a
// close without a reply, no reply ever, or bytes trickled one at a time. Everything else gets a
// plausible default (HELLO's map, +PONG, +OK, a nil). Plain RESP2 over TCP on 127.0.0.1 only;
// one thread, poll(); rules may change while it runs; stopped (and every connection closed) by
// the destructor, so a trickle or a stalled reply ends with the test.

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/net.hpp"

namespace redis_sidecar::testing {

/// What the server does when a command arrives.
struct scripted_behaviour {
    enum class kind : std::uint8_t {
        reply,             ///< send `bytes`
        reply_then_close,  ///< send `bytes`, then close the connection (a reply cut short)
        close,             ///< close the connection without a byte
        never_reply,       ///< say nothing, now or later, on this connection (it stays open)
        trickle,           ///< send `bytes` one byte every `interval` (`endless`: repeat them)
        flood,             ///< send `head`, then `bytes` again and again at the reader's pace
    };
    kind what = kind::reply;
    std::string bytes;
    std::chrono::milliseconds interval{100};
    bool endless = false;
    std::string head;
    /// Applies from the command's `from`-th occurrence on a connection (1: every time; 2: the
    /// first one, as in the sidecar's handshake, is answered normally, later ones as scripted).
    std::size_t from = 1;

    static scripted_behaviour send(std::string b) { return make(kind::reply, std::move(b)); }
    static scripted_behaviour send_then_close(std::string b) {
        return make(kind::reply_then_close, std::move(b));
    }
    static scripted_behaviour close_now() { return make(kind::close, {}); }
    static scripted_behaviour silence() { return make(kind::never_reply, {}); }
    static scripted_behaviour trickle_bytes(std::string b, std::chrono::milliseconds every,
                                            bool forever = false) {
        auto r = make(kind::trickle, std::move(b));
        r.interval = every;
        r.endless = forever;
        return r;
    }
    /// `head` once, then `body` repeated without end as fast as the reader takes it.
    static scripted_behaviour flood_bytes(std::string head, std::string body) {
        auto r = make(kind::flood, std::move(body));
        r.head = std::move(head);
        return r;
    }
    scripted_behaviour starting_at(std::size_t n) const {
        auto r = *this;
        r.from = n;
        return r;
    }

  private:
    static scripted_behaviour make(kind k, std::string b) {
        scripted_behaviour r;
        r.what = k;
        r.bytes = std::move(b);
        return r;
    }
};

class scripted_server {
  public:
    struct options {
        /// HELLO's "mode" field by default ("standalone", "cluster").
        std::string mode = "standalone";
    };

    scripted_server() : scripted_server(options{}) {}
    /// Listens on 127.0.0.1 (a free port).
    explicit scripted_server(options o) : options_(std::move(o)) {
        listener_ = unique_fd(::socket(AF_INET, SOCK_STREAM, 0));
        const int one = 1;
        ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(listener_.get(), 64) != 0) {
            throw std::runtime_error("scripted_server: cannot listen");
        }
        socklen_t len = sizeof a;
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        wakeup_ = unique_fd(::eventfd(0, EFD_NONBLOCK));
        thread_ = std::thread([this] { run(); });
    }
    ~scripted_server() {
        stop_ = true;
        wake();
        thread_.join();
        for (auto& c : clients_) ::close(c.fd);
    }
    scripted_server(const scripted_server&) = delete;
    scripted_server& operator=(const scripted_server&) = delete;

    std::uint16_t port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    /// Scripts `name` ("PING", "HELLO", "CLIENT SETNAME" or "CLIENT" for every subcommand,
    /// "CLUSTER SHARDS"; upper case). Takes effect for the next command received.
    void script(const std::string& name, scripted_behaviour b) {
        std::lock_guard lock(mutex_);
        rules_[name] = std::move(b);
    }
    void unscript(const std::string& name) {
        std::lock_guard lock(mutex_);
        rules_.erase(name);
    }
    /// Closes every accepted connection (the sidecar's pool must open new ones).
    void drop_connections() {
        drop_ = true;
        wake();
    }
    /// Commands received so far by name ("CLIENT SETNAME" for CLIENT, as scripted).
    std::size_t count(const std::string& name) {
        std::lock_guard lock(mutex_);
        return counts_[name];
    }
    std::size_t accepted() const { return accepted_.load(); }
    /// Bytes sent by trickles so far.
    std::size_t trickled() const { return trickled_.load(); }
    /// Bytes sent by floods so far.
    std::size_t flooded() const { return flooded_.load(); }

    /// HELLO 2's reply as Redis 7 sends it (a flattened map).
    static std::string hello_reply(const std::string& mode) {
        return "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n"
               "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:9\r\n$4\r\nmode\r\n$" +
               std::to_string(mode.size()) + "\r\n" + mode +
               "\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
    }
    /// A bulk string reply.
    static std::string bulk(const std::string& s) {
        return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
    }

  private:
    struct segment {
        explicit segment(std::string b, std::chrono::milliseconds every = {}, bool forever = false,
                         bool close = false)
            : bytes(std::move(b)), interval(every), endless(forever), close_after(close) {}
        std::string bytes;
        std::size_t sent = 0;
        std::chrono::milliseconds interval{0};  // 0: as fast as the socket takes it
        bool endless = false;
        bool close_after = false;
    };
    struct client {
        explicit client(int f) : fd(f) {}
        int fd;
        std::string in;
        std::deque<segment> out;
        bool stalled = false;  // a never_reply command: nothing more is answered
        std::chrono::steady_clock::time_point next_byte{};
        std::map<std::string, std::size_t> seen;  // occurrences on this connection
        bool closing = false;
    };
    using clock = std::chrono::steady_clock;

    void wake() {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wakeup_.get(), &one, sizeof one);
    }

    static std::string upper(std::string s) {
        std::transform(s.begin(), s.end(), s.begin(),
                       [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        return s;
    }

    // One whole multibulk command from the front of `in`, or false.
    static bool take_command(std::string& in, std::vector<std::string>& args) {
        args.clear();
        if (in.empty() || in[0] != '*') return false;
        std::size_t pos = in.find("\r\n");
        if (pos == std::string::npos) return false;
        const auto n = std::stoul(in.substr(1, pos - 1));
        pos += 2;
        for (std::size_t i = 0; i < n; ++i) {
            const auto end = in.find("\r\n", pos);
            if (end == std::string::npos || in[pos] != '$') return false;
            const auto len = std::stoul(in.substr(pos + 1, end - pos - 1));
            if (in.size() < end + 2 + len + 2) return false;
            args.push_back(in.substr(end + 2, len));
            pos = end + 2 + len + 2;
        }
        in.erase(0, pos);
        return true;
    }

    std::string default_reply(const std::string& name) const {
        if (name == "HELLO") return hello_reply(options_.mode);
        if (name == "PING") return "+PONG\r\n";
        if (name == "RESET") return "+RESET\r\n";
        if (name == "ROLE") return "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n";
        if (name == "INFO") {
            return bulk(
                "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:10\r\n# Stats\r\n"
                "keyspace_hits:3\r\nkeyspace_misses:1\r\n");
        }
        if (name == "CLUSTER") return "-ERR This instance has cluster support disabled\r\n";
        if (name == "CLIENT" || name == "AUTH" || name == "SELECT" || name == "SET" ||
            name == "QUIT") {
            return "+OK\r\n";
        }
        return "$-1\r\n";
    }

    // Queues what `args` gets on `c`.
    void answer(client& c, const std::vector<std::string>& args) {
        const auto name = upper(args.at(0));
        auto key = name;
        if ((name == "CLIENT" || name == "CLUSTER") && args.size() > 1) {
            key += " " + upper(args[1]);
        }
        std::optional<scripted_behaviour> rule;
        {
            std::lock_guard lock(mutex_);
            ++counts_[key];
            if (key != name) ++counts_[name];
            auto it = rules_.find(key);
            if (it == rules_.end()) it = rules_.find(name);
            if (it != rules_.end()) rule = it->second;
        }
        const auto nth = ++c.seen[key];
        if (!rule || nth < rule->from) {
            c.out.emplace_back(default_reply(name));
            return;
        }
        using k = scripted_behaviour::kind;
        switch (rule->what) {
            case k::reply:
                c.out.emplace_back(rule->bytes);
                break;
            case k::reply_then_close:
                c.out.emplace_back(rule->bytes, std::chrono::milliseconds{}, false, true);
                c.stalled = true;  // nothing after the close
                break;
            case k::close:
                c.out.emplace_back(std::string(), std::chrono::milliseconds{}, false, true);
                c.stalled = true;
                break;
            case k::never_reply:
                c.stalled = true;
                break;
            case k::flood:
                c.out.emplace_back(rule->head);
                c.out.emplace_back(rule->bytes, std::chrono::milliseconds{}, true);
                c.stalled = true;
                break;
            case k::trickle:
                c.out.emplace_back(rule->bytes,
                                   std::max(rule->interval, std::chrono::milliseconds(1)),
                                   rule->endless);
                if (rule->endless) c.stalled = true;  // nothing ever comes after it
                break;
        }
    }

    // Sends what is due on `c`; false when the connection is to be closed.
    bool flush(client& c, clock::time_point now) {
        while (!c.out.empty()) {
            auto& s = c.out.front();
            if (s.interval.count() > 0) {
                if (s.bytes.empty()) return true;
                if (now < c.next_byte) return true;
                const char byte = s.bytes[s.sent % s.bytes.size()];
                const auto n = ::send(c.fd, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
                ++trickled_;
                ++s.sent;
                c.next_byte = now + s.interval;
                if (s.endless || s.sent < s.bytes.size()) return true;
            } else if (s.endless) {
                // At most 1 MiB per call: the loop must get back to poll() and its stop flag.
                for (std::size_t total = 0; total < (std::size_t{1} << 20) && !s.bytes.empty();) {
                    const auto n = ::send(c.fd, s.bytes.data() + s.sent, s.bytes.size() - s.sent,
                                          MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
                    total += static_cast<std::size_t>(n);
                    flooded_ += static_cast<std::size_t>(n);
                    s.sent = (s.sent + static_cast<std::size_t>(n)) % s.bytes.size();
                }
                return true;
            } else if (s.sent < s.bytes.size()) {
                const auto n = ::send(c.fd, s.bytes.data() + s.sent, s.bytes.size() - s.sent,
                                      MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
                s.sent += static_cast<std::size_t>(n);
                if (s.sent < s.bytes.size()) return true;
            }
            const bool close_after = s.close_after;
            c.out.pop_front();
            if (close_after) return false;
        }
        return true;
    }

    void run() {
        for (;;) {
            if (stop_) return;
            if (drop_.exchange(false)) {
                for (auto& c : clients_) ::close(c.fd);
                clients_.clear();
            }
            const auto now = clock::now();
            int timeout_ms = 1000;
            std::vector<pollfd> fds{{wakeup_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
            for (const auto& c : clients_) {
                short events = POLLIN;
                if (!c.out.empty()) {
                    const auto& s = c.out.front();
                    if (s.interval.count() == 0) {
                        events = static_cast<short>(events | POLLOUT);
                    } else {
                        const auto due =
                            std::chrono::duration_cast<std::chrono::milliseconds>(c.next_byte - now)
                                .count();
                        timeout_ms = std::clamp(static_cast<int>(due), 0, timeout_ms);
                    }
                }
                fds.push_back({c.fd, events, 0});
            }
            if (::poll(fds.data(), fds.size(), timeout_ms) < 0) continue;
            if (fds[0].revents != 0) {
                std::uint64_t v = 0;
                [[maybe_unused]] auto n = ::read(wakeup_.get(), &v, sizeof v);
                continue;  // stop_ or drop_ is looked at first
            }
            if ((fds[1].revents & POLLIN) != 0) {
                const int fd = ::accept(listener_.get(), nullptr, nullptr);
                if (fd >= 0) {
                    ++accepted_;
                    clients_.emplace_back(fd);
                }
            }
            const auto t = clock::now();
            for (std::size_t i = 2; i < fds.size(); ++i) {
                auto& c = clients_[i - 2];
                if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                    char buf[65536];
                    const auto n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
                    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                        c.closing = true;
                        continue;
                    }
                    if (n > 0 && !c.stalled) {
                        c.in.append(buf, static_cast<std::size_t>(n));
                        std::vector<std::string> args;
                        while (!c.stalled && take_command(c.in, args)) answer(c, args);
                    }
                }
                if (!flush(c, t)) c.closing = true;
            }
            for (auto& c : clients_) {
                if (c.closing) ::close(c.fd);
            }
            clients_.erase(std::remove_if(clients_.begin(), clients_.end(),
                                          [](const client& c) { return c.closing; }),
                           clients_.end());
        }
    }

    options options_;
    unique_fd listener_;
    unique_fd wakeup_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::vector<client> clients_;  // the thread's own
    std::atomic<bool> stop_{false};
    std::atomic<bool> drop_{false};
    std::atomic<std::size_t> accepted_{0};
    std::atomic<std::size_t> trickled_{0};
    std::atomic<std::size_t> flooded_{0};
    std::mutex mutex_;
    std::map<std::string, scripted_behaviour> rules_;
    std::map<std::string, std::size_t> counts_;
};

}  // namespace redis_sidecar::testing
