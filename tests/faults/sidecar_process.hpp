#pragma once

// The sidecar binary as a child process in front of whatever upstream a test sets up, with
// HTTP probes and /metrics read over a raw loopback socket.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "support/eventually.hpp"
#include "support/metrics_text.hpp"
#include "support/net.hpp"
#include "support/process.hpp"

namespace redis_sidecar::faults_test {

using namespace redis_sidecar::testing;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

inline void figure(const std::string& what, double value, const std::string& unit) {
    std::cout << "[figure] " << what << ": " << value << " " << unit << std::endl;
}

inline double seconds_since(clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
}

/// One HTTP/1.1 GET on loopback; the status code, or 0 when nothing answered.
inline int http_status(std::uint16_t port, const std::string& path, std::string* body = nullptr) {
    try {
        auto fd = connect_tcp("127.0.0.1", port, 2s);
        if (!fd) return 0;
        const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) < 0) return 0;
        timeval tv{2, 0};
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string resp;
        char buf[16384];
        for (;;) {
            const auto n = ::recv(fd.get(), buf, sizeof buf, 0);
            if (n <= 0) break;
            resp.append(buf, static_cast<std::size_t>(n));
        }
        if (resp.size() < 12) return 0;
        if (body != nullptr) {
            const auto end = resp.find("\r\n\r\n");
            *body = end == std::string::npos ? "" : resp.substr(end + 4);
        }
        return std::stoi(resp.substr(9, 3));
    } catch (const std::exception&) {
        return 0;
    }
}

inline long rss_kb(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

/// True in ctest's `mux:` run (RS_TEST_MULTIPLEX=on): the sidecars a test starts share
/// upstream connections unless the test says otherwise.
inline bool multiplexing_run() {
    const char* mux = std::getenv("RS_TEST_MULTIPLEX");
    return mux != nullptr && std::string_view(mux) == "on";
}

/// The sidecar binary in front of whatever upstream a test sets up.
class sidecar_process {
  public:
    void start(env_map env) {
        port_ = free_tcp_port();
        http_ = free_tcp_port();
        env_map full = base_env();
        full["REDIS_SIDECAR_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
        full["REDIS_SIDECAR_HTTP_ADDR"] = "127.0.0.1:" + std::to_string(http_);
        full["REDIS_SIDECAR_LOG_FORMAT"] = "text";
        full["REDIS_SIDECAR_MAX_DRAIN"] = "10s";
        // As in bridge_fixture: ctest's `mux:` run turns multiplexing on unless the test says.
        if (multiplexing_run()) full["REDIS_SIDECAR_MULTIPLEX"] = "on";
        for (const auto& [k, v] : env) full[k] = v;
        process_.start({REDIS_SIDECAR_BINARY, "run"}, full);
        ASSERT_TRUE(eventually(
            [&] { return http_status(http_, "/readyz") == 200 || !process_.running(); }, 20s))
            << process_.err();
        ASSERT_TRUE(process_.running()) << process_.err();
    }

    int readyz() const { return http_status(http_, "/readyz"); }
    int livez() const { return http_status(http_, "/livez"); }
    std::string metrics() const {
        std::string body;
        http_status(http_, "/metrics", &body);
        return body;
    }
    double metric(const std::string& name) const { return metric_sum(metrics(), name); }
    /// The /metrics samples of `family` whose value is not 0, one "  name{labels} value" line
    /// each: what a failed expectation prints.
    std::string nonzero_samples(const std::string& family) const {
        std::istringstream in(metrics());
        std::string out;
        for (std::string line; std::getline(in, line);) {
            if (line.rfind(family + "{", 0) == 0 && line.size() > 2 &&
                line.substr(line.size() - 2) != " 0") {
                out += "  " + line + "\n";
            }
        }
        return out;
    }
    /// GET /status, parsed; null when it does not answer 200 with JSON.
    nlohmann::json status() const {
        std::string body;
        if (http_status(http_, "/status", &body) != 200) return nullptr;
        try {
            return nlohmann::json::parse(body);
        } catch (const std::exception&) {
            return nullptr;
        }
    }
    /// A field of /status last_error ("class", "message"); "" when there is none.
    std::string last_error(const std::string& field = "class") const {
        const auto j = status();
        if (!j.is_object() || !j.contains("last_error")) return "";
        const auto& e = j["last_error"];
        return e.is_object() && e.contains(field) && e[field].is_string()
                   ? e[field].get<std::string>()
                   : "";
    }
    process_result cli(const std::vector<std::string>& args,
                       std::chrono::milliseconds t = 10s) const {
        std::vector<std::string> argv = {"redis-cli", "-p", std::to_string(port_)};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, base_env(), t);
    }
    std::uint16_t port() const { return port_; }
    std::uint16_t http_port() const { return http_; }
    /// SIGTERM, then the exit status (nullopt if it did not exit within the drain bound).
    std::optional<int> terminate() {
        process_.send_signal(SIGTERM);
        return process_.wait_exit(15s);
    }
    child_process& process() { return process_; }

  private:
    child_process process_{"redis-sidecar"};
    std::uint16_t port_ = 0;
    std::uint16_t http_ = 0;
};

}  // namespace redis_sidecar::faults_test
