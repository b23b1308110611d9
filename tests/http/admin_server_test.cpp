#include "redis_sidecar/http/admin_server.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../metrics/text_format_parser.hpp"
#include "client.hpp"
#include "support/eventually.hpp"

namespace redis_sidecar::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace test;
using testing::eventually;

// What the fake app answers; the server reads it on its own thread.
struct app_facts {
    std::atomic<bool> live{true};
    std::atomic<bool> started{true};
    std::atomic<bool> ready{true};
    std::atomic<bool> status_throws{false};
    std::atomic<int> quits{0};
};

// A server on 127.0.0.1:0 whose io_context runs on a test thread.
class admin_server_test : public ::testing::Test {
  protected:
    static server_limits test_limits() {
        server_limits l;
        l.timeout = 2s;  // short, so a broken test fails fast; never reached by a passing one
        return l;
    }

    void start_server(server_limits limits = test_limits()) {
        sources src;
        src.live = [this] { return facts_.live.load(); };
        src.started = [this] { return facts_.started.load(); };
        src.ready = [this] { return facts_.ready.load(); };
        src.not_ready_reason = [] { return std::string("draining"); };
        src.status = [this] {
            if (facts_.status_throws) throw std::runtime_error("boom");
            return nlohmann::json{{"status", "ok"}, {"redis_available", true}};
        };
        src.configz = [] { return nlohmann::json{{"http", {{"addr", "127.0.0.1:0"}}}}; };
        // The app's side of /metrics: three families of its own besides the probe families.
        static constexpr metrics::family build_info{"redis_sidecar_build_info",
                                                    metrics::metric_type::gauge,
                                                    "Always 1; the version as a label.",
                                                    {"version"}};
        static constexpr metrics::family upstream_up{"redis_sidecar_upstream_up",
                                                     metrics::metric_type::gauge, "1 when up."};
        static constexpr metrics::family handshake{
            "redis_sidecar_upstream_handshake_duration_seconds", metrics::metric_type::histogram,
            "Time to open an upstream connection."};
        static constexpr std::array<const metrics::family*, 5> families = {
            &build_info, &upstream_up, &handshake, &probe_status, &probe_requests};
        src.metric_families = families;
        src.metrics = [](metrics::registry& r) {
            r.set(build_info, {{"version", "1.2.3"}}, 1);
            r.set(upstream_up, 1);
            static constexpr std::array<double, 2> bounds = {0.01, 0.1};
            static constexpr std::array<std::uint64_t, 3> counts = {4, 1, 1};
            r.set_histogram(handshake, bounds, counts, 1.25);
        };
        src.quit = [this] { ++facts_.quits; };
        server_ = std::make_unique<admin_server>(ioc_.get_executor(), "127.0.0.1:0", src, limits);
        server_->start();
        port_ = server_->port();
        ASSERT_NE(port_, 0);
        thread_ = std::thread([this] {
            ioc_.run();
            loop_done_ = true;
        });
    }

    void TearDown() override {
        if (!server_) return;
        server_->stop();
        if (!thread_.joinable()) return;
        guard_.reset();
        // Every session ends once stop() closed it: the loop runs out of work by itself.
        EXPECT_TRUE(eventually([&] { return loop_done_.load(); }, 3s)) << "sessions outlived stop";
        ioc_.stop();
        if (thread_.joinable()) thread_.join();
    }

    asio::io_context ioc_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{
        ioc_.get_executor()};
    std::unique_ptr<admin_server> server_;
    std::thread thread_;
    std::atomic<bool> loop_done_{false};
    std::uint16_t port_ = 0;
    app_facts facts_;
};

// --- routes as a table -------------------------------------------------------------------------

struct route_case {
    const char* name;
    const char* method;
    const char* target;
    bool probes_ok;  // live/started/ready
    unsigned status;
    const char* body;   // expected exactly; nullptr: not checked
    const char* type;   // expected content type prefix; nullptr: not checked
    const char* allow;  // expected Allow header ("" when none)
};

