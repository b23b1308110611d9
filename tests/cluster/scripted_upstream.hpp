#pragma once

// A stand-in upstream for what a real server cannot be made to send: topology replies that are
// malformed, enormous, or list thousands of nodes. It speaks just enough plain RESP2 for the
// sidecar's handshake (HELLO, CLIENT, AUTH, SELECT, PING, RESET) and answers CLUSTER SHARDS /
// CLUSTER SLOTS with the bytes the test gives; anything else gets a nil. One thread, poll(),
// loopback only; stopped by the destructor.

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/net.hpp"

namespace redis_sidecar::cluster_test {

class scripted_upstream {
  public:
    /// Listens on 127.0.0.1 (a free port) and answers `replies` ("CLUSTER SHARDS" → bytes).
    explicit scripted_upstream(std::map<std::string, std::string> replies)
        : replies_(std::move(replies)) {
        listener_ = testing::unique_fd(::socket(AF_INET, SOCK_STREAM, 0));
        const int one = 1;
        ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(listener_.get(), 64) != 0) {
            throw std::runtime_error("scripted_upstream: cannot listen");
        }
        socklen_t len = sizeof a;
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        wakeup_ = testing::unique_fd(::eventfd(0, 0));
        thread_ = std::thread([this] { run(); });
    }
    ~scripted_upstream() {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wakeup_.get(), &one, sizeof one);
        thread_.join();
        for (auto& c : clients_) ::close(c.fd);
    }
    std::uint16_t port() const { return port_; }
    /// Commands received so far, by upper-cased name ("CLUSTER SHARDS" for CLUSTER).
    std::size_t count(const std::string& name) {
        std::lock_guard lock(mutex_);
        return counts_[name];
    }

  private:
    struct client {
        int fd;
        std::string in;
        std::string out;
    };

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

    std::string answer(const std::vector<std::string>& args) {
        const auto name = upper(args.at(0));
        auto key = name;
        if (name == "CLUSTER" && args.size() > 1) key += " " + upper(args[1]);
        {
            std::lock_guard lock(mutex_);
            ++counts_[key];
        }
        if (const auto it = replies_.find(key); it != replies_.end()) return it->second;
        if (name == "HELLO") {
            return "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n"
                   "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:9\r\n$4\r\nmode\r\n$7\r\ncluster\r\n"
                   "$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
        }
        if (name == "PING") return "+PONG\r\n";
        if (name == "RESET") return "+RESET\r\n";
        if (name == "CLIENT" || name == "AUTH" || name == "SELECT" || name == "SET" ||
            name == "QUIT") {
            return "+OK\r\n";
        }
        return "$-1\r\n";
    }

    void run() {
        for (;;) {
            std::vector<pollfd> fds{{wakeup_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
            for (const auto& c : clients_) {
                fds.push_back(
                    {c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
            }
            if (::poll(fds.data(), fds.size(), 1000) < 0) continue;
            if (fds[0].revents != 0) return;
            if ((fds[1].revents & POLLIN) != 0) {
                const int fd = ::accept(listener_.get(), nullptr, nullptr);
                if (fd >= 0) clients_.push_back({fd, {}, {}});
            }
            std::vector<int> gone;
            for (std::size_t i = 2; i < fds.size(); ++i) {
                auto& c = clients_[i - 2];
                if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                    char buf[65536];
                    const auto n = ::recv(c.fd, buf, sizeof buf, 0);
                    if (n <= 0) {
                        gone.push_back(c.fd);
                        continue;
                    }
                    c.in.append(buf, static_cast<std::size_t>(n));
                    std::vector<std::string> args;
                    while (take_command(c.in, args)) c.out += answer(args);
                }
                if ((fds[i].revents & POLLOUT) != 0 && !c.out.empty()) {
                    const auto n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
                    if (n > 0) c.out.erase(0, static_cast<std::size_t>(n));
                }
            }
            for (const int fd : gone) {
                ::close(fd);
                clients_.erase(std::remove_if(clients_.begin(), clients_.end(),
                                              [fd](const client& c) { return c.fd == fd; }),
                               clients_.end());
            }
        }
    }

    std::map<std::string, std::string> replies_;
    testing::unique_fd listener_;
    testing::unique_fd wakeup_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::vector<client> clients_;  // the thread's own
    std::mutex mutex_;
    std::map<std::string, std::size_t> counts_;
};

}  // namespace redis_sidecar::cluster_test
