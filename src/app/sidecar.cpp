#include "sidecar.hpp"

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <map>
#include <optional>
#include <sstream>

#include "exports.hpp"
#include "identity.hpp"
#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/config/values.hpp"
#include "redis_sidecar/log/logger.hpp"
#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/upstream/error.hpp"

#ifndef REDIS_SIDECAR_VERSION
#define REDIS_SIDECAR_VERSION "0.0.0"
#endif

namespace redis_sidecar::app {

namespace {

using namespace std::chrono_literals;

/// How often the drain checks whether the last client has left.
constexpr auto drain_poll_interval = 50ms;
/// /status samples the upstream's INFO at most this often.
constexpr auto info_sample_interval = 5s;

// A sidecar holds two sockets per client: use all the descriptors the pod allows.
void raise_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

std::string iso_time(std::chrono::system_clock::time_point t) {
    const auto tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// The INFO fields /status shows, from INFO's "key:value" lines.
nlohmann::json parse_info(const std::string& info) {
    std::map<std::string, std::string> fields;
    std::istringstream lines(info);
    for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto colon = line.find(':');
        if (colon != std::string::npos) fields[line.substr(0, colon)] = line.substr(colon + 1);
    }
    nlohmann::json j = nlohmann::json::object();
    for (const auto* key :
         {"redis_version", "used_memory_human", "connected_clients", "uptime_in_seconds"}) {
        if (fields.count(key) != 0) j[key] = fields[key];
    }
    // Counters from the upstream are parsed without exceptions: a server (or anything posing
    // as one) that sends something else only loses the hit rate, never the event loop.
    const auto counter = [&fields](const char* key) -> std::optional<std::uint64_t> {
        const auto it = fields.find(key);
        if (it == fields.end()) return std::nullopt;
        std::uint64_t v = 0;
        const auto* end = it->second.data() + it->second.size();
        const auto r = std::from_chars(it->second.data(), end, v);
        if (r.ec != std::errc{} || r.ptr != end) return std::nullopt;
        return v;
    };
    const auto hits = counter("keyspace_hits");
    const auto misses = counter("keyspace_misses");
    if (hits && misses) {
        const auto total = static_cast<double>(*hits) + static_cast<double>(*misses);
        j["keyspace_hit_rate"] = total > 0 ? static_cast<double>(*hits) / total : 0.0;
    } else if (fields.count("keyspace_hits") != 0) {
        log::debug("upstream INFO keyspace counters are not numbers; hit rate omitted");
    }
    return j;
}

}  // namespace

sidecar::sidecar(config::resolution resolved, config::inputs inputs)
    : resolved_(std::move(resolved)),
      inputs_(std::move(inputs)),
      signals_(io_, SIGTERM, SIGINT, SIGHUP),
      drain_timer_(io_),
      heartbeat_timer_(io_),
      probes_({health::parse_readiness_policy(resolved_.values.lifecycle.readiness)},
              std::chrono::steady_clock::now()) {
    probes_.on_change([](health::state from, health::state to) {
        log::info("state changed", {{"from", health::name(from)}, {"to", health::name(to)}});
    });
    probes_.mark_settings_valid();
}

sidecar::~sidecar() = default;

int sidecar::run() {
    std::signal(SIGPIPE, SIG_IGN);
    // Read buffers come and go with every request (16 KB ours, OpenSSL's released while idle):
    // keep up to 1 MB free at the top of the heap instead of a brk() up and down per burst.
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
    raise_fd_limit();
    const auto& s = resolved_.values;
    if (s.upstream.tls.enabled) {
        tls_ = std::make_unique<upstream::tls_client>(s.upstream.tls);
        if (!s.upstream.tls.verify) {
            log::warn("TLS certificate verification is OFF (REDIS_TLS_SKIP_VERIFY)");
        }
    }
    auto options = upstream::options_from(s);
    options.client_name = client_name();
    // REDIS_MAX_CONNECTIONS bounds each pool and, in cluster mode, all of them together.
    options.budget = std::make_shared<upstream::connection_budget>();
    options.budget->max = s.pool.max_connections;
    pool_ =
        std::make_shared<upstream::pool>(io_.get_executor(), s.upstream, tls_.get(), options,
                                         upstream::make_resolver(io_.get_executor(), s.upstream));
    pool_->on_first_connect([this] { probes_.mark_startup_completed(); });

    session_context_ = std::make_shared<bridge::session_context>();
    session_context_->pool = pool_;
    session_context_->stats = &bridge_stats_;
    session_context_->client_password = s.listen.client_password;
    session_context_->passthrough_auth = s.listen.client_auth == "passthrough";
    session_context_->reauth = [pool = pool_.get()] { return pool->reauth(); };
    session_context_->upstream_user = [pool = pool_.get()] {
        return pool->upstream().username.value_or("default");
    };
    session_context_->write_timeout = s.pool.socket_timeout;
    listener_ = std::make_unique<bridge::listener>(io_.get_executor(), session_context_,
                                                   s.listen.max_clients);
    if (s.listen.multiplex) {
        // Shared connections come out of REDIS_MAX_CONNECTIONS and hold their leases for good:
        // at least one must stay for clients that need their own (MULTI, SUBSCRIBE, ...).
        const unsigned lanes = std::min(s.listen.shared_connections, s.pool.max_connections - 1);
        if (lanes < s.listen.shared_connections) {
            log::warn(
                "fewer shared connections than asked: one of REDIS_MAX_CONNECTIONS stays "
                "for clients that need their own",
                {{"REDIS_SIDECAR_SHARED_CONNECTIONS", std::to_string(s.listen.shared_connections)},
                 {"REDIS_MAX_CONNECTIONS", std::to_string(s.pool.max_connections)},
                 {"shared", std::to_string(lanes)}});
        }
        // Per protocol: RESP3 clients get lanes of their own, within the same bound.
        if (lanes > 0) listener_->enable_multiplex(lanes, s.pool.max_connections - 1);
    }
    if (s.listen.tcp) listener_->listen_tcp(*s.listen.tcp);
    if (s.listen.unix_path) listener_->listen_unix(*s.listen.unix_path);
    cluster_ = std::make_unique<cluster_bridge>(io_.get_executor(), s, tls_.get(), options, pool_,
                                                session_context_);

    http::sources src;
    src.live = [this] { return probes_.live(std::chrono::steady_clock::now()); };
    src.started = [this] { return probes_.started(); };
    src.ready = [this] { return probes_.ready(upstream_view()); };
    src.not_ready_reason = [this] { return probes_.check(upstream_view()).reason; };
    src.status = [this] { return status(); };
    src.metrics = [this](metrics::registry& r) {
        fill(r, stats());
        if (r.misuses() > 0) log::error("metrics misuse", {{"detail", r.last_misuse()}});
    };
    src.metric_families = all_families();
    src.configz = [this] { return config::to_json(resolved_.values); };
    src.quit = [this] { begin_drain("POST /quitquitquit"); };
    admin_ = std::make_unique<http::admin_server>(io_.get_executor(), s.http.addr, std::move(src));
    admin_->start();

    log::info("redis-sidecar starting",
              {{"version", REDIS_SIDECAR_VERSION},
               {"upstream", config::join_host_port(s.upstream.host, s.upstream.port)},
               {"tls", s.upstream.tls.enabled ? "on" : "off"},
               {"readiness", s.lifecycle.readiness},
               {"http", s.http.addr}});
    if (s.iam.enabled) {
        // No password: the pools start with the first token and take every later one.
        iam_ = std::make_unique<iam_auth>(io_.get_executor(), iam_source_from(s, inputs_.env),
                                          iam_target_from(s), s.pool.connection_timeout);
        iam_->on_token([this](const config::secret& token) {
            const std::optional<std::string> user = iam_->user();  // signed for this one
            pool_->update_credentials(user, token);
            cluster_->update_credentials(user, token);
            if (!upstream_started_) start_upstream();
        });
        const auto refused = [this] { iam_->token_refused(); };
        pool_->on_connect_failure([refused](std::error_code ec) {
            if (ec == upstream::error::wrongpass) refused();
        });
        cluster_->on_auth_refused = refused;
        iam_->start();
    } else {
        start_upstream();
    }
    secrets_ = std::make_unique<secret_watcher>(
        io_, inputs_, resolved_.values, [this](const config::settings& fresh) {
            session_context_->client_password = fresh.listen.client_password;
            cluster_->update_client_password(fresh.listen.client_password);
            if (iam_) {
                // The password is the token; only the user can change.
                if (fresh.upstream.username) iam_->set_user(*fresh.upstream.username);
                return;
            }
            pool_->update_credentials(fresh.upstream.username, fresh.upstream.password);
            cluster_->update_credentials(fresh.upstream.username, fresh.upstream.password);
        });
    secrets_->start();
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
        if (!ec) on_signal(sig);
    });
    heartbeat();
    io_.run();
    return exit_code_;
}