class route_test : public admin_server_test, public ::testing::WithParamInterface<route_case> {};

TEST_P(route_test, answers) {
    const auto& c = GetParam();
    facts_.live = facts_.started = facts_.ready = c.probes_ok;
    start_server();
    const auto r = fetch(port_, c.method, c.target);
    ASSERT_TRUE(r) << c.name;
    EXPECT_EQ(r->status, c.status) << c.name;
    if (c.body) {
        EXPECT_EQ(r->body, c.body) << c.name;
    }
    if (c.type) {
        EXPECT_TRUE(r->content_type.starts_with(c.type)) << c.name << ": " << r->content_type;
    }
    EXPECT_EQ(r->allow, c.allow) << c.name;
    EXPECT_TRUE(r->keep_alive) << c.name;
    EXPECT_EQ(facts_.quits.load(), 0) << c.name;
}

constexpr const char* text = "text/plain; charset=utf-8";
constexpr const char* json = "application/json";

INSTANTIATE_TEST_SUITE_P(
    table, route_test,
    ::testing::Values(
        route_case{"livez ok", "GET", "/livez", true, 200, "ok\n", text, ""},
        route_case{"livez stalled", "GET", "/livez", false, 503, "not live: event loop stalled\n",
                   text, ""},
        route_case{"startupz ok", "GET", "/startupz", true, 200, "started\n", text, ""},
        route_case{"startupz not", "GET", "/startupz", false, 503, "not started\n", text, ""},
        route_case{"readyz ok", "GET", "/readyz", true, 200, "ready\n", text, ""},
        route_case{"readyz not", "GET", "/readyz", false, 503, "not ready: draining\n", text, ""},
        route_case{"readyz query ignored", "GET", "/readyz?verbose=1", true, 200, "ready\n", text,
                   ""},
        route_case{"status", "GET", "/status", true, 200, nullptr, json, ""},
        route_case{"configz", "GET", "/configz", true, 200, nullptr, json, ""},
        route_case{"metrics", "GET", "/metrics", true, 200, nullptr,
                   "text/plain; version=0.0.4; charset=utf-8", ""},
        route_case{"unknown path", "GET", "/nope", true, 404, "not found\n", text, ""},
        route_case{"root", "GET", "/", true, 404, nullptr, nullptr, ""},
        route_case{"trailing slash", "GET", "/livez/", true, 404, nullptr, nullptr, ""},
        route_case{"POST livez", "POST", "/livez", true, 405, nullptr, text, "GET, HEAD"},
        route_case{"DELETE metrics", "DELETE", "/metrics", true, 405, nullptr, nullptr,
                   "GET, HEAD"},
        route_case{"PUT readyz", "PUT", "/readyz", true, 405, nullptr, nullptr, "GET, HEAD"},
        route_case{"GET quit", "GET", "/quitquitquit", true, 405, nullptr, nullptr, "POST"},
        route_case{"HEAD quit", "HEAD", "/quitquitquit", true, 405, "", nullptr, "POST"},
        route_case{"PUT quit", "PUT", "/quitquitquit", true, 405, nullptr, nullptr, "POST"}),
    [](const auto& info) {
        std::string n = info.param.name;
        for (auto& ch : n) {
            if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
        }
        return n;
    });

TEST_F(admin_server_test, head_is_get_without_a_body_and_keeps_the_connection_usable) {
    start_server();
    auto fd = connect_to(port_);
    ASSERT_TRUE(fd);
    // Pipelined: if HEAD carried a body, the second response would not parse.
    ASSERT_TRUE(
        send_all(fd.get(), request_text("HEAD", "/readyz") + request_text("GET", "/livez")));
    std::string rest;
    const auto head = read_reply(fd.get(), true, io_deadline, &rest);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200u);
    EXPECT_EQ(head->body, "");
    EXPECT_EQ(head->content_length, std::optional<std::size_t>(6));  // "ready\n"
    const auto get = read_reply(fd.get(), false, io_deadline, &rest);
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 200u);
    EXPECT_EQ(get->body, "ok\n");
}

