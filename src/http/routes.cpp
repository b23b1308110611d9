#include "routes.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <exception>
#include <string>
#include <utility>

namespace redis_sidecar::http {

namespace beast_http = boost::beast::http;
using beast_http::field;
using beast_http::status;
using beast_http::verb;

namespace {

boost::beast::string_view bsv(std::string_view s) {
    return {s.data(), s.size()};
}

constexpr std::string_view server_name = "redis-sidecar";
constexpr std::string_view text_plain = "text/plain; charset=utf-8";
constexpr std::string_view application_json = "application/json";
constexpr std::string_view read_methods = "GET, HEAD";
constexpr std::string_view quit_methods = "POST";
constexpr int json_indent = 2;

response make_response(status code, unsigned version, bool keep_alive, std::string_view type,
                       std::string body) {
    response res{code, version};
    res.set(field::server, bsv(server_name));
    res.set(field::content_type, bsv(type));
    res.set(field::cache_control, "no-store");
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

std::string to_text(const nlohmann::json& j) {
    // replace: a stray invalid UTF-8 byte in some value must not turn /status into a 500.
    return j.dump(json_indent, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

bool ask(const std::function<bool()>& f) {
    return f ? f() : false;
}

void fill_probe_metrics(metrics::registry& r, const sources& src, const probe_counts& c) {
    r.set(probe_status, {{"probe", "livez"}}, ask(src.live) ? 1 : 0);
    r.set(probe_status, {{"probe", "startupz"}}, ask(src.started) ? 1 : 0);
    r.set(probe_status, {{"probe", "readyz"}}, ask(src.ready) ? 1 : 0);
    const struct {
        const char* probe;
        std::uint64_t ok, fail;
    } rows[] = {{"livez", c.livez_ok, c.livez_fail},
                {"startupz", c.startupz_ok, c.startupz_fail},
                {"readyz", c.readyz_ok, c.readyz_fail}};
    for (const auto& row : rows) {
        r.set(probe_requests, {{"probe", row.probe}, {"code", "200"}}, static_cast<double>(row.ok));
        r.set(probe_requests, {{"probe", row.probe}, {"code", "503"}},
              static_cast<double>(row.fail));
    }
}

// What a read-only route answers to GET.
struct page {
    status code = status::ok;
    std::string_view type = text_plain;
    std::string body;
};

page read_route(std::string_view path, const sources& src, const probe_counts& counts,
                const probe_counter& count_probe) {
    const auto probe_page = [&](probe p, bool ok, std::string ok_text, std::string fail_text) {
        if (count_probe) count_probe(p, ok);
        return page{ok ? status::ok : status::service_unavailable, text_plain,
                    ok ? std::move(ok_text) : std::move(fail_text)};
    };
    if (path == "/livez") {
        return probe_page(probe::livez, ask(src.live), "ok\n", "not live: event loop stalled\n");
    }
    if (path == "/startupz") {
        return probe_page(probe::startupz, ask(src.started), "started\n", "not started\n");
    }
    if (path == "/readyz") {
        const bool ok = ask(src.ready);
        std::string reason = ok || !src.not_ready_reason ? std::string() : src.not_ready_reason();
        return probe_page(probe::readyz, ok, "ready\n",
                          reason.empty() ? "not ready\n" : "not ready: " + reason + "\n");
    }
    if (path == "/status") {
        return {status::ok, application_json,
                to_text(src.status ? src.status() : nlohmann::json::object())};
    }
    if (path == "/configz") {
        return {status::ok, application_json,
                to_text(src.configz ? src.configz() : nlohmann::json::object())};
    }
    if (path == "/metrics") {
        metrics::registry r(src.metric_families.empty()
                                ? std::span<const metrics::family* const>(probe_families)
                                : src.metric_families);
        if (src.metrics) src.metrics(r);
        fill_probe_metrics(r, src, counts);
        return {status::ok, metrics::registry::content_type, r.render()};
    }
    return {status::not_found, text_plain, "not found\n"};
}

bool is_read_path(std::string_view path) {
    return path == "/livez" || path == "/startupz" || path == "/readyz" || path == "/status" ||
           path == "/configz" || path == "/metrics";
}

routed route_unguarded(const request& req, const std::optional<boost::asio::ip::address>& peer,
                       const sources& src, const probe_counts& counts,
                       const probe_counter& count_probe) {
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    std::string_view path(req.target().data(), req.target().size());
    if (const auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
    if (path.empty() || path.front() != '/') {
        return {make_response(status::bad_request, version, false, text_plain, "bad target\n")};
    }

    // Before the method checks: a refused peer learns nothing of the route.
    if (const auto refused = refusal(path, peer)) {
        return {make_response(status::forbidden, version, keep_alive, text_plain,
                              std::string(server_name) + ": " + std::string(path_of(*refused)) +
                                  " answers only loopback (127.0.0.0/8, ::1)\n"),
                false, refused};
    }

    if (path == "/quitquitquit") {
        if (req.method() != verb::post) {
            auto res = make_response(status::method_not_allowed, version, keep_alive, text_plain,
                                     "method not allowed: use POST\n");
            res.set(field::allow, bsv(quit_methods));
            return {std::move(res)};
        }
        if (!src.quit) {
            return {make_response(status::not_implemented, version, keep_alive, text_plain,
                                  "quit is not wired\n")};
        }
        return {make_response(status::ok, version, keep_alive, text_plain, "quitting\n"), true};
    }

    if (!is_read_path(path)) {
        return {make_response(status::not_found, version, keep_alive, text_plain, "not found\n")};
    }
    if (req.method() != verb::get && req.method() != verb::head) {
        auto res = make_response(status::method_not_allowed, version, keep_alive, text_plain,
                                 "method not allowed\n");
        res.set(field::allow, bsv(read_methods));
        return {std::move(res)};
    }
    page p = read_route(path, src, counts, count_probe);
    return {make_response(p.code, version, keep_alive, p.type, std::move(p.body))};
}

// A response to HEAD has the headers a GET would get, Content-Length included, and no body
// (whatever the status: a stray body would corrupt the next response on the connection).
void strip_body_for_head(const request& req, response& res) {
    if (req.method() != verb::head) return;
    const auto length = res.body().size();
    res.body().clear();
    res.content_length(length);
}

}  // namespace

std::string_view path_of(loopback_route r) {
    switch (r) {
        case loopback_route::configz:
            return "/configz";
        case loopback_route::quitquitquit:
            return "/quitquitquit";
    }
    return {};
}

bool is_loopback(const boost::asio::ip::address& a) {
    if (a.is_v4()) return a.to_v4().is_loopback();
    const auto v6 = a.to_v6();
    if (v6.is_v4_mapped()) {
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).is_loopback();
    }
    return v6.is_loopback();
}

std::optional<loopback_route> refusal(std::string_view path,
                                      const std::optional<boost::asio::ip::address>& peer) {
    std::optional<loopback_route> guarded;
    if (path == path_of(loopback_route::configz)) guarded = loopback_route::configz;
    if (path == path_of(loopback_route::quitquitquit)) guarded = loopback_route::quitquitquit;
    if (!guarded || (peer && is_loopback(*peer))) return std::nullopt;
    return guarded;
}

routed route(const request& req, const std::optional<boost::asio::ip::address>& peer,
             const sources& src, const probe_counts& counts, const probe_counter& count_probe) {
    try {
        auto r = route_unguarded(req, peer, src, counts, count_probe);
        strip_body_for_head(req, r.res);
        return r;
    } catch (const std::exception&) {
        // The message may carry anything; the body stays generic.
    } catch (...) {
    }
    auto res = make_response(status::internal_server_error, req.version(), false, text_plain,
                             "internal error\n");
    strip_body_for_head(req, res);
    return {std::move(res)};
}

response error_response(status code, std::string_view text) {
    constexpr unsigned http_1_1 = 11;
    return make_response(code, http_1_1, false, text_plain, std::string(text) + "\n");
}

}  // namespace redis_sidecar::http
