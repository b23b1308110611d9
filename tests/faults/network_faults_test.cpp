// A hostile network (issue 18), through the real binary speaking TLS to a real redis-server:
// a connection that silently stops mid-reply, a slow and thin link (latency plus a bandwidth
// cap), a jittery link, an upstream that half-closes (FIN towards the sidecar), a client that
// half-closes after its pipeline, and a blackholed primary (a network namespace whose packets are
// all dropped: no RST, no FIN). All but the last go through tests/support/fault_proxy on
// loopback; the last needs root and `ip netns`, and skips without them. Every figure is printed
// as a "[figure]" line.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "../bridge/bridge_fixture.hpp"
#include "sidecar_process.hpp"
#include "support/eventually.hpp"
#include "support/fault_proxy.hpp"
#include "support/pki.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

namespace redis_sidecar::faults_test {
namespace {

using bridge_test::encode_command;
using bridge_test::resp_client;
using bridge_test::resp_value;
using direction = fault_proxy::direction;

const std::string password = "network-faults-password-0123";

/// The sidecar's settings for a TLS upstream at `address` (an IP literal: the test PKI's
/// certificates carry the IP, and REDIS_TLS_SERVER_NAME defaults to the host).
env_map tls_env(const std::string& address, const env_map& extra) {
    env_map env = {{"REDIS_ADDR", address},
                   {"REDIS_TLS_ENABLED", "true"},
                   {"REDIS_TLS_CA_FILE", test_pki::shared().ca_cert()}};
    for (const auto& [k, v] : extra) env[k] = v;
    return env;
}

redis_server_options tls_server() {
    redis_server_options o;
    o.tls = true;
    return o;
}

/// A TLS redis-server behind a fault_proxy, and the sidecar in front of the proxy. Members are
/// destroyed in reverse: the sidecar first, the server last.
struct proxied_upstream {
    redis_server server{tls_server()};
    std::optional<fault_proxy> proxy;
    sidecar_process sc;