TEST_F(admin_server_test, head_of_an_error_has_no_body_either) {
    start_server();
    auto fd = connect_to(port_);
    ASSERT_TRUE(fd);
    ASSERT_TRUE(send_all(fd.get(), request_text("HEAD", "/quitquitquit") +
                                       request_text("HEAD", "/nope") +
                                       request_text("GET", "/startupz")));
    std::string rest;
    const auto quit = read_reply(fd.get(), true, io_deadline, &rest);
    ASSERT_TRUE(quit);
    EXPECT_EQ(quit->status, 405u);
    const auto missing = read_reply(fd.get(), true, io_deadline, &rest);
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404u);
    EXPECT_EQ(missing->content_length, std::optional<std::size_t>(10));  // "not found\n"
    const auto get = read_reply(fd.get(), false, io_deadline, &rest);
    ASSERT_TRUE(get);
    EXPECT_EQ(get->body, "started\n");
}

TEST_F(admin_server_test, json_routes_carry_what_the_app_gives) {
    start_server();
    const auto status = fetch(port_, "GET", "/status");
    ASSERT_TRUE(status);
    const auto j = nlohmann::json::parse(status->body);
    EXPECT_EQ(j.at("status"), "ok");
    EXPECT_EQ(j.at("redis_available"), true);
    const auto configz = fetch(port_, "GET", "/configz");
    ASSERT_TRUE(configz);
    EXPECT_EQ(nlohmann::json::parse(configz->body).at("http").at("addr"), "127.0.0.1:0");
}

TEST_F(admin_server_test, a_throwing_source_is_a_500_and_the_server_carries_on) {
    start_server();
    facts_.status_throws = true;
    const auto r = fetch(port_, "GET", "/status");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500u);
    EXPECT_EQ(r->body, "internal error\n");
    const auto ok = fetch(port_, "GET", "/livez");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200u);
}

TEST_F(admin_server_test, metrics_parse_strictly_and_count_probe_requests) {
    facts_.ready = false;
    start_server();
    ASSERT_EQ(fetch(port_, "GET", "/livez")->status, 200u);
    ASSERT_EQ(fetch(port_, "HEAD", "/livez")->status, 200u);
    ASSERT_EQ(fetch(port_, "GET", "/readyz")->status, 503u);
    const auto r = fetch(port_, "GET", "/metrics");
    ASSERT_TRUE(r);
    const auto parsed = metrics::text_format::parse(r->body);
    ASSERT_TRUE(parsed.doc) << parsed.error << "\n" << r->body;
    EXPECT_NE(r->body.find("redis_sidecar_build_info{version=\"1.2.3\"} 1\n"), std::string::npos);
    EXPECT_NE(r->body.find("redis_sidecar_probe_requests_total{probe=\"livez\",code=\"200\"} 2\n"),
              std::string::npos)
        << r->body;
    EXPECT_NE(r->body.find("redis_sidecar_probe_requests_total{probe=\"readyz\",code=\"503\"} 1\n"),
              std::string::npos);
    EXPECT_NE(r->body.find("redis_sidecar_probe_status{probe=\"readyz\"} 0\n"), std::string::npos);
    EXPECT_NE(r->body.find("redis_sidecar_probe_status{probe=\"livez\"} 1\n"), std::string::npos);
    EXPECT_NE(r->body.find("_bucket{le=\"+Inf\"} 6\n"), std::string::npos);
    const auto counts = server_->probe_requests();
    EXPECT_EQ(counts.livez_ok, 2u);
    EXPECT_EQ(counts.readyz_fail, 1u);
    EXPECT_EQ(counts.startupz_ok + counts.startupz_fail, 0u);
}

// --- quitquitquit ------------------------------------------------------------------------------

