#include "redis_sidecar/health/probe_state.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace redis_sidecar::health {
namespace {

using namespace std::chrono_literals;
using clock = probe_state::clock;

const clock::time_point t0{};  // the fake clock's epoch; tests pass times explicitly

// The inputs of the state machine, as data.
enum class input { settings_valid, startup_completed, begin_draining, stopped };
constexpr std::array all_inputs = {input::settings_valid, input::startup_completed,
                                   input::begin_draining, input::stopped};

bool apply(probe_state& p, input i) {
    switch (i) {
        case input::settings_valid:
            return p.mark_settings_valid();
        case input::startup_completed:
            return p.mark_startup_completed();
        case input::begin_draining:
            return p.begin_draining();
        case input::stopped:
            return p.mark_stopped();
    }
    return false;
}

// Inputs that bring a fresh machine into each state.
std::vector<input> path_to(state s) {
    switch (s) {
        case state::starting:
            return {};
        case state::ready:
            return {input::settings_valid, input::startup_completed};
        case state::draining:
            return {input::settings_valid, input::startup_completed, input::begin_draining};
        case state::stopped:
            return {input::settings_valid, input::startup_completed, input::begin_draining,
                    input::stopped};
    }
    return {};
}

// --- names and parsing -------------------------------------------------------------------------

TEST(probe_state_names, states_and_policies) {
    EXPECT_EQ(name(state::starting), "starting");
    EXPECT_EQ(name(state::ready), "ready");
    EXPECT_EQ(name(state::draining), "draining");
    EXPECT_EQ(name(state::stopped), "stopped");
    EXPECT_EQ(name(readiness_policy::upstream), "upstream");
    EXPECT_EQ(name(readiness_policy::primary), "primary");
    EXPECT_EQ(name(readiness_policy::local), "local");
}

struct policy_case {
    const char* text;
    bool valid;
    readiness_policy expected;
};

class parse_policy_test : public ::testing::TestWithParam<policy_case> {};

TEST_P(parse_policy_test, parses_or_names_the_value) {
    const auto& c = GetParam();
    if (c.valid) {
        EXPECT_EQ(parse_readiness_policy(c.text), c.expected) << c.text;
        return;
    }
    try {
        parse_readiness_policy(c.text);
        ADD_FAILURE() << "accepted \"" << c.text << "\"";
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find(std::string("\"") + c.text + "\""), std::string::npos) << what;
        EXPECT_NE(what.find("upstream, primary or local"), std::string::npos) << what;
    }
}

INSTANTIATE_TEST_SUITE_P(
    all, parse_policy_test,
    ::testing::Values(policy_case{"upstream", true, readiness_policy::upstream},
                      policy_case{"primary", true, readiness_policy::primary},
                      policy_case{"local", true, readiness_policy::local},
                      policy_case{"  Primary\n", true, readiness_policy::primary},
                      policy_case{"LOCAL", true, readiness_policy::local},
                      policy_case{"", false, {}}, policy_case{"master", false, {}},
                      policy_case{"upstreams", false, {}}, policy_case{"loc al", false, {}}));

// --- transitions: (state, input) → (state, changed) --------------------------------------------

struct transition_case {
    state from;
    input in;
    state to;
};

class transition_test : public ::testing::TestWithParam<transition_case> {};

TEST_P(transition_test, moves_forward_and_reports_changes) {
    const auto& c = GetParam();
    probe_state p({}, t0);
    for (auto i : path_to(c.from)) apply(p, i);
    ASSERT_EQ(p.current(), c.from);

    std::vector<std::pair<state, state>> seen;
    p.on_change([&](state from, state to) { seen.emplace_back(from, to); });
    const bool changed = apply(p, c.in);

    EXPECT_EQ(p.current(), c.to);
    EXPECT_EQ(p.state_name(), name(c.to));
    EXPECT_EQ(changed, c.from != c.to);
    if (c.from != c.to) {
        ASSERT_EQ(seen.size(), 1u);
        EXPECT_EQ(seen[0], std::make_pair(c.from, c.to));
    } else {
        EXPECT_TRUE(seen.empty());
    }
}

