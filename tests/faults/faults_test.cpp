// Behaviour under faults (README "Behaviour under faults"): every figure these tests measure is
// printed as a "[figure]" line, so a CI log shows recovery times, failed commands and memory.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <fstream>
#include <regex>
#include <thread>

#include "../bridge/bridge_fixture.hpp"
#include "support/eventually.hpp"
#include "support/net.hpp"
#include "support/pki.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

namespace redis_sidecar::faults_test {
namespace {

using namespace redis_sidecar::testing;
using namespace std::chrono_literals;
using bridge_test::resp_client;
using clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

void figure(const std::string& what, double value, const std::string& unit) {
    std::cout << "[figure] " << what << ": " << value << " " << unit << std::endl;
}

double seconds_since(clock::time_point t) {
    return std::chrono::duration<double>(clock::now() - t).count();
}

/// One HTTP/1.1 GET on loopback; the status code, or 0 when nothing answered.
int http_status(std::uint16_t port, const std::string& path, std::string* body = nullptr) {
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

/// The sum of every sample of a metric family in /metrics text (all label sets).
double metric_sum(const std::string& text, const std::string& name) {
    double sum = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind(name, 0) != 0) continue;
        const auto rest = line.substr(name.size());
        if (!rest.empty() && rest[0] != ' ' && rest[0] != '{') continue;  // a longer name
        sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
}

long rss_kb(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
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
        for (const auto& [k, v] : env) full[k] = v;
        process_.start({REDIS_SIDECAR_BINARY, "run"}, full);
        ASSERT_TRUE(eventually([&] { return http_status(http_, "/readyz") == 200 || !process_.running(); }, 20s))
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
    process_result cli(const std::vector<std::string>& args, std::chrono::milliseconds t = 10s) const {
        std::vector<std::string> argv = {"redis-cli", "-p", std::to_string(port_)};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, base_env(), t);
    }
    std::uint16_t port() const { return port_; }
    child_process& process() { return process_; }

private:
    child_process process_{"redis-sidecar"};
    std::uint16_t port_ = 0;
    std::uint16_t http_ = 0;
};

const std::string password = "faults-test-password-0123";

env_map upstream_env(const redis_server& s) {
    return {{"REDIS_ADDR", s.address()},
            {"REDIS_PASSWORD", password},
            {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "200ms"},
            {"REDIS_SOCKET_TIMEOUT", "500ms"},
            {"REDIS_CONNECTION_TIMEOUT", "1s"}};
}

TEST(faults, upstream_killed_and_restarted) {
    redis_server_options o;
    o.requirepass = password;
    redis_server server(o);
    server.start();
    sidecar_process sc;
    sc.start(upstream_env(server));
    ASSERT_EQ(trim(sc.cli({"SET", "k", "v"}).out), "OK");

    server.kill(SIGKILL);
    const auto down = clock::now();
    // Clients get an error at once, never a hang.
    const auto t = clock::now();
    const auto r = sc.cli({"GET", "k"}, 10s);
    EXPECT_FALSE(r.timed_out);
    EXPECT_NE(r.output().find("upstream unavailable"), std::string::npos) << r;
    figure("error reply while the upstream is down", seconds_since(t) * 1000, "ms");
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 503; }, 5s));
    figure("readyz 503 after SIGKILL", seconds_since(down) * 1000, "ms");
    EXPECT_EQ(sc.livez(), 200);  // a broken cache must not restart the pod

    const auto connects_before = sc.metric("redis_sidecar_upstream_connect_failures_total");
    std::this_thread::sleep_for(2s);  // an outage of known length, to count reconnect attempts
    const auto attempts = sc.metric("redis_sidecar_upstream_connect_failures_total") - connects_before;
    figure("connect attempts during a 2 s outage", attempts, "");
    EXPECT_LE(attempts, 2 * 50 + 50);  // never more than the rate limit (50/s + burst)
    EXPECT_LE(attempts, 40);           // and the backoff keeps it far below

    server.start();  // same port
    const auto back = clock::now();
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 200; }, 15s));
    figure("readyz 200 after the upstream returned", seconds_since(back) * 1000, "ms");
    EXPECT_EQ(trim(sc.cli({"SET", "k2", "v2"}).out), "OK");
    sc.process().send_signal(SIGTERM);
    EXPECT_EQ(sc.process().wait_exit(15s), 0);
}

TEST(faults, upstream_paused_then_resumed) {
    redis_server_options o;
    o.requirepass = password;
    redis_server server(o);
    server.start();
    sidecar_process sc;
    sc.start(upstream_env(server));

    server.kill(SIGSTOP);  // no RST, no FIN: only timeouts can tell
    const auto paused = clock::now();
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 503; }, 10s));
    figure("readyz 503 after SIGSTOP", seconds_since(paused) * 1000, "ms");
    EXPECT_EQ(sc.livez(), 200);
    server.kill(SIGCONT);
    const auto resumed = clock::now();
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 200; }, 15s));
    figure("readyz 200 after SIGCONT", seconds_since(resumed) * 1000, "ms");
    EXPECT_EQ(trim(sc.cli({"PING"}).out), "PONG");
    sc.process().send_signal(SIGTERM);
    EXPECT_EQ(sc.process().wait_exit(15s), 0);
}