TEST_F(admin_server_test, quitquitquit_refuses_get_and_post_calls_quit_once) {
    start_server();
    const auto get = fetch(port_, "GET", "/quitquitquit");
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 405u);
    EXPECT_EQ(get->allow, "POST");
    EXPECT_EQ(facts_.quits.load(), 0);

    const auto post = fetch(port_, "POST", "/quitquitquit");
    ASSERT_TRUE(post);
    EXPECT_EQ(post->status, 200u);
    EXPECT_TRUE(eventually([&] { return facts_.quits.load() == 1; }, 2s));
    EXPECT_EQ(facts_.quits.load(), 1);
}

TEST_F(admin_server_test, quit_with_a_small_body_is_fine_and_a_large_one_is_413) {
    start_server();
    const auto small = fetch(port_, "POST", "/quitquitquit", std::string(100, 'x'));
    ASSERT_TRUE(small);
    EXPECT_EQ(small->status, 200u);

    auto fd = connect_to(port_);
    ASSERT_TRUE(fd);
    const std::string body(server_limits::default_body_limit + 1, 'x');
    ASSERT_TRUE(send_all(fd.get(), request_text("POST", "/quitquitquit", body)));
    const auto big = read_reply(fd.get());
    ASSERT_TRUE(big);
    EXPECT_EQ(big->status, 413u);
    EXPECT_FALSE(big->keep_alive);
    EXPECT_TRUE(closed_within(fd.get(), 2s));
    EXPECT_TRUE(eventually([&] { return facts_.quits.load() == 1; }, 2s));
}

// --- robustness --------------------------------------------------------------------------------

TEST_F(admin_server_test, oversized_header_is_431_and_closed) {
    start_server();
    auto fd = connect_to(port_);
    ASSERT_TRUE(fd);
    const std::string req = "GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " +
                            std::string(server_limits::default_header_limit, 'a') + "\r\n\r\n";
    ASSERT_TRUE(send_all(fd.get(), req));
    const auto r = read_reply(fd.get());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431u);
    EXPECT_TRUE(closed_within(fd.get(), 2s));
    EXPECT_EQ(fetch(port_, "GET", "/livez")->status, 200u);
}

TEST_F(admin_server_test, header_just_under_the_limit_is_served) {
    start_server();
    const std::string req = "GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " +
                            std::string(server_limits::default_header_limit - 100, 'a') +
                            "\r\n\r\n";
    auto fd = connect_to(port_);
    ASSERT_TRUE(send_all(fd.get(), req));
    const auto r = read_reply(fd.get());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
}

struct malformed_case {
    const char* name;
    const char* bytes;
};

class malformed_test : public admin_server_test,
                       public ::testing::WithParamInterface<malformed_case> {};

TEST_P(malformed_test, is_400_and_closed) {
    start_server();
    auto fd = connect_to(port_);
    ASSERT_TRUE(fd);
    ASSERT_TRUE(send_all(fd.get(), GetParam().bytes));
    const auto r = read_reply(fd.get());
    ASSERT_TRUE(r) << GetParam().name;
    EXPECT_EQ(r->status, 400u) << GetParam().name;
    EXPECT_TRUE(closed_within(fd.get(), 2s));
}

