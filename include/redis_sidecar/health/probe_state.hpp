#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace redis_sidecar::health {

/// The sidecar's lifecycle, as the probes see it. Moves only forward:
/// starting → ready → draining → stopped (draining and stopped may also come straight from
/// starting). `ready` means "start-up completed", not "/readyz answers 200" (that also depends on
/// the readiness policy and the upstream).
enum class state {
    /// Settings not yet valid, or the first upstream connection has not completed.
    starting,
    /// Settings valid and one upstream connection has done TLS + AUTH + PING.
    ready,
    /// Graceful shutdown has begun; /readyz never answers 200 again.
    draining,
    /// Everything is closed; the process is about to exit.
    stopped,
};

/// "starting", "ready", "draining" or "stopped" (also the `state` metric label).
std::string_view name(state s);

/// Every state, in lifecycle order (for metrics that export one sample per state).
inline constexpr state all_states[] = {state::starting, state::ready, state::draining,
                                       state::stopped};

/// What /readyz requires beyond "started and not draining".
enum class readiness_policy {
    /// At least one healthy pooled upstream connection (the default).
    upstream,
    /// As `upstream`, and the upstream's role is "master" (writes will not get READONLY).
    primary,
    /// Nothing about the upstream: only the sidecar's own state.
    local,
};

/// "upstream", "primary" or "local".
std::string_view name(readiness_policy p);

/// Parses "upstream", "primary" or "local" (any case, surrounding white space dropped). Throws
/// std::invalid_argument naming the value and the accepted ones. For start-up only.
readiness_policy parse_readiness_policy(std::string_view text);

/// The upstream facts readiness depends on, read from the pool by the app at probe time.
struct upstream_view {
    bool healthy = false;  ///< at least one healthy pooled connection
    std::string role;      ///< "master", "replica" or "" (unknown)
    /// Why the upstream cannot serve although a connection is healthy ("" when it can); in
    /// cluster mode: topology unknown, a slot's primary without a healthy connection.
    std::string not_ready;
};

/// The answer to "is the pod ready?", with the reason when it is not (for the /readyz body and
/// logs; never contains a secret).
struct readiness {
    bool ready = false;
    std::string
        reason;  ///< empty when ready, else e.g. "draining", "no healthy upstream connection"
};

/// The probe state machine: pure logic, no I/O, the clock passed in. Used from one thread, the
/// event loop's (heartbeat timer, admin server, signals: docs/architecture.md "Threading"), so
/// it holds no lock. The change observer runs inside the input that changed the state.
class probe_state {
  public:
    using clock = std::chrono::steady_clock;

    /// How often the app should call heartbeat() from a timer on the event loop it watches.
    static constexpr std::chrono::milliseconds heartbeat_interval{1000};
    /// /livez fails once the last heartbeat is this old (the loop is stuck or starved).
    static constexpr std::chrono::milliseconds default_liveness_bound{10000};

    /// Tunables.
    struct options {
        readiness_policy policy = readiness_policy::upstream;  ///< what /readyz requires
        std::chrono::milliseconds liveness_bound = default_liveness_bound;  ///< see above
    };

    /// Called after every state change with the old and the new state.
    using observer = std::function<void(state from, state to)>;

    /// Starts in `starting`; `now` counts as the first heartbeat.
    probe_state(options opts, clock::time_point now);

    probe_state(const probe_state&) = delete;
    probe_state& operator=(const probe_state&) = delete;

    /// Sets the observer (replacing any earlier one). Set it before the inputs start.
    void on_change(observer f);

    // Inputs. Each returns true when it changed the state (and then the observer was called).

    /// The settings resolved and validated.
    bool mark_settings_valid();
    /// The first upstream connection completed TLS + AUTH + PING. Once true, true forever.
    bool mark_startup_completed();
    /// Graceful shutdown began (SIGTERM, POST /quitquitquit). Irreversible.
    bool begin_draining();
    /// Everything is closed. Irreversible.
    bool mark_stopped();
    /// The watched event loop is turning; call every heartbeat_interval from a timer on it.
    void heartbeat(clock::time_point now);

    // Queries.

    /// The current state.
    state current() const;
    /// name(current()).
    std::string_view state_name() const;
    /// /livez: the last heartbeat is younger than the liveness bound. Never depends on the
    /// upstream or on the state.
    bool live(clock::time_point now) const;
    /// /startupz: settings valid and start-up completed (stays true while draining).
    bool started() const;
    /// /readyz: in state `ready` and the policy holds for `upstream`.
    bool ready(const upstream_view& upstream) const;
    /// ready() with the reason when not ready.
    readiness check(const upstream_view& upstream) const;
    /// The policy in force.
    readiness_policy policy() const { return options_.policy; }

  private:
    /// Applies `mutate`, recomputes the state, and notifies on a change.
    template <class F>
    bool update(F mutate);
    state derive() const;

    const options options_;
    bool settings_valid_ = false;
    bool startup_completed_ = false;
    bool draining_ = false;
    bool stopped_ = false;
    state state_ = state::starting;
    observer observer_;
    clock::time_point last_heartbeat_;
};

}  // namespace redis_sidecar::health
