// The access rule of the admin routes, without a socket: which peer address may be served which
// path, and what route() answers a peer that may not.

#include "routes.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <ostream>
#include <string>

namespace redis_sidecar::http {
namespace {

namespace asio = boost::asio;
namespace beast_http = boost::beast::http;
using address = asio::ip::address;

address ip(const char* text) {
    return asio::ip::make_address(text);
}

// --- is_loopback -------------------------------------------------------------------------------

struct address_case {
    const char* address;
    bool loopback;
};

void PrintTo(const address_case& c, std::ostream* os) {
    *os << c.address;
}

class loopback_test : public ::testing::TestWithParam<address_case> {};

TEST_P(loopback_test, classifies) {
    EXPECT_EQ(is_loopback(ip(GetParam().address)), GetParam().loopback) << GetParam().address;
}

INSTANTIATE_TEST_SUITE_P(
    table, loopback_test,
    ::testing::Values(
        // IPv4 loopback is all of 127.0.0.0/8, not only 127.0.0.1.
        address_case{"127.0.0.1", true}, address_case{"127.0.0.0", true},
        address_case{"127.1.2.3", true}, address_case{"127.255.255.255", true},
        address_case{"126.255.255.255", false}, address_case{"128.0.0.1", false},
        address_case{"10.0.0.1", false}, address_case{"10.127.0.1", false},
        address_case{"192.168.1.10", false}, address_case{"172.16.0.1", false},
        address_case{"169.254.0.1", false}, address_case{"0.0.0.0", false},
        address_case{"255.255.255.255", false},
        // IPv6: only ::1; an IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d.
        address_case{"::1", true}, address_case{"::ffff:127.0.0.1", true},
        address_case{"::ffff:127.9.8.7", true}, address_case{"::ffff:10.0.0.1", false},
        address_case{"::ffff:192.168.0.1", false}, address_case{"::ffff:128.0.0.1", false},
        address_case{"::", false}, address_case{"::2", false}, address_case{"fe80::1", false},
        address_case{"fd00::1", false}, address_case{"2001:db8::1", false},
        // The deprecated IPv4-compatible form is not a mapped address: no kernel hands it out
        // as a peer of loopback.
        address_case{"::127.0.0.1", false}, address_case{"::1:0:0:1", false}),
    [](const auto& info) {
        std::string n = info.param.address;
        for (auto& ch : n) {
            if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
        }
        return (info.param.loopback ? "loopback_" : "other_") + n;
    });

// --- refusal: path × peer ----------------------------------------------------------------------

TEST(refusal, loopback_only_routes_refuse_every_other_peer) {
    for (const char* peer : {"10.0.0.1", "192.168.1.10", "::ffff:10.0.0.1", "fe80::1",
                             "2001:db8::1", "0.0.0.0", "::"}) {
        EXPECT_EQ(refusal("/configz", ip(peer)), loopback_route::configz) << peer;
        EXPECT_EQ(refusal("/quitquitquit", ip(peer)), loopback_route::quitquitquit) << peer;
    }
}

TEST(refusal, loopback_peers_may_ask_everything) {
    for (const char* peer : {"127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"}) {
        for (const char* path : {"/configz", "/quitquitquit", "/livez", "/readyz", "/startupz",
                                 "/metrics", "/status", "/nope"}) {
            EXPECT_EQ(refusal(path, ip(peer)), std::nullopt) << peer << " " << path;
        }
    }
}

TEST(refusal, probes_metrics_and_status_are_open_to_anyone) {
    for (const char* peer : {"10.0.0.1", "192.168.1.10", "::ffff:10.0.0.1", "fe80::1"}) {
        for (const char* path : {"/livez", "/readyz", "/startupz", "/metrics", "/status"}) {
            EXPECT_EQ(refusal(path, ip(peer)), std::nullopt) << peer << " " << path;
        }
    }
    EXPECT_EQ(refusal("/livez", std::nullopt), std::nullopt);
}

TEST(refusal, an_unknown_peer_is_not_loopback) {
    EXPECT_EQ(refusal("/configz", std::nullopt), loopback_route::configz);
    EXPECT_EQ(refusal("/quitquitquit", std::nullopt), loopback_route::quitquitquit);
}

TEST(refusal, only_the_exact_paths_are_guarded_the_others_are_404_anyway) {
    // route() takes the query off first; these never reach a loopback-only route either.
    for (const char* path : {"/configz/", "/Configz", "//configz", "/quitquitquit/", "/"}) {
        EXPECT_EQ(refusal(path, ip("10.0.0.1")), std::nullopt) << path;
    }
}

// --- route(): the response a refused peer gets -------------------------------------------------

struct counted_sources {
    sources src;
    int configz_calls = 0;
    int status_calls = 0;
};

class route_access_test : public ::testing::Test {
  protected:
    void SetUp() override {
        s_.src.live = [] { return true; };
        s_.src.started = [] { return true; };
        s_.src.ready = [] { return true; };
        s_.src.status = [this] {
            ++s_.status_calls;
            return nlohmann::json{{"status", "ok"}};
        };
        s_.src.configz = [this] {
            ++s_.configz_calls;
            return nlohmann::json{{"secret", "<redacted>"}};
        };
        s_.src.quit = [] {};
    }