using S = state;
using I = input;
INSTANTIATE_TEST_SUITE_P(table, transition_test,
                         ::testing::Values(
                             // starting: only both start-up facts together make it ready.
                             transition_case{S::starting, I::settings_valid, S::starting},
                             transition_case{S::starting, I::startup_completed, S::starting},
                             transition_case{S::starting, I::begin_draining, S::draining},
                             transition_case{S::starting, I::stopped, S::stopped},
                             transition_case{S::ready, I::settings_valid, S::ready},
                             transition_case{S::ready, I::startup_completed, S::ready},
                             transition_case{S::ready, I::begin_draining, S::draining},
                             transition_case{S::ready, I::stopped, S::stopped},
                             transition_case{S::draining, I::settings_valid, S::draining},
                             transition_case{S::draining, I::startup_completed, S::draining},
                             transition_case{S::draining, I::begin_draining, S::draining},
                             transition_case{S::draining, I::stopped, S::stopped},
                             transition_case{S::stopped, I::settings_valid, S::stopped},
                             transition_case{S::stopped, I::startup_completed, S::stopped},
                             transition_case{S::stopped, I::begin_draining, S::stopped},
                             transition_case{S::stopped, I::stopped, S::stopped}));

TEST(probe_state_transitions, either_order_of_startup_facts_reaches_ready) {
    for (bool settings_first : {true, false}) {
        probe_state p({}, t0);
        std::vector<std::pair<state, state>> seen;
        p.on_change([&](state from, state to) { seen.emplace_back(from, to); });
        EXPECT_FALSE(settings_first ? p.mark_settings_valid() : p.mark_startup_completed());
        EXPECT_FALSE(p.started());
        EXPECT_TRUE(settings_first ? p.mark_startup_completed() : p.mark_settings_valid());
        EXPECT_TRUE(p.started());
        EXPECT_EQ(seen, (std::vector<std::pair<state, state>>{{state::starting, state::ready}}));
    }
}

// --- readiness: states × policies × upstream views ---------------------------------------------

enum class view_kind {
    unhealthy,
    healthy_master,
    healthy_replica,
    healthy_unknown_role,
    unhealthy_master
};
constexpr std::array all_views = {view_kind::unhealthy, view_kind::healthy_master,
                                  view_kind::healthy_replica, view_kind::healthy_unknown_role,
                                  view_kind::unhealthy_master};

upstream_view make_view(view_kind v) {
    switch (v) {
        case view_kind::unhealthy:
            return {false, "", ""};
        case view_kind::healthy_master:
            return {true, "master", ""};
        case view_kind::healthy_replica:
            return {true, "replica", ""};
        case view_kind::healthy_unknown_role:
            return {true, "", ""};
        case view_kind::unhealthy_master:
            return {false, "master", ""};
    }
    return {};
}

// What each policy accepts from the upstream, written out (rows: policy, columns: all_views).
bool policy_accepts(readiness_policy p, view_kind v) {
    static constexpr bool upstream_row[] = {false, true, true, true, false};
    static constexpr bool primary_row[] = {false, true, false, false, false};
    static constexpr bool local_row[] = {true, true, true, true, true};
    const auto column = static_cast<std::size_t>(v);
    switch (p) {
        case readiness_policy::upstream:
            return upstream_row[column];
        case readiness_policy::primary:
            return primary_row[column];
        case readiness_policy::local:
            return local_row[column];
    }
    return false;
}

class readiness_test
    : public ::testing::TestWithParam<std::tuple<state, readiness_policy, view_kind>> {};

TEST_P(readiness_test, ready_only_in_ready_state_when_policy_holds) {
    const auto [s, policy, v] = GetParam();
    probe_state p({.policy = policy}, t0);
    for (auto i : path_to(s)) apply(p, i);
    ASSERT_EQ(p.current(), s);

    const bool expected = s == state::ready && policy_accepts(policy, v);
    const auto r = p.check(make_view(v));
    EXPECT_EQ(p.ready(make_view(v)), expected);
    EXPECT_EQ(r.ready, expected);
    EXPECT_EQ(r.reason.empty(), expected) << r.reason;
    EXPECT_EQ(p.started(), s != state::starting);
    EXPECT_TRUE(p.live(t0)) << "liveness never depends on state or upstream";
    if (s != state::ready) {
        EXPECT_EQ(r.reason, name(s));
    }
}

INSTANTIATE_TEST_SUITE_P(matrix, readiness_test,
                         ::testing::Combine(::testing::ValuesIn(all_states),
                                            ::testing::Values(readiness_policy::upstream,
                                                              readiness_policy::primary,
                                                              readiness_policy::local),
                                            ::testing::ValuesIn(all_views)));