void sidecar::start_upstream() {
    upstream_started_ = true;
    pool_->start();
    cluster_->start();
}

void sidecar::heartbeat() {
    probes_.heartbeat(std::chrono::steady_clock::now());
    heartbeat_timer_.expires_after(health::probe_state::heartbeat_interval);
    heartbeat_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) heartbeat();
    });
}

health::upstream_view sidecar::upstream_view() const {
    if (cluster_->active()) {
        // The seed endpoint may be any node (a replica too); every slot's primary counts.
        auto reason = cluster_->not_ready_reason();
        const bool ok = reason.empty();
        return {pool_->healthy(), ok ? "master" : pool_->stats().role, std::move(reason)};
    }
    return {pool_->healthy(), pool_->stats().role, cluster_->not_ready_reason()};
}

void sidecar::on_signal(int sig) {
    if (sig == SIGHUP) {
        log::info("SIGHUP: re-reading secrets and settings");
        secrets_->trigger();
    } else if (probes_.current() == health::state::draining ||
               probes_.current() == health::state::stopped) {
        log::warn("second signal: exiting now", {{"signal", std::to_string(sig)}});
        std::_Exit(exit_code_);
    } else {
        begin_drain(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    signals_.async_wait([this](const boost::system::error_code& ec, int s) {
        if (!ec) on_signal(s);
    });
}

void sidecar::begin_drain(const char* why) {
    if (!probes_.begin_draining()) return;  // already draining
    const auto& lc = resolved_.values.lifecycle;
    log::info("draining", {{"reason", why},
                           {"min_drain", config::format_duration(lc.min_drain)},
                           {"max_drain", config::format_duration(lc.max_drain)}});
    drain_deadline_ = std::chrono::steady_clock::now() + lc.min_drain + lc.max_drain;
    // Keep accepting for min_drain: a terminating app may still open connections.
    drain_timer_.expires_after(lc.min_drain);
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) stop_accepting_and_wait();
    });
}