// ElastiCache's ROTATE then SET, through a real ACL change, with redis-benchmark running.
TEST(faults, password_rotation_under_load_loses_nothing) {
    const std::string old_pw = "rotation-old-password-0123";
    const std::string new_pw = "rotation-new-password-4567";
    redis_server_options o;
    o.acl_users = {"user app on >" + old_pw + " ~* &* +@all"};
    redis_server server(o);
    server.start();
    temp_dir secrets;
    secrets.write_file("password", old_pw + "\n");
    sidecar_process sc;
    sc.start({{"REDIS_ADDR", server.address()},
              {"REDIS_USERNAME", "app"},
              {"REDIS_SIDECAR_SECRETS_DIR", secrets.path()},
              {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "200ms"}});

    // -k 0: a new local connection per request, so leases come and go during the rotation.
    child_process bench("redis-benchmark");
    bench.start({"/usr/bin/redis-benchmark", "-p", std::to_string(sc.port()), "-n", "30000", "-c", "8",
                 "-k", "0", "-t", "set", "-e", "--csv"},
                base_env());
    ASSERT_TRUE(eventually([&] { return server.cli({"DBSIZE"}).out != "0\n"; }, 10s));

    server.cli({"ACL", "SETUSER", "app", ">" + new_pw});              // ROTATE: both valid
    secrets.write_file("password.new", new_pw + "\n");                 // the kubelet's swap
    ASSERT_EQ(::rename(secrets.file("password.new").c_str(), secrets.file("password").c_str()), 0);
    ASSERT_TRUE(sc.process().wait_for_output("secrets changed", 10s));
    ASSERT_TRUE(eventually([&] { return sc.metric("redis_sidecar_pool_reauths_total") >= 1; }, 5s));
    server.cli({"ACL", "SETUSER", "app", "<" + old_pw});              // SET: only the new one

    const auto status = bench.wait_exit(120s);
    ASSERT_EQ(status, 0) << bench.err();
    const auto out = bench.out();
    EXPECT_EQ(out.find("rror"), std::string::npos) << out;  // -e prints every error reply
    EXPECT_NE(out.find("\"SET\""), std::string::npos) << out;
    figure("failed commands during rotation", out.find("rror") == std::string::npos ? 0 : 1, "");
    EXPECT_EQ(trim(sc.cli({"SET", "after", "rotation"}).out), "OK");
    std::string metrics_text = sc.metrics();
    EXPECT_NE(metrics_text.find("redis_sidecar_upstream_connect_failures_total{class=\"wrongpass\"} 0"),
              std::string::npos);
    EXPECT_EQ(sc.metric("redis_sidecar_credential_rotations_total"), 1);
    sc.process().send_signal(SIGTERM);
    EXPECT_EQ(sc.process().wait_exit(15s), 0);
    EXPECT_EQ(sc.process().out().find(new_pw), std::string::npos);
    EXPECT_EQ(sc.process().err().find(new_pw), std::string::npos);
}

// A failover: b is promoted, a demoted, the name moves from a's address to b's.
TEST(faults, failover_follows_the_name_and_writes_resume) {
    redis_server a;
    a.start();
    redis_server_options bo;
    bo.bind_address = "127.0.0.2";
    bo.port = a.port();
    bo.extra_config_lines = {"replicaof 127.0.0.1 " + std::to_string(a.port())};
    redis_server b(bo);
    b.start();
    temp_dir dir;
    const auto hosts = dir.write_file("hosts", "127.0.0.1 primary.cache.test\n");
    sidecar_process sc;
    sc.start({{"REDIS_ADDR", "primary.cache.test:" + std::to_string(a.port())},
              {"REDIS_SIDECAR_HOSTS_FILE", hosts},
              {"REDIS_SIDECAR_READINESS", "primary"},
              {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "200ms"}});

    std::vector<std::string> acked;
    const auto write = [&](int i) {
        const auto key = "k" + std::to_string(i);
        auto r = sc.cli({"SET", key, "v"}, 5s);
        if (trim(r.out) == "OK") acked.push_back(key);
        return trim(r.out) == "OK";
    };
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(write(i));
    // b has every acknowledged write (once its initial sync is done).
    ASSERT_TRUE(eventually([&] { return trim(a.cli({"WAIT", "1", "200"}).out) == "1"; }, 10s));

    EXPECT_EQ(trim(b.cli({"REPLICAOF", "NO", "ONE"}).out), "OK");
    EXPECT_EQ(trim(a.cli({"REPLICAOF", "127.0.0.2", std::to_string(a.port())}).out), "OK");
    dir.write_file("hosts", "127.0.0.2 primary.cache.test\n");
    const auto failover = clock::now();

    int i = 50;
    bool resumed = false;
    while (seconds_since(failover) < 20 && i < 2000) {
        if (write(i++)) {
            resumed = true;
            break;
        }
    }
    ASSERT_TRUE(resumed) << "writes never resumed";
    figure("writes resumed after the failover", seconds_since(failover) * 1000, "ms");
    for (int j = 0; j < 20; ++j) EXPECT_TRUE(write(i++));
    ASSERT_TRUE(eventually([&] { return sc.readyz() == 200; }, 5s));
    // Every acknowledged write is on the new primary; the old one acknowledged none after.
    for (const auto& key : acked) {
        EXPECT_EQ(trim(b.cli({"EXISTS", key}).out), "1") << key;
    }
    EXPECT_GE(sc.metric("redis_sidecar_dns_changes_total"), 1);
    sc.process().send_signal(SIGTERM);
    EXPECT_EQ(sc.process().wait_exit(15s), 0);
}