TEST(probe_state_readiness, reasons_name_the_upstream_problem) {
    probe_state up({.policy = readiness_policy::upstream}, t0);
    probe_state primary({.policy = readiness_policy::primary}, t0);
    for (auto* p : {&up, &primary}) {
        p->mark_settings_valid();
        p->mark_startup_completed();
    }
    EXPECT_EQ(up.check({false, "master", ""}).reason, "no healthy upstream connection");
    EXPECT_EQ(primary.check({true, "replica", ""}).reason,
              "upstream is not the primary (role: replica)");
    EXPECT_EQ(primary.check({true, "", ""}).reason, "upstream is not the primary (role: unknown)");
    // Cluster mode: a healthy seed connection is not enough.
    EXPECT_EQ(up.check({true, "master", "cluster: topology not known yet"}).reason,
              "cluster: topology not known yet");
    EXPECT_TRUE(up.check({true, "master", ""}).ready);
}

TEST(probe_state_readiness, default_policy_is_upstream) {
    probe_state p({}, t0);
    EXPECT_EQ(p.policy(), readiness_policy::upstream);
}

// --- once draining, never ready again (exhaustive) ---------------------------------------------

// Every sequence of up to max_length inputs from a fresh machine: after begin_draining (or stop)
// nothing makes it ready, under every policy and upstream view; the state never goes back.
TEST(probe_state_draining, never_ready_again_after_any_input_sequence) {
    constexpr std::size_t max_length = 7;  // 4^7 = 16384 sequences per policy
    std::size_t sequences = 0;
    for (auto policy :
         {readiness_policy::upstream, readiness_policy::primary, readiness_policy::local}) {
        std::vector<std::size_t> digits(max_length, 0);
        for (bool more = true; more; ++sequences) {
            probe_state p({.policy = policy}, t0);
            bool drained = false;
            state previous = p.current();
            for (std::size_t k = 0; k < max_length; ++k) {
                const input in = all_inputs[digits[k]];
                apply(p, in);
                drained = drained || in == input::begin_draining || in == input::stopped;
                ASSERT_GE(static_cast<int>(p.current()), static_cast<int>(previous));
                previous = p.current();
                if (!drained) continue;
                ASSERT_TRUE(p.current() == state::draining || p.current() == state::stopped);
                for (auto v : all_views) ASSERT_FALSE(p.ready(make_view(v)));
            }
            // Next sequence (odometer over the inputs).
            more = false;
            for (std::size_t k = 0; k < max_length && !more; ++k) {
                if (++digits[k] < all_inputs.size()) {
                    more = true;
                } else {
                    digits[k] = 0;
                }
            }
        }
    }
    EXPECT_EQ(sequences, 3u * 16384u);
}

TEST(probe_state_draining, startup_completing_during_drain_counts_as_started_but_not_ready) {
    probe_state p({.policy = readiness_policy::local}, t0);
    p.mark_settings_valid();
    p.begin_draining();
    EXPECT_FALSE(p.mark_startup_completed());
    EXPECT_TRUE(p.started());
    EXPECT_EQ(p.current(), state::draining);
    EXPECT_FALSE(p.ready({true, "master", ""}));
}

// --- liveness ----------------------------------------------------------------------------------

TEST(probe_state_liveness, follows_the_heartbeat_with_the_bound) {
    probe_state p({.liveness_bound = 10s}, t0);
    EXPECT_TRUE(p.live(t0));
    EXPECT_TRUE(p.live(t0 + 9999ms));
    EXPECT_FALSE(p.live(t0 + 10s));
    p.heartbeat(t0 + 10s);
    EXPECT_TRUE(p.live(t0 + 15s));
    EXPECT_FALSE(p.live(t0 + 25s));
    p.heartbeat(t0 + 3s);  // an older time never moves the heartbeat back
    EXPECT_TRUE(p.live(t0 + 19s));
}

TEST(probe_state_liveness, default_bound_and_independence_from_state) {
    EXPECT_EQ(probe_state::default_liveness_bound, 10s);
    probe_state p({.policy = readiness_policy::primary, .liveness_bound = 100ms}, t0);
    p.begin_draining();
    p.mark_stopped();
    EXPECT_TRUE(p.live(t0 + 99ms));
    EXPECT_FALSE(p.live(t0 + 100ms));
    p.heartbeat(t0 + 1s);
    EXPECT_TRUE(p.live(t0 + 1050ms));
}

}  // namespace
}  // namespace redis_sidecar::health