void sidecar::stop_accepting_and_wait() {
    listener_->stop_accepting();
    cluster_->stop_accepting();
    wait_for_clients();
}

void sidecar::wait_for_clients() {
    const auto clients = listener_->clients() + cluster_->clients();
    if (clients == 0 || std::chrono::steady_clock::now() >= drain_deadline_) {
        if (clients > 0) {
            log::warn("drain bound reached; closing remaining clients",
                      {{"clients", std::to_string(clients)}});
        }
        finish();
        return;
    }
    drain_timer_.expires_after(drain_poll_interval);
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) wait_for_clients();
    });
}

void sidecar::finish() {
    secrets_->stop();
    if (iam_) iam_->stop();
    listener_->close_all();
    cluster_->stop();
    pool_->stop();
    admin_->stop();
    probes_.mark_stopped();
    signals_.cancel();
    drain_timer_.cancel();
    heartbeat_timer_.cancel();
    // Let the closes and releases run, then return from run().
    boost::asio::post(io_, [this] { io_.stop(); });
}

nlohmann::json sidecar::status() {
    sample_upstream_info();
    const auto& p = pool_->stats();
    const bool available = pool_->healthy();
    const auto state = probes_.current();
    // degraded: serving, but not ready by the policy, clients queued, or a failure in the last
    // minute.
    const bool recent_error =
        !p.last_error.empty() && std::chrono::system_clock::now() - p.last_error_time < 60s;
    std::string verdict = "healthy";
    if (state == health::state::draining || state == health::state::stopped) {
        verdict = "draining";
    } else if (!available) {
        verdict = "unhealthy";
    } else if (!probes_.ready(upstream_view()) || p.waiting > 0 || recent_error) {
        verdict = "degraded";
    }
    nlohmann::json j;
    j["status"] = verdict;
    j["state"] = probes_.state_name();
    j["redis_available"] = available;
    j["role"] = p.role.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.role);
    j["server_version"] =
        p.server_version.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.server_version);
    j["upstream"] =
        config::join_host_port(resolved_.values.upstream.host, resolved_.values.upstream.port);
    // The figures /metrics exports too, from the same rows ("pool.open" → j["pool"]["open"]).
    j["cluster"] = cluster_->status();
    j["iam"] = iam_ ? iam_->status() : nlohmann::json(nullptr);
    const auto view = stats();
    for (const auto& e : exports()) {
        if (e.status.empty()) continue;
        const auto value = static_cast<std::uint64_t>(e.value(view));
        const auto dot = e.status.find('.');
        if (dot == std::string_view::npos) {
            j[std::string(e.status)] = value;
        } else {
            j[std::string(e.status.substr(0, dot))][std::string(e.status.substr(dot + 1))] = value;
        }
    }
    j["upstream_info"] = upstream_info_;
    if (p.last_error.empty()) {
        j["last_error"] = nullptr;
    } else {
        j["last_error"] = {{"class", p.last_error},
                           {"message", p.last_error_message},
                           {"time", iso_time(p.last_error_time)}};
    }
    return j;
}