TEST(faults, abusive_clients_do_not_hurt_others) {
    redis_server server;
    server.start();
    sidecar_process sc;
    sc.start({{"REDIS_ADDR", server.address()},
              {"REDIS_MAX_CONNECTIONS", "64"},
              {"REDIS_SIDECAR_MAX_CLIENTS", "15000"}});
    {
        auto setter = resp_client::tcp(sc.port());
        ASSERT_EQ(setter.call({"SET", "big", std::string(1 << 20, 'x')}).text(), "OK");
    }
    const auto pid = sc.process().pid();
    const long rss_start = rss_kb(pid);

    // A 600 MB bulk header: refused before any payload.
    auto huge = resp_client::tcp(sc.port());
    huge.send_raw("*2\r\n$3\r\nSET\r\n$600000000\r\n");
    std::string rest;
    EXPECT_TRUE(huge.wait_closed(5s, &rest));
    EXPECT_NE(rest.find("Protocol error"), std::string::npos) << rest;

    // A client that never reads: 200 GETs of 1 MiB. The sidecar stops reading its replies
    // (bounded buffers), so memory stays flat.
    auto deaf = resp_client::tcp(sc.port());
    std::string pipeline;
    for (int i = 0; i < 200; ++i) pipeline += "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n";
    deaf.send_raw(pipeline);
    std::this_thread::sleep_for(1s);  // give it the chance to misbehave
    const long rss_deaf = rss_kb(pid);
    figure("sidecar RSS growth with a client that never reads 200 MiB of replies",
           static_cast<double>(rss_deaf - rss_start), "KB");
    EXPECT_LT(rss_deaf - rss_start, sanitized ? 64 * 1024 : 16 * 1024);
    EXPECT_EQ(trim(sc.cli({"PING"}).out), "PONG");

    // A client that opens connections as fast as it can (bounded: 2,000).
    const auto t = clock::now();
    for (int i = 0; i < 2000; ++i) {
        auto fd = connect_tcp("127.0.0.1", sc.port(), 2s);
    }
    figure("2,000 connects by one client", seconds_since(t) * 1000, "ms");
    EXPECT_EQ(trim(sc.cli({"PING"}).out), "PONG");

    // 10,000 idle clients: connected, silent. They hold no upstream connection.
    const int idle_clients = sanitized ? 3000 : 10000;
    const long rss_before_idle = rss_kb(pid);
    std::vector<unique_fd> idle;
    idle.reserve(idle_clients);
    for (int i = 0; i < idle_clients; ++i) idle.push_back(connect_tcp("127.0.0.1", sc.port(), 2s));
    ASSERT_TRUE(eventually([&] { return sc.metric("redis_sidecar_clients") >= idle_clients; }, 20s));
    const long rss_idle = rss_kb(pid);
    const double per_client = static_cast<double>(rss_idle - rss_before_idle) * 1024 / idle_clients;
    figure("RSS per idle local client", per_client, "bytes");
    if (!sanitized) {
        EXPECT_LT(per_client, 16 * 1024);
    }
    EXPECT_EQ(trim(sc.cli({"PING"}).out), "PONG");
    EXPECT_LE(sc.metric("redis_sidecar_pool_connections_open"), 64);
    idle.clear();
    deaf.close();
    sc.process().send_signal(SIGTERM);
    EXPECT_EQ(sc.process().wait_exit(15s), 0);
}

TEST(faults, sigterm_under_load_delivers_every_owed_reply) {
    redis_server server;
    server.start();
    sidecar_process sc;
    sc.start({{"REDIS_ADDR", server.address()}});
    auto c = resp_client::tcp(sc.port());
    const int n = 20000;
    std::string pipeline;
    for (int i = 0; i < n; ++i) pipeline += "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n";
    c.send_raw(pipeline);
    sc.process().send_signal(SIGTERM);
    EXPECT_TRUE(eventually([&] { return sc.readyz() != 200; }, 2s));  // readiness fails at once
    for (int i = 1; i <= n; ++i) {
        const auto r = c.read(10s);
        ASSERT_EQ(r.integer, i) << r.text();
    }
    c.close();
    EXPECT_EQ(sc.process().wait_exit(15s), 0);
    EXPECT_EQ(trim(server.cli({"GET", "n"}).out), std::to_string(n));
}

}  // namespace
}  // namespace redis_sidecar::faults_test
