#include "redis_sidecar/health/probe_state.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <utility>

namespace redis_sidecar::health {

namespace {

constexpr std::string_view role_primary = "master";

std::string lower_trimmed(std::string_view text) {
    const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
    while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

}  // namespace

std::string_view name(state s) {
    switch (s) {
        case state::starting:
            return "starting";
        case state::ready:
            return "ready";
        case state::draining:
            return "draining";
        case state::stopped:
            return "stopped";
    }
    return "unknown";
}

std::string_view name(readiness_policy p) {
    switch (p) {
        case readiness_policy::upstream:
            return "upstream";
        case readiness_policy::primary:
            return "primary";
        case readiness_policy::local:
            return "local";
    }
    return "unknown";
}

readiness_policy parse_readiness_policy(std::string_view text) {
    const std::string value = lower_trimmed(text);
    for (auto p :
         {readiness_policy::upstream, readiness_policy::primary, readiness_policy::local}) {
        if (value == name(p)) return p;
    }
    throw std::invalid_argument("readiness policy must be upstream, primary or local, not \"" +
                                std::string(text) + "\"");
}

probe_state::probe_state(options opts, clock::time_point now)
    : options_(opts), last_heartbeat_(now) {}

void probe_state::on_change(observer f) {
    observer_ = std::move(f);
}

template <class F>
bool probe_state::update(F mutate) {
    mutate();
    const state from = state_;
    const state to = derive();
    if (from == to) return false;
    state_ = to;
    if (observer_) observer_(from, to);
    return true;
}

// The flags only ever go from false to true, so the derived state only moves forward.
state probe_state::derive() const {
    if (stopped_) return state::stopped;
    if (draining_) return state::draining;
    if (settings_valid_ && startup_completed_) return state::ready;
    return state::starting;
}

bool probe_state::mark_settings_valid() {
    return update([this] { settings_valid_ = true; });
}

bool probe_state::mark_startup_completed() {
    return update([this] { startup_completed_ = true; });
}

bool probe_state::begin_draining() {
    return update([this] { draining_ = true; });
}

bool probe_state::mark_stopped() {
    return update([this] { stopped_ = true; });
}

void probe_state::heartbeat(clock::time_point now) {
    last_heartbeat_ = std::max(last_heartbeat_, now);  // monotonic, whatever the caller passes
}

state probe_state::current() const {
    return state_;
}

std::string_view probe_state::state_name() const {
    return name(current());
}

bool probe_state::live(clock::time_point now) const {
    return now - last_heartbeat_ < options_.liveness_bound;
}

bool probe_state::started() const {
    return settings_valid_ && startup_completed_;
}

bool probe_state::ready(const upstream_view& upstream) const {
    return check(upstream).ready;
}

readiness probe_state::check(const upstream_view& upstream) const {
    switch (current()) {
        case state::starting:
            return {false, "starting"};
        case state::draining:
            return {false, "draining"};
        case state::stopped:
            return {false, "stopped"};
        case state::ready:
            break;
    }
    if (options_.policy == readiness_policy::local) return {true, ""};
    if (!upstream.healthy) return {false, "no healthy upstream connection"};
    if (!upstream.not_ready.empty()) return {false, upstream.not_ready};
    if (options_.policy == readiness_policy::primary && upstream.role != role_primary) {
        return {false, "upstream is not the primary (role: " +
                           (upstream.role.empty() ? std::string("unknown") : upstream.role) + ")"};
    }
    return {true, ""};
}

}  // namespace redis_sidecar::health