// INFO through a pooled connection, at most every info_sample_interval, only when asked for.
void sidecar::sample_upstream_info() {
    const auto now = std::chrono::steady_clock::now();
    if (info_sampling_ || now - info_sampled_ < info_sample_interval || !pool_->healthy()) return;
    info_sampling_ = true;
    info_sampled_ = now;
    pool_->async_acquire([this](std::error_code ec, std::shared_ptr<upstream::connection> c) {
        if (ec || !c) {
            info_sampling_ = false;
            return;
        }
        upstream::async_command(
            c, resp::format_command({"INFO"}), 1, resolved_.values.pool.socket_timeout,
            [this, c](upstream::command_result r) {
                info_sampling_ = false;
                // An error reply is the server's answer (NOPERM: a least-privilege ACL user may
                // not run INFO): no upstream_info, and no fault. A broken connection, a timeout,
                // an unreadable reply or one of the wrong type is.
                std::error_code ec = r.ec;
                const auto type = ec ? resp::reply_type::nil : r.replies.front().type;
                if (!ec && type != resp::reply_type::string && type != resp::reply_type::error) {
                    ec = upstream::make_error_code(upstream::error::protocol_error);
                }
                if (ec) {
                    pool_->record_command_failure("INFO", ec,
                                                  r.ec ? "" : "answered with no bulk string");
                } else if (type == resp::reply_type::string) {
                    upstream_info_ = parse_info(r.replies.front().str);
                }
                pool_->release(c, !ec);
            });
    });
}

stats_view sidecar::stats() const {
    return {.pool = pool_->stats(),
            .bridge = bridge_stats_,
            .cluster = cluster_->stats(),
            .upstream_up = pool_->healthy(),
            .state = probes_.current(),
            .secret_reload_failures = secrets_ ? secrets_->stats().failures : 0,
            .process_start_seconds =
                std::chrono::duration<double>(started_at_.time_since_epoch()).count(),
            .version = REDIS_SIDECAR_VERSION,
            .iam = iam_counts_of(),
            .admin_refused = admin_ ? admin_->refused_requests() : http::refused_counts{}};
}

iam_counts sidecar::iam_counts_of() const {
    if (!iam_) return {};
    const auto s = iam_->stats();
    return {.credential_fetches = s.credential_fetches,
            .credential_failures = s.credential_failures,
            .tokens_signed = s.tokens_signed,
            .tokens_refused = s.tokens_refused,
            .credentials_ttl_seconds = std::max(0.0, s.credentials_ttl_seconds.value_or(0.0))};
}

}  // namespace redis_sidecar::app