INSTANTIATE_TEST_SUITE_P(
    table, malformed_test,
    ::testing::Values(malformed_case{"garbage_line", "GARBAGE\r\n\r\n"},
                      malformed_case{"binary", "\x01\x02\x03\xff\r\n\r\n"},
                      malformed_case{"bad_version", "GET /livez HTTP/9\r\n\r\n"},
                      malformed_case{"space_in_method", "G ET /livez HTTP/1.1\r\n\r\n"},
                      malformed_case{"bad_header", "GET /livez HTTP/1.1\r\nNo colon\r\n\r\n"},
                      malformed_case{"bad_content_length",
                                     "POST /quitquitquit HTTP/1.1\r\nContent-Length: x\r\n\r\n"},
                      malformed_case{"relative_target", "GET livez HTTP/1.1\r\n\r\n"},
                      malformed_case{"redis_inline", "PING\r\n"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(admin_server_test, slow_client_is_cut_off_by_the_timeout) {
    server_limits limits = test_limits();
    limits.timeout = 300ms;
    start_server(limits);
    auto fd = connect_to(port_);
    ASSERT_TRUE(fd);
    // One byte every 100 ms of a request that would take 4 s to send.
    const std::string req = request_text("GET", "/livez") + std::string(20, ' ');
    const auto begin = clock::now();
    bool cut = false;
    for (std::size_t i = 0; i < req.size() && !cut; ++i) {
        if (!send_all(fd.get(), req.substr(i, 1))) {
            cut = true;
            break;
        }
        cut = closed_within(fd.get(), 100ms);  // paces the client and watches for the close
    }
    const auto elapsed = clock::now() - begin;
    EXPECT_TRUE(cut);
    EXPECT_LT(elapsed, 1500ms)
        << "disconnected only after "
        << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
    EXPECT_GE(elapsed, 250ms);
    EXPECT_EQ(fetch(port_, "GET", "/livez")->status, 200u);
}

TEST_F(admin_server_test, idle_connection_is_closed_after_the_timeout) {
    server_limits limits = test_limits();
    limits.timeout = 300ms;
    start_server(limits);
    auto fd = connect_to(port_);
    ASSERT_TRUE(fd);
    const auto begin = clock::now();
    EXPECT_TRUE(closed_within(fd.get(), 2s));
    EXPECT_GE(clock::now() - begin, 250ms);
}

TEST_F(admin_server_test, hundred_garbage_connections_do_not_stop_a_normal_request) {
    server_limits limits = test_limits();
    limits.timeout = 500ms;
    start_server(limits);
    std::mt19937 rng(12345);  // fixed seed: the same garbage every run
    std::vector<unique_fd> garbage;
    for (int i = 0; i < 100; ++i) {
        auto fd = connect_to(port_);
        ASSERT_TRUE(fd);
        std::string bytes(64 + rng() % 512, '\0');
        for (auto& b : bytes) b = static_cast<char>(rng());
        send_all(fd.get(), bytes);  // may fail: over the cap the server already closed it
        garbage.push_back(std::move(fd));
    }
    // Served at once or as soon as the garbage sessions are gone (bounded by the timeout).
    std::optional<reply> r;
    EXPECT_TRUE(eventually(
        [&] {
            r = fetch(port_, "GET", "/livez");
            return r && r->status == 200;
        },
        3s));
    for (auto& fd : garbage) EXPECT_TRUE(closed_within(fd.get(), 2s));
}

TEST_F(admin_server_test, connections_over_the_cap_are_closed_at_once) {
    server_limits limits = test_limits();
    limits.max_connections = 4;
    start_server(limits);
    std::vector<unique_fd> held;
    for (std::size_t i = 0; i < limits.max_connections; ++i) {
        held.push_back(connect_to(port_));
        ASSERT_TRUE(held.back());
        // A request on each proves the session is running (so it counts toward the cap).
        ASSERT_TRUE(send_all(held.back().get(), request_text("GET", "/livez")));
        ASSERT_TRUE(read_reply(held.back().get()));
    }
    auto extra = connect_to(port_);
    ASSERT_TRUE(extra);
    EXPECT_TRUE(closed_within(extra.get(), 1s)) << "well before the 2 s timeout";
    held.pop_back();  // one slot frees up
    EXPECT_TRUE(eventually(
        [&] {
            const auto r = fetch(port_, "GET", "/livez");
            return r && r->status == 200;
        },
        2s));
}

// --- keep-alive --------------------------------------------------------------------------------

TEST_F(admin_server_test, keep_alive_serves_two_requests_on_one_connection) {
    start_server();
    auto fd = connect_to(port_);
    ASSERT_TRUE(fd);
    ASSERT_TRUE(send_all(fd.get(), request_text("GET", "/livez")));
    const auto first = read_reply(fd.get());
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 200u);
    EXPECT_TRUE(first->keep_alive);
    ASSERT_TRUE(send_all(fd.get(), request_text("GET", "/readyz")));
    const auto second = read_reply(fd.get());
    ASSERT_TRUE(second);
    EXPECT_EQ(second->body, "ready\n");
}

TEST_F(admin_server_test, connection_close_and_http_1_0_close_after_the_response) {
    start_server();
    for (const std::string& req :
         {request_text("GET", "/livez", "", true), std::string("GET /livez HTTP/1.0\r\n\r\n")}) {
        auto fd = connect_to(port_);
        ASSERT_TRUE(fd);
        ASSERT_TRUE(send_all(fd.get(), req));
        const auto r = read_reply(fd.get());
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200u);
        EXPECT_FALSE(r->keep_alive);
        EXPECT_TRUE(closed_within(fd.get(), 1s));
    }
}

// --- start and stop ----------------------------------------------------------------------------

TEST_F(admin_server_test, stop_closes_open_connections_and_the_listener) {
    start_server();
    auto fd = connect_to(port_);
    ASSERT_TRUE(fd);
    ASSERT_TRUE(send_all(fd.get(), request_text("GET", "/livez")));
    ASSERT_TRUE(read_reply(fd.get()));
    server_->stop();
    EXPECT_TRUE(closed_within(fd.get(), 1s));
    EXPECT_TRUE(eventually([&] { return !testing::connect_tcp("127.0.0.1", port_, 200ms); }, 2s));
}

TEST(admin_server_start, bind_failure_names_the_variable) {
    asio::io_context ioc;
    admin_server first(ioc.get_executor(), "127.0.0.1:0", {});
    first.start();
    admin_server second(ioc.get_executor(), "127.0.0.1:" + std::to_string(first.port()), {});
    try {
        second.start();
        FAIL() << "bound a port in use";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("REDIS_SIDECAR_HTTP_ADDR=127.0.0.1:"), std::string::npos) << what;
        EXPECT_NE(what.find("in use"), std::string::npos) << what;
    }
    first.stop();
    second.stop();
    ioc.run_for(1s);
}