    void start(const env_map& sidecar_env) {
        server.start();
        proxy.emplace("127.0.0.1", server.port());
        sc.start(tls_env(proxy->address(), sidecar_env));
    }
};

/// Settings under which a slow link (hundreds of ms per round trip) is a legal network.
const env_map slow_link_env = {{"REDIS_SOCKET_TIMEOUT", "3s"},
                               {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "1s"},
                               {"REDIS_CONNECTION_TIMEOUT", "5s"},
                               {"REDIS_MIN_IDLE_CONNECTIONS", "2"}};
constexpr int slow_link_min_idle = 2;
const std::string connects_metric = "redis_sidecar_upstream_connects_total";

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

/// One command on a fresh connection; the reply, or an error text when the connection failed.
resp_value one_command(std::uint16_t port, const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout) {
    try {
        auto c = resp_client::tcp(port, 2s);
        return c.call(args, timeout);
    } catch (const std::exception& e) {
        resp_value v;
        v.type = '-';
        v.str = std::string("client: ") + e.what();
        return v;
    }
}

// 1. The upstream connection goes silent in the middle of an 8 MB reply (the proxy stops
// forwarding upstream -> sidecar: no RST, no FIN; the proxy keeps acknowledging what the sidecar
// sends, as a stuck server or a middlebox would). The client should get an error (the reply
// cannot be finished, so its connection is closed) within about REDIS_SOCKET_TIMEOUT, and the
// stalled upstream connection must never serve another command.
//
// The client waits up to 15 s for that error; the test asserts it came within 5 s (the sidecar's
// mid-reply deadline is REDIS_SOCKET_TIMEOUT plus a sweep period; the rest is slack for CI).
void silent_mid_reply() {
    proxied_upstream link;
    link.start({{"REDIS_SOCKET_TIMEOUT", "500ms"},
                {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "200ms"},
                {"REDIS_CONNECTION_TIMEOUT", "1s"},
                {"REDIS_MIN_IDLE_CONNECTIONS", "2"}});
    auto& proxy = *link.proxy;
    auto& sc = link.sc;

    const std::string big(8u << 20, 'x');
    {
        auto c = resp_client::tcp(sc.port());
        ASSERT_EQ(c.call({"SET", "big", big}, 30s).text(), "OK");
        ASSERT_EQ(c.call({"SET", "small", "v1"}).text(), "OK");
    }

    // Slow the replies down so that the stop falls in the middle of the 8 MB.
    proxy.set_bandwidth(direction::to_client, 2u << 20);
    const auto accepted_before = proxy.accepted();
    const auto forwarded_before = proxy.bytes_forwarded(direction::to_client);
    auto c = resp_client::tcp(sc.port());
    c.send({"GET", "big"});
    ASSERT_TRUE(eventually(
        [&] {
            return proxy.bytes_forwarded(direction::to_client) - forwarded_before >= (1u << 20);
        },
        20s));
    proxy.set_stopped(direction::to_client, true);
    const auto stopped_at = clock::now();
    const auto forwarded_at_stop = proxy.bytes_forwarded(direction::to_client) - forwarded_before;

    std::string outcome;
    try {
        const auto r = c.read(15s);
        outcome = r.is_error() ? "error reply: " + r.text()
                               : "a complete reply of " + std::to_string(r.str.size()) + " bytes";
    } catch (const std::exception& e) {
        outcome = std::string("connection closed: ") + e.what();
    }
    const double error_after = seconds_since(stopped_at);
    std::cout << "client saw: " << outcome << std::endl;
    figure("silent mid-reply: bytes of the 8 MB reply forwarded before the stop",
           static_cast<double>(forwarded_at_stop), "B");
    figure("silent mid-reply: client error after", error_after * 1000, "ms");
    EXPECT_LT(error_after, 5.0) << outcome;
    EXPECT_EQ(outcome.find("complete reply"), std::string::npos) << outcome;
    EXPECT_GE(sc.metric("redis_sidecar_upstream_read_timeouts_total"), 1) << sc.metrics();
    c.close();

    // The link comes back: if the stalled connection were reused, its leftover megabytes would
    // be read as the reply to the next commands.
    proxy.set_stopped(direction::to_client, false);
    proxy.set_bandwidth(direction::to_client, 0);
    for (int i = 0; i < 20; ++i) {
        const auto r = one_command(sc.port(), {"GET", "small"}, 5s);
        ASSERT_EQ(r.text(), "\"v1\"") << "command " << i;
    }
    {
        auto c2 = resp_client::tcp(sc.port());
        const auto r = c2.call({"STRLEN", "big"});
        EXPECT_EQ(r.integer, static_cast<long long>(big.size())) << r.text();
    }
    const auto new_connections = proxy.accepted() - accepted_before;
    figure("silent mid-reply: new upstream connections after", static_cast<double>(new_connections),
           "");
    EXPECT_GE(new_connections, 1u);
    EXPECT_LT(new_connections, 20u);

    // Every connection reset at once (both sides get an RST): the pool reopens, commands resume.
    const auto reset = proxy.reset_all();
    const auto reset_at = clock::now();
    EXPECT_GE(reset, 1u);
    int failed_after_reset = 0;
    const bool resumed = eventually(
        [&] {
            if (one_command(sc.port(), {"GET", "small"}, 5s).text() == "\"v1\"") return true;
            ++failed_after_reset;
            return false;
        },
        10s, 20ms);
    figure("reset all: connections reset", static_cast<double>(reset), "");
    figure("reset all: commands served again after", seconds_since(reset_at) * 1000, "ms");
    figure("reset all: failed commands before that", failed_after_reset, "");
    EXPECT_TRUE(resumed);
    EXPECT_TRUE(sc.process().running());
}

TEST(network_faults, connection_silent_mid_reply_errors_within_timeout_and_is_not_reused) {
    silent_mid_reply();
}

// 2. A slow, thin link: 100 ms added each way (200 ms round trip) and 1 MB/s each way. With
// REDIS_SOCKET_TIMEOUT=3s that is a legal network: every command of a bounded load completes, and
// the sidecar does not reconnect in a loop.
TEST(network_faults, latency_and_bandwidth_cap) {
    proxied_upstream link;
    link.start(slow_link_env);
    auto& proxy = *link.proxy;
    auto& sc = link.sc;
    for (auto d : {direction::to_target, direction::to_client}) {
        proxy.set_latency(d, 100ms);
        proxy.set_bandwidth(d, 1u << 20);
    }
    const std::string& connects = connects_metric;
    const double connects_before = sc.metric(connects);
    const auto accepted_before = proxy.accepted();

    constexpr int clients = 4;
    constexpr int per_client = 50;
    const std::string value64k(64 * 1024, 'v');
    std::mutex m;
    std::vector<double> latencies_ms;
    std::vector<std::string> failures;
    std::atomic<int> done{0};
    const auto started = clock::now();
    std::vector<std::thread> threads;
    for (int w = 0; w < clients; ++w) {
        threads.emplace_back([&, w] {
            std::optional<resp_client> c;
            for (int i = 0; i < per_client; ++i) {
                const std::string key = "k" + std::to_string(w) + "-" + std::to_string(i / 10);
                std::vector<std::string> cmd;
                if (i % 10 == 0) {
                    cmd = {"SET", key, value64k};
                } else if (i % 10 == 5) {
                    cmd = {"GET", key};
                } else {
                    cmd = {"INCR", "n" + std::to_string(w)};
                }
                const auto t = clock::now();
                try {
                    if (!c) c.emplace(resp_client::tcp(sc.port(), 5s));
                    const auto r = c->call(cmd, 30s);
                    const double ms = seconds_since(t) * 1000;
                    const bool good = cmd[0] == "GET"   ? r.str == value64k
                                      : cmd[0] == "SET" ? r.text() == "OK"
                                                        : r.type == ':';
                    std::lock_guard l(m);
                    if (good) {
                        latencies_ms.push_back(ms);
                        ++done;
                    } else {
                        failures.push_back(cmd[0] + ": " + r.text().substr(0, 200));
                    }
                } catch (const std::exception& e) {
                    std::lock_guard l(m);
                    failures.push_back(cmd[0] + ": " + e.what());
                    c.reset();
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    const double total_s = seconds_since(started);
    const double new_connects = sc.metric(connects) - connects_before;
    const auto accepted = proxy.accepted() - accepted_before;

    figure("slow link: commands completed", done.load(), "of 200");
    figure("slow link: p50 latency", percentile(latencies_ms, 0.5), "ms");
    figure("slow link: p99 latency", percentile(latencies_ms, 0.99), "ms");
    figure("slow link: whole load", total_s, "s");
    figure("slow link: upstream connects during the load", new_connects, "");
    figure("slow link: proxy accepts during the load", static_cast<double>(accepted), "");
    for (const auto& f : failures) ADD_FAILURE() << f;
    EXPECT_EQ(done.load(), clients * per_client);
    // One connection per busy client at most, plus a few refills: not a reconnect storm.
    EXPECT_LE(new_connects, 2 * clients + 4);
    EXPECT_LE(accepted, static_cast<std::size_t>(2 * clients + 4));
    // Every command crossed the 200 ms round trip at least once.
    EXPECT_GE(percentile(latencies_ms, 0.5), 190);
    EXPECT_EQ(sc.readyz(), 200);
}

// 3. A jittery link: 50 ms each way plus up to 100 ms more per chunk, so a one-chunk round trip
// takes 100-300 ms; the proxy keeps each direction in order (TCP does not reorder), so a chunk
// may wait behind a later-drawn one and a reply of several chunks takes longer. Ten clients each
// send 25 pipelined SET/GET pairs, values of their own (every fifth 32 KB: several TLS records,
// several chunks). Every GET returns what that client just SET, nothing fails (a reordered or lost
// byte would break TLS), and the sidecar does not reconnect in a loop when replies come late and
// unevenly.
TEST(network_faults, latency_with_jitter) {
    proxied_upstream link;
    link.start(slow_link_env);
    auto& proxy = *link.proxy;
    auto& sc = link.sc;
    for (auto d : {direction::to_target, direction::to_client}) {
        proxy.set_latency(d, 50ms);
        proxy.set_jitter(d, 100ms);
    }
    const double connects_before = sc.metric(connects_metric);
    const auto accepted_before = proxy.accepted();

    constexpr int clients = 10;
    constexpr int pairs = 25;  // 50 commands per client
    std::mutex m;
    std::vector<double> latencies_ms;
    std::vector<std::string> failures;
    std::atomic<int> done{0};
    const auto started = clock::now();
    std::vector<std::thread> threads;
    for (int w = 0; w < clients; ++w) {
        threads.emplace_back([&, w] {
            std::optional<resp_client> c;
            for (int i = 0; i < pairs; ++i) {
                const std::string tag = std::to_string(w) + "-" + std::to_string(i);
                const std::string key = "j" + tag;
                const std::string value =
                    "v" + tag +
                    (i % 5 == 0 ? std::string(32 * 1024, static_cast<char>('a' + w))
                                : std::string());
                const auto t = clock::now();
                try {
                    if (!c) c.emplace(resp_client::tcp(sc.port(), 5s));
                    c->send_raw(encode_command({"SET", key, value}) + encode_command({"GET", key}));
                    const auto set = c->read(30s);
                    const auto get = c->read(30s);
                    const double ms = seconds_since(t) * 1000;
                    std::lock_guard l(m);
                    if (set.text() == "OK" && get.type == '$' && get.str == value) {
                        latencies_ms.push_back(ms);
                        done += 2;
                    } else {
                        failures.push_back("client " + std::to_string(w) + " pair " +
                                           std::to_string(i) + ": SET " + set.text() + ", GET " +
                                           get.text().substr(0, 80));
                    }
                } catch (const std::exception& e) {
                    std::lock_guard l(m);
                    failures.push_back("client " + std::to_string(w) + " pair " +
                                       std::to_string(i) + ": " + e.what());
                    c.reset();
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    const double total_s = seconds_since(started);
    const double new_connects = sc.metric(connects_metric) - connects_before;
    const auto accepted = proxy.accepted() - accepted_before;

    figure("jitter: commands completed", done.load(), "of 500");
    figure("jitter: p50 pipelined SET+GET round trip", percentile(latencies_ms, 0.5), "ms");
    figure("jitter: p99 pipelined SET+GET round trip", percentile(latencies_ms, 0.99), "ms");
    figure("jitter: whole load", total_s, "s");
    figure("jitter: upstream connects during the load", new_connects, "");
    figure("jitter: proxy accepts during the load", static_cast<double>(accepted), "");
    for (const auto& f : failures) ADD_FAILURE() << f;
    EXPECT_EQ(done.load(), clients * pairs * 2);
    // One connection per busy client at most, plus the idle minimum and a few: not a storm.
    EXPECT_LE(new_connects, clients + slow_link_min_idle + 4);
    EXPECT_LE(accepted, static_cast<std::size_t>(clients + slow_link_min_idle + 4));
    // Every pair crossed the 100 ms minimum round trip at least once.
    EXPECT_GE(percentile(latencies_ms, 0.5), 95);
    // The jitter shows (without it nearly every round trip is 100-120 ms).
    EXPECT_GE(percentile(latencies_ms, 0.99), 150);
    EXPECT_EQ(sc.readyz(), 200);
}

// 4. The upstream half-closes: every open upstream connection gets a FIN towards the sidecar
// (no RST; the server's side stays open and still reads) while the pool holds idle connections
// and a client waits in BLPOP with no timeout. A FIN from a Redis server means it is gone: the
// blocked client should get an error or a closed connection, not hang; every half-closed
// connection should be closed by the sidecar (none reused: a reply on it can never come), and
// commands should succeed again on fresh connections.
TEST(network_faults, upstream_half_close) {
    proxied_upstream link;
    link.start({{"REDIS_SOCKET_TIMEOUT", "1s"},
                {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "200ms"},
                {"REDIS_CONNECTION_TIMEOUT", "1s"},
                {"REDIS_MIN_IDLE_CONNECTIONS", "2"}});
    auto& proxy = *link.proxy;
    auto& sc = link.sc;
    auto blocked_clients = [&] {
        const auto out = link.server.cli({"INFO", "clients"}).out;
        const auto at = out.find("blocked_clients:");
        return at == std::string::npos ? -1 : std::atoi(out.c_str() + at + 16);
    };

    auto waiter = resp_client::tcp(sc.port());
    waiter.send({"BLPOP", "hc-queue", "0"});
    ASSERT_TRUE(eventually([&] { return blocked_clients() == 1; }, 10s));
    ASSERT_TRUE(
        eventually([&] { return sc.metric("redis_sidecar_pool_connections_idle") >= 2; }, 10s))
        << sc.metrics();
    const std::string discard_metrics[] = {"redis_sidecar_pool_discards_total",
                                           "redis_sidecar_upstream_recycle_discards_total"};
    auto discards = [&] {
        double n = 0;
        for (const auto& name : discard_metrics) n += sc.metric(name);
        return n;
    };
    const double discards_before = discards();
    const double connects_before = sc.metric(connects_metric);

    // Read before the cut: on an idle machine the sidecar sees the FINs, discards and reconnects
    // before half_close() returns to this thread, and a count read after it would include them.
    const auto accepted_at_cut = proxy.accepted();
    const auto cut = proxy.half_close(direction::to_client);
    const auto cut_at = clock::now();
    ASSERT_GE(cut, 3u);  // the waiter's and at least two idle ones

    std::string outcome;
    try {
        const auto r = waiter.read(15s);
        outcome = (r.is_error() ? "error reply: " : "a reply: ") + r.text();
    } catch (const std::exception& e) {
        outcome = std::string("connection closed: ") + e.what();
    }
    const double waiter_s = seconds_since(cut_at);
    std::cout << "BLPOP client saw: " << outcome << std::endl;
    waiter.close();

    // Every half-closed connection closed by the sidecar (the proxy then closes its server side,
    // so only connections opened since remain).
    const bool all_closed = eventually(
        [&] { return proxy.open_connections() <= proxy.accepted() - accepted_at_cut; }, 10s, 10ms);
    const double closed_s = seconds_since(cut_at);

    int failed = 0;
    const bool served = eventually(
        [&] {
            if (one_command(sc.port(), {"SET", "hc-after", "1"}, 5s).text() == "OK") return true;
            ++failed;
            return false;
        },
        10s, 20ms);
    const double served_s = seconds_since(cut_at);
    int ok_after = 0;
    for (int i = 0; i < 20; ++i) {
        if (one_command(sc.port(), {"INCR", "hc-n"}, 5s).integer == i + 1) ++ok_after;
    }
    // The BLPOP is gone from the server too: nothing takes what is pushed now.
    EXPECT_EQ(trim(link.server.cli({"LPUSH", "hc-queue", "x"}).out), "1");
    EXPECT_EQ(trim(link.server.cli({"LLEN", "hc-queue"}).out), "1");

    const double new_discards = discards() - discards_before;
    const double new_connects = sc.metric(connects_metric) - connects_before;
    figure("upstream half-close: connections half-closed", static_cast<double>(cut), "");
    figure("upstream half-close: BLPOP client error after", waiter_s * 1000, "ms");
    figure("upstream half-close: every half-closed connection closed by the sidecar after",
           closed_s * 1000, "ms");
    figure("upstream half-close: commands served again after", served_s * 1000, "ms");
    figure("upstream half-close: failed commands before that", failed, "");
    figure("upstream half-close: discards (pool + recycle)", new_discards, "");
    figure("upstream half-close: upstream connects since", new_connects, "");
    figure("upstream half-close: bytes dropped after the FIN",
           static_cast<double>(proxy.bytes_dropped(direction::to_client)), "B");
    EXPECT_LT(waiter_s, 5.0) << outcome;
    EXPECT_EQ(outcome.rfind("a reply", 0), std::string::npos) << outcome;
    EXPECT_TRUE(all_closed) << proxy.open_connections() << " open, "
                            << proxy.accepted() - accepted_at_cut << " accepted since";
    EXPECT_LT(closed_s, 5.0);
    EXPECT_TRUE(served);
    EXPECT_LT(served_s, 5.0);
    EXPECT_EQ(ok_after, 20);
    EXPECT_GE(new_discards, 1);
    EXPECT_GE(new_connects, 1);
    EXPECT_LE(new_connects, static_cast<double>(cut) + 10);
    EXPECT_TRUE(sc.process().running());
}

// 5. A client that half-closes (shutdown(SHUT_WR) after its last command, like `nc -N` or a
// script piping a file into a socket): Redis answers every command of the pipeline, then closes.
// The same pipeline against redis-server directly (the reference), through the fault proxy (its
// FIN forwarding), and through the sidecar.

/// What came back for a pipeline of `pairs` SET/GET pairs sent whole, then shutdown(SHUT_WR).
struct half_close_result {
    int replies = 0;   ///< replies read before the end
    int correct = 0;   ///< of which as expected
    bool eof = false;  ///< then an orderly close
    std::string detail;
    double ms = 0;  ///< from the FIN to the end
};

half_close_result pipeline_then_half_close(std::uint16_t port, const std::string& prefix,
                                           int pairs) {
    half_close_result out;
    auto c = resp_client::tcp(port, 5s);
    std::string bytes;
    for (int i = 0; i < pairs; ++i) {
        const std::string key = prefix + std::to_string(i);
        bytes += encode_command({"SET", key, "value-" + key});
        bytes += encode_command({"GET", key});
    }
    c.send_raw(bytes);
    ::shutdown(c.fd(), SHUT_WR);
    const auto fin_at = clock::now();
    for (int i = 0; i < 2 * pairs; ++i) {
        try {
            const auto r = c.read(10s);
            ++out.replies;
            const std::string key = prefix + std::to_string(i / 2);
            if (i % 2 == 0 ? r.text() == "OK" : r.str == "value-" + key) ++out.correct;
        } catch (const std::exception& e) {
            out.detail = e.what();
            break;
        }
    }
    if (out.replies == 2 * pairs) out.eof = c.wait_closed(10s, &out.detail);
    out.ms = seconds_since(fin_at) * 1000;
    return out;
}

void expect_all_replies(const std::string& via, const half_close_result& r, int pairs) {
    figure("client half-close via " + via + ": replies after the FIN", r.replies,
           "of " + std::to_string(2 * pairs));
    figure("client half-close via " + via + ": time to the close", r.ms, "ms");
    EXPECT_EQ(r.replies, 2 * pairs) << via << ": " << r.detail;
    EXPECT_EQ(r.correct, 2 * pairs) << via;
    EXPECT_TRUE(r.eof) << via << ": " << r.detail;
}

constexpr int half_close_pairs = 50;  // 100 commands

TEST(network_faults, client_half_close_reference) {
    redis_server plain;
    plain.start();
    expect_all_replies("redis-server directly",
                       pipeline_then_half_close(plain.port(), "d", half_close_pairs),
                       half_close_pairs);
    fault_proxy proxy("127.0.0.1", plain.port());
    expect_all_replies("fault_proxy", pipeline_then_half_close(proxy.port(), "p", half_close_pairs),
                       half_close_pairs);
    EXPECT_TRUE(eventually([&] { return proxy.open_connections() == 0; }, 5s));
}

// Through the sidecar, as from redis-server: every reply, then the close. Before d32fe64 the
// sidecar treated the client's EOF like a read error and closed it at once, with the replies
// still owed: 0 of 100 arrived in 14 of 20 runs. Now it stops reading, delivers what it owes
// (client_core::can_drain_after_eof / settled) and then closes.
TEST(network_faults, client_half_close) {
    redis_server server(tls_server());
    server.start();
    sidecar_process sc;
    sc.start(tls_env(server.address(), {}));
    expect_all_replies("the sidecar", pipeline_then_half_close(sc.port(), "s", half_close_pairs),
                       half_close_pairs);
    // And the sidecar serves the next client as usual.
    EXPECT_EQ(one_command(sc.port(), {"GET", "s0"}, 5s).text(), "\"value-s0\"");
}

// ---------------------------------------------------------------------------------------------
// 6. A blackholed primary: a redis-server in its own network namespace, reached over a veth
// pair; then every packet in and out of the namespace is dropped (iptables DROP: no RST, no FIN).

constexpr std::string_view ns_prefix = "rs-bh-";
constexpr std::string_view link_prefix = "rsb";
constexpr std::string_view netns_dir = "/run/netns/";
constexpr std::chrono::milliseconds tool_timeout{10000};

std::string tool(std::initializer_list<const char*> candidates, const char* fallback) {
    for (const char* p : candidates) {
        if (::access(p, X_OK) == 0) return p;
    }
    return fallback;
}
std::string ip_tool() {
    return tool({"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}, "ip");
}
std::string iptables_tool() {
    return tool({"/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables"}, "iptables");
}

process_result run_ip(std::vector<std::string> args) {
    args.insert(args.begin(), ip_tool());
    return run_process(args, base_env(), tool_timeout);
}

bool lacks_privilege(const process_result& r) {
    const auto out = r.output();
    return out.find("Operation not permitted") != std::string::npos ||
           out.find("Permission denied") != std::string::npos;
}

/// A network namespace with one end of a veth pair in it: host side 10.214.a.(b+1)/30,
/// namespace side 10.214.a.(b+2)/30, a and b from the pid (test processes running at once pick
/// different /30s). Everything it made is removed by the destructor, whatever happened.
class veth_namespace {
  public:
    veth_namespace() {
        const auto pid = static_cast<unsigned>(::getpid());
        const std::string id = std::to_string(pid);
        ns_ = std::string(ns_prefix) + id;
        host_if_ = host_link(id);
        ns_if_ = std::string(link_prefix) + id + "n";
        const std::string net = "10.214." + std::to_string((pid >> 6) & 0xffu) + ".";
        const unsigned base = (pid & 0x3fu) * 4;
        host_addr_ = net + std::to_string(base + 1);
        ns_addr_ = net + std::to_string(base + 2);
    }
    ~veth_namespace() { remove(); }
    veth_namespace(const veth_namespace&) = delete;
    veth_namespace& operator=(const veth_namespace&) = delete;

    struct outcome {
        bool ok = false;
        bool no_privilege = false;
        std::string detail;
    };

    outcome create() {
        remove_leftovers();
        const std::string net30 = "/30";
        const std::vector<std::vector<std::string>> steps = {
            {"netns", "add", ns_},
            {"link", "add", host_if_, "type", "veth", "peer", "name", ns_if_, "netns", ns_},
            {"addr", "add", host_addr_ + net30, "dev", host_if_},
            {"link", "set", host_if_, "up"},
            {"-n", ns_, "addr", "add", ns_addr_ + net30, "dev", ns_if_},
            {"-n", ns_, "link", "set", ns_if_, "up"},
            {"-n", ns_, "link", "set", "lo", "up"}};
        for (const auto& step : steps) {
            const auto r = run_ip(step);
            if (step[0] == "netns") created_ = true;
            if (!r.ok()) {
                std::string cmd = "ip";
                for (const auto& a : step) cmd += " " + a;
                return {false, lacks_privilege(r), cmd + ": " + r.describe()};
            }
        }
        return {true, false, {}};
    }

    /// iptables inside the namespace.
    process_result iptables(const std::vector<std::string>& args) const {
        std::vector<std::string> argv = {ip_tool(), "netns", "exec", ns_, iptables_tool()};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, base_env(), tool_timeout);
    }

    void remove() noexcept {
        if (!created_) return;
        created_ = false;
        try {
            run_ip({"link", "del", host_if_});
            run_ip({"netns", "del", ns_});
        } catch (...) {
        }
    }

    const std::string& name() const { return ns_; }
    const std::string& ns_addr() const { return ns_addr_; }

  private:
    static std::string host_link(const std::string& id) {
        return std::string(link_prefix) + id + "h";
    }

    // Namespaces left by test processes that died (never one of a live process).
    static void remove_leftovers() {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(netns_dir, ec)) {
            const std::string file = entry.path().filename().string();
            if (!file.starts_with(ns_prefix)) continue;
            const std::string id = file.substr(ns_prefix.size());
            if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) continue;
            const auto pid = static_cast<pid_t>(std::stol(id));
            if (pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH)) {
                run_ip({"link", "del", host_link(id)});
                run_ip({"netns", "del", file});
            }
        }
    }

    std::string ns_, host_if_, ns_if_, host_addr_, ns_addr_;
    bool created_ = false;
};

TEST(network_faults, blackholed_primary) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespace, iptables)";
    if (!run_ip({"netns", "list"}).ok()) GTEST_SKIP() << "`ip netns` is not available";
    veth_namespace ns;
    const auto made = ns.create();
    if (!made.ok && made.no_privilege) GTEST_SKIP() << "cannot create a namespace: " << made.detail;
    ASSERT_TRUE(made.ok) << made.detail;
    // The firewall must work in the namespace, or this test proves nothing.
    {
        const auto r = ns.iptables({"-L", "INPUT", "-n"});
        ASSERT_TRUE(r.ok()) << "iptables in the namespace: " << r.describe();
    }

    // redis-server (TLS) inside the namespace, on its side of the veth pair.
    temp_dir dir("rs-blackhole");
    const std::string wrapper =
        dir.write_file("redis-in-netns.sh", "#!/bin/sh\nexec " + ip_tool() + " netns exec " +
                                                ns.name() + " /usr/bin/redis-server \"$@\"\n");
    ASSERT_EQ(::chmod(wrapper.c_str(), 0755), 0);
    test_pki::shared().issue_server_cert("blackhole", {"localhost"}, {ns.ns_addr()});
    redis_server_options o = tls_server();
    o.cert_name = "blackhole";
    o.bind_address = ns.ns_addr();
    o.server_binary = wrapper;
    o.requirepass = password;  // not loopback: without a password, protected mode refuses us
    redis_server server(o);
    server.start();

    constexpr int min_idle = 2;
    sidecar_process sc;
    sc.start(tls_env(server.address(), {{"REDIS_SOCKET_TIMEOUT", "1s"},
                                        {"REDIS_SIDECAR_HEALTH_CHECK_INTERVAL", "500ms"},
                                        {"REDIS_CONNECTION_TIMEOUT", "1s"},
                                        {"REDIS_MIN_IDLE_CONNECTIONS", std::to_string(min_idle)},
                                        {"REDIS_PASSWORD", password}}));
    // Stated bound: health check interval + socket timeout + slack for a loaded CI machine.
    constexpr double bound_s = 10.0;
    const std::string connects = "redis_sidecar_upstream_connects_total";

    // Traffic flows: one client doing INCRs back to back.
    std::atomic<bool> dropped{false};
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0};
    std::atomic<double> in_flight_error_s{-1};
    std::string in_flight_error;
    clock::time_point dropped_at{};
    std::thread worker([&] {
        std::optional<resp_client> c;
        const auto give_up = clock::now() + 60s;
        while (!stop && clock::now() < give_up) {
            std::string err;
            try {
                if (!c) c.emplace(resp_client::tcp(sc.port(), 2s));
                const auto r = c->call({"INCR", "n"}, 30s);
                if (r.type == ':') {
                    ++ok;
                    continue;
                }
                err = r.text();
            } catch (const std::exception& e) {
                err = e.what();
            }
            c.reset();
            if (dropped && in_flight_error_s < 0) {
                in_flight_error = err;
                in_flight_error_s = seconds_since(dropped_at);
                return;
            }
            std::this_thread::sleep_for(10ms);
        }
    });
    struct joiner {
        std::thread& t;
        std::atomic<bool>& stop;
        ~joiner() {
            stop = true;
            if (t.joinable()) t.join();
        }
    } join_worker{worker, stop};
    ASSERT_TRUE(eventually([&] { return ok >= 200; }, 20s)) << ok.load();

    // Blackhole.
    dropped_at = clock::now();
    dropped = true;
    for (const char* chain : {"INPUT", "OUTPUT"}) {
        const auto r = ns.iptables({"-A", chain, "-j", "DROP"});
        ASSERT_TRUE(r.ok()) << r.describe();
    }
    const double connects_at_drop = sc.metric(connects);

    // A new command on a new connection, sent right after the drop.
    std::atomic<double> new_error_s{-1};
    std::string new_error;
    std::thread fresh([&] {
        const auto t = clock::now();
        const auto r = one_command(sc.port(), {"GET", "k"}, 30s);
        new_error = r.text();
        new_error_s = r.is_error() ? seconds_since(t) : 1e9;  // 1e9: it succeeded (impossible)
    });
    const bool readyz_failed = eventually([&] { return sc.readyz() != 200; }, 30s, 50ms);
    const double readyz_s = seconds_since(dropped_at);
    fresh.join();
    ASSERT_TRUE(eventually([&] { return in_flight_error_s >= 0; }, 30s));

    // A command after readyz went 503.
    const auto t_after = clock::now();
    const auto after = one_command(sc.port(), {"GET", "k"}, 30s);
    const double after_s = seconds_since(t_after);

    figure("blackhole: client in flight gets an error after", in_flight_error_s * 1000, "ms");
    figure("blackhole: new command (sent at the drop) gets an error after", new_error_s * 1000,
           "ms");
    figure("blackhole: readyz fails after", readyz_s * 1000, "ms");
    figure("blackhole: command once readyz fails gets an error after", after_s * 1000, "ms");
    std::cout << "in flight: " << in_flight_error << "\nnew: " << new_error
              << "\nafter: " << after.text() << std::endl;
    EXPECT_TRUE(readyz_failed);
    EXPECT_LE(in_flight_error_s, bound_s) << in_flight_error;
    EXPECT_LE(new_error_s, bound_s) << new_error;
    EXPECT_LE(readyz_s, bound_s);
    EXPECT_TRUE(after.is_error()) << after.text();
    EXPECT_LE(after_s, bound_s) << after.text();
    EXPECT_EQ(sc.livez(), 200);

    // Stay blackholed a little (connect attempts back off), then heal.
    std::this_thread::sleep_for(3s);
    const double connects_during = sc.metric(connects) - connects_at_drop;
    const auto healed_at = clock::now();
    ASSERT_TRUE(ns.iptables({"-F"}).ok());
    const bool ready_again = eventually([&] { return sc.readyz() == 200; }, 30s, 50ms);
    const double ready_s = seconds_since(healed_at);
    const bool served_again = eventually(
        [&] {
            return one_command(sc.port(), {"INCR", "n"}, 5s).type == ':';
        },
        30s, 50ms);
    const double served_s = seconds_since(healed_at);
    std::this_thread::sleep_for(2s);  // let the pool settle, then count
    const double connects_recovery = sc.metric(connects) - connects_at_drop - connects_during;

    figure("blackhole: upstream connects during 3 s of blackhole", connects_during, "");
    figure("blackhole: readyz 200 again after heal", ready_s * 1000, "ms");
    figure("blackhole: commands succeed again after heal", served_s * 1000, "ms");
    figure("blackhole: upstream connects during recovery (+2 s)", connects_recovery, "");
    EXPECT_TRUE(ready_again);
    EXPECT_TRUE(served_again);
    EXPECT_LE(ready_s, 2 * bound_s);
    EXPECT_LE(connects_recovery, 2 * min_idle + 10);
    EXPECT_TRUE(sc.process().running());
}

}  // namespace
}  // namespace redis_sidecar::faults_test