    routed ask(beast_http::verb method, const char* target, std::optional<address> peer) {
        request req{method, target, 11};
        req.set(beast_http::field::host, "sidecar");
        if (method == beast_http::verb::post) req.content_length(0);
        return route(req, peer, s_.src, probe_counts{}, nullptr);
    }

    counted_sources s_;
};

TEST_F(route_access_test, configz_from_another_host_is_403_with_the_reason) {
    const auto r = ask(beast_http::verb::get, "/configz", ip("10.1.2.3"));
    EXPECT_EQ(r.res.result_int(), 403u);
    EXPECT_EQ(r.res.body(), "redis-sidecar: /configz answers only loopback (127.0.0.0/8, ::1)\n");
    EXPECT_EQ(r.res[beast_http::field::content_type], "text/plain; charset=utf-8");
    EXPECT_EQ(r.refused, loopback_route::configz);
    EXPECT_FALSE(r.quit_after_write);
    EXPECT_TRUE(r.res.keep_alive());
    EXPECT_EQ(s_.configz_calls, 0) << "the configuration was read for a refused peer";
}

TEST_F(route_access_test, quit_from_another_host_is_403_and_does_not_quit) {
    const auto r = ask(beast_http::verb::post, "/quitquitquit", ip("::ffff:10.0.0.1"));
    EXPECT_EQ(r.res.result_int(), 403u);
    EXPECT_EQ(r.res.body(),
              "redis-sidecar: /quitquitquit answers only loopback (127.0.0.0/8, ::1)\n");
    EXPECT_EQ(r.refused, loopback_route::quitquitquit);
    EXPECT_FALSE(r.quit_after_write);
}

TEST_F(route_access_test, a_refused_peer_gets_403_for_every_method_not_405) {
    using beast_http::verb;
    for (const verb m : {verb::get, verb::head, verb::post, verb::put, verb::delete_}) {
        for (const char* target : {"/configz", "/quitquitquit", "/configz?x=1"}) {
            const auto r = ask(m, target, ip("fe80::1"));
            EXPECT_EQ(r.res.result_int(), 403u) << beast_http::to_string(m) << " " << target;
            EXPECT_TRUE(r.refused.has_value());
            EXPECT_EQ(r.res[beast_http::field::allow], "");
            EXPECT_FALSE(r.quit_after_write);
        }
    }
    const auto head = ask(verb::head, "/configz", ip("192.168.0.7"));
    EXPECT_EQ(head.res.body(), "");
    EXPECT_EQ(head.res[beast_http::field::content_length],
              std::to_string(std::string("redis-sidecar: /configz answers only loopback "
                                         "(127.0.0.0/8, ::1)\n")
                                 .size()));
    EXPECT_EQ(s_.configz_calls, 0);
}

TEST_F(route_access_test, loopback_peers_get_the_routes) {
    for (const char* peer : {"127.0.0.1", "127.10.0.1", "::1", "::ffff:127.0.0.1"}) {
        const auto configz = ask(beast_http::verb::get, "/configz", ip(peer));
        EXPECT_EQ(configz.res.result_int(), 200u) << peer;
        EXPECT_FALSE(configz.refused.has_value());
        const auto quit = ask(beast_http::verb::post, "/quitquitquit", ip(peer));
        EXPECT_EQ(quit.res.result_int(), 200u) << peer;
        EXPECT_TRUE(quit.quit_after_write);
        EXPECT_FALSE(quit.refused.has_value());
        // Wrong methods still get 405 on loopback.
        EXPECT_EQ(ask(beast_http::verb::get, "/quitquitquit", ip(peer)).res.result_int(), 405u);
    }
    EXPECT_EQ(s_.configz_calls, 4);
}

TEST_F(route_access_test, other_routes_answer_anyone) {
    for (const char* peer : {"10.0.0.1", "192.168.1.10", "::ffff:10.0.0.1", "fe80::1"}) {
        for (const char* target : {"/livez", "/readyz", "/startupz", "/metrics", "/status"}) {
            const auto r = ask(beast_http::verb::get, target, ip(peer));
            EXPECT_EQ(r.res.result_int(), 200u) << peer << " " << target;
            EXPECT_FALSE(r.refused.has_value());
        }
        EXPECT_EQ(ask(beast_http::verb::get, "/nope", ip(peer)).res.result_int(), 404u);
        EXPECT_EQ(ask(beast_http::verb::post, "/livez", ip(peer)).res.result_int(), 405u);
    }
    EXPECT_EQ(s_.status_calls, 4);
    EXPECT_EQ(ask(beast_http::verb::get, "/livez", std::nullopt).res.result_int(), 200u);
}

TEST_F(route_access_test, an_unknown_peer_is_refused) {
    const auto r = ask(beast_http::verb::get, "/configz", std::nullopt);
    EXPECT_EQ(r.res.result_int(), 403u);
    EXPECT_EQ(r.refused, loopback_route::configz);
}

}  // namespace
}  // namespace redis_sidecar::http