TEST(admin_server_start, bad_address_names_the_variable) {
    asio::io_context ioc;
    for (const char* addr : {"no-port", "redis://127.0.0.1:9090", "127.0.0.1:99999", "[::1",
                             "::1:80", "127.0.0.1:", "127.0.0.1:8o", "300.1.1.1:80"}) {
        admin_server s(ioc.get_executor(), addr, {});
        try {
            s.start();
            ADD_FAILURE() << "accepted " << addr;
        } catch (const std::runtime_error& e) {
            EXPECT_TRUE(std::string(e.what()).starts_with("REDIS_SIDECAR_HTTP_ADDR=")) << e.what();
        }
    }
    ioc.run_for(1s);
}

TEST(admin_server_start, empty_sources_fail_closed) {
    asio::io_context ioc;
    admin_server s(ioc.get_executor(), "127.0.0.1:0", {});
    s.start();
    std::thread t([&] { ioc.run_for(5s); });
    EXPECT_EQ(fetch(s.port(), "GET", "/livez")->status, 503u);
    EXPECT_EQ(fetch(s.port(), "GET", "/readyz")->body, "not ready\n");
    EXPECT_EQ(fetch(s.port(), "GET", "/status")->body, "{}\n");
    EXPECT_EQ(fetch(s.port(), "POST", "/quitquitquit")->status, 501u);
    const auto m = fetch(s.port(), "GET", "/metrics");
    ASSERT_TRUE(m);
    EXPECT_TRUE(metrics::text_format::parse(m->body).doc);
    s.stop();
    ioc.stop();
    t.join();
}

}  // namespace
}  // namespace redis_sidecar::http
