// Cluster mode, black-box, with real cluster client libraries: ioredis `Redis.Cluster` and
// node-redis `createCluster` (tests/cluster/node, libraries from tests/bridge/node/setup.sh)
// seeded with the sidecar's main port, in front of a TLS Redis Cluster with a password
// (tests/support/redis_cluster). Besides the plain feature tour (node/cluster_clients.test.mjs)
// the cluster changes under a client that keeps writing (node/cluster_writer.mjs): a live
// reshard (MOVED and ASK), a coordinated failover, a new node, a killed primary. Every write the
// client saw acknowledged must be on the node that serves its slot afterwards, read there
// directly; every address the client learns must be one of the sidecar's local ports.

#include "cluster_sidecar.hpp"

#include <signal.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <thread>

namespace redis_sidecar::cluster_test {
namespace {

using faults_test::figure;
using faults_test::seconds_since;
using steady = std::chrono::steady_clock;

const std::string node_dir = std::string(REDIS_SIDECAR_SOURCE_DIR) + "/tests/cluster/node";

const std::string redirect_metric = "redis_sidecar_cluster_rewrites_total{kind=\"redirect\"}";

/// Wall-clock milliseconds since the epoch: the writer's time stamps are Date.now().
std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

/// The last line of redis-cli's output (after -c's "-> Redirected" notes); "" if none.
std::string last_line(const std::string& s) {
    const auto lines = lines_of(s);
    return lines.empty() ? std::string() : lines.back();
}

/// The writer's summary of one tag: every n below `attempted` was tried; `failed` ones were not
/// acknowledged, all others were.
struct tag_result {
    std::size_t attempted = 0;
    std::size_t acked = 0;
    std::set<std::size_t> failed;
};

class cluster_clients : public ::testing::Test {
  protected:
    /// tests/bridge/node/setup.sh (npm ci from the committed lock file, a no-op when installed):
    /// the node client libraries. Fails (never skips) when npm or the registry is unreachable.
    static void install_node_clients() {
        static bool installed = false;
        if (installed) return;
        const auto setup = run_process(
            {"sh", std::string(REDIS_SIDECAR_SOURCE_DIR) + "/tests/bridge/node/setup.sh"},
            base_env(), 300s);
        ASSERT_TRUE(setup.ok()) << "installing the node client libraries failed (npm ci):\n"
                                << setup;
        installed = true;
    }

    void start(redis_cluster_options options = cluster_options(), std::size_t ports = 20,
               const env_map& extra = {}) {
        ASSERT_NO_FATAL_FAILURE(install_node_clients());
        cluster_ = std::make_unique<redis_cluster>(options);
        cluster_->start();
        ports_ = ports;
        first_port_ = free_port_range(ports);
        auto env = sidecar_env(*cluster_, first_port_, ports);
        for (const auto& [k, v] : extra) env[k] = v;
        ASSERT_NO_FATAL_FAILURE(sidecar_.start(env));
    }

    bool is_local_port(long port) const {
        return port >= first_port_ && port < static_cast<long>(first_port_ + ports_);
    }

    /// The node scripts' environment: where the sidecar is.
    env_map node_env() const {
        env_map env = base_env();
        env["CLUSTER_MAIN_PORT"] = std::to_string(sidecar_.port());
        env["CLUSTER_FIRST_PORT"] = std::to_string(first_port_);
        env["CLUSTER_PORT_COUNT"] = std::to_string(ports_);
        return env;
    }

    /// redis-cli against the sidecar's main port; `-c` follows MOVED / ASK.
    process_result cli(std::vector<std::string> args, bool follow = true) const {
        std::vector<std::string> argv = {"redis-cli", "-p", std::to_string(sidecar_.port())};
        if (follow) argv.push_back("-c");
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, base_env(), 20s);
    }

    // ------------------------------------------------------------------- the writer script ---

    /// Starts node/cluster_writer.mjs writing `{tag}:n` for every tag; returns once every tag
    /// has acknowledged writes (the script's READY).
    void start_writer(const std::vector<std::string>& tags, env_map extra = {}) {
        auto env = node_env();
        std::string joined;
        for (const auto& t : tags) joined += (joined.empty() ? "" : ",") + t;
        env["WRITER_TAGS"] = joined;
        env["WRITER_MAX_SECONDS"] = "60";
        for (const auto& [k, v] : extra) env[k] = v;
        writer_.start({"node", node_dir + "/cluster_writer.mjs"}, env);
        ASSERT_TRUE(writer_.wait_for_output("READY", 20s)) << "the writer never got going:\n"
                                                           << writer_.out() << writer_.err();
    }

    /// Acknowledged writes so far (the writer's last PROGRESS line; it prints one a second).
    long writer_acked() const {
        long acked = -1;
        for (const auto& l : lines_of(writer_.out())) {
            const auto at = l.find(" acked=");
            if (l.rfind("PROGRESS", 0) == 0 && at != std::string::npos)
                acked = std::stol(l.substr(at + 7));
        }
        return acked;
    }

    /// PROGRESS lines the writer has printed.
    std::size_t progress_lines() const {
        const auto lines = lines_of(writer_.out());
        return static_cast<std::size_t>(std::count_if(
            lines.begin(), lines.end(), [](const auto& l) { return l.rfind("PROGRESS", 0) == 0; }));
    }

    /// Waits until the writer has acknowledged `more` writes beyond what it had at the call:
    /// counted from its first PROGRESS line after the call, since the last one before may be a
    /// second old (writes acknowledged in that second, such as a burst of writes queued during
    /// a failover, would count as after the call).
    ::testing::AssertionResult writer_goes_on(long more, std::chrono::milliseconds within) {
        const auto deadline = std::chrono::steady_clock::now() + within;
        const auto printed = progress_lines();
        long base = -1;
        if (eventually([&] { return progress_lines() > printed; }, within, 50ms)) {
            base = writer_acked();
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (eventually([&] { return writer_acked() >= base + more; },
                           std::max(left, std::chrono::milliseconds(0)), 100ms))
                return ::testing::AssertionSuccess();
        }
        return ::testing::AssertionFailure()
               << "the writer did not acknowledge " << more << " more writes (from " << base
               << ") within " << within.count() << " ms:\n"
               << writer_.out() << writer_.err();
    }

    /// SIGTERM to the writer; its SUMMARY as JSON (null JSON if it printed none).
    nlohmann::json stop_writer() {
        writer_.send_signal(SIGTERM);
        const auto status = writer_.wait_exit(20s);
        EXPECT_EQ(status, std::optional<int>(0)) << writer_.out() << writer_.err();
        for (const auto& l : lines_of(writer_.out())) {
            if (l.rfind("SUMMARY ", 0) == 0)
                return nlohmann::json::parse(l.substr(8), nullptr, false);
        }
        ADD_FAILURE() << "no SUMMARY from the writer:\n" << writer_.out() << writer_.err();
        return nlohmann::json();
    }

    static tag_result tag_of(const nlohmann::json& summary, const std::string& tag) {
        tag_result r;
        const auto& t = summary.at("tags").at(tag);
        r.attempted = t.at("attempted").get<std::size_t>();
        r.acked = t.at("acked").get<std::size_t>();
        for (const auto& n : t.at("failed")) r.failed.insert(n.get<std::size_t>());
        return r;
    }

    /// Acknowledged writes of `tag` (n >= from_n) missing or wrong on node `index`, read there
    /// directly (MGET: the keys share a slot); at most 20 named in `missing`.
    std::size_t missing_on(std::size_t index, const std::string& tag, const tag_result& r,
                           std::vector<std::string>* missing, std::size_t from_n = 0) const {
        std::size_t count = 0;
        std::vector<std::size_t> ns;
        for (std::size_t n = from_n; n < r.attempted; ++n) {
            if (r.failed.count(n) == 0) ns.push_back(n);
        }
        for (std::size_t begin = 0; begin < ns.size(); begin += 2000) {
            const auto end = std::min(ns.size(), begin + 2000);
            std::vector<std::string> args = {"MGET"};
            for (auto i = begin; i < end; ++i)
                args.push_back("{" + tag + "}:" + std::to_string(ns[i]));
            const auto got = cluster_->cli(index, args, 30s);
            EXPECT_TRUE(got.ok()) << got;
            const auto values = lines_of(got.out);
            EXPECT_EQ(values.size(), end - begin) << got;
            for (auto i = begin; i < end; ++i) {
                const auto want = "v-" + std::to_string(ns[i]);
                if (i - begin < values.size() && values[i - begin] == want) continue;
                ++count;
                if (missing->size() < 20) missing->push_back(args[i - begin + 1]);
            }
        }
        return count;
    }

    /// Every address the writer's client knew at the end is a sidecar port on 127.0.0.1.
    void expect_local_nodes(const nlohmann::json& summary) const {
        ASSERT_TRUE(summary.contains("nodes")) << summary.dump();
        EXPECT_FALSE(summary["nodes"].empty());
        for (const auto& n : summary["nodes"]) {
            const auto a = n.get<std::string>();
            const auto colon = a.rfind(':');
            EXPECT_EQ(a.substr(0, colon), "127.0.0.1") << a;
            EXPECT_TRUE(is_local_port(std::stol(a.substr(colon + 1)))) << a;
        }
    }

    /// Acknowledged writes between `from` and `to` (epoch ms), from the writer's timeline.
    static long acked_between(const nlohmann::json& summary, std::int64_t from, std::int64_t to) {
        long at_from = -1;
        long at_to = -1;
        for (const auto& p : summary.at("timeline")) {
            const auto t = p.at(0).get<std::int64_t>();
            const auto a = p.at(1).get<long>();
            if (t <= from) at_from = a;
            if (t <= to) at_to = a;
        }
        return at_from < 0 ? at_to : at_to - at_from;
    }

    /// Hash tags for `count` slots spread over the slots node `index` serves; `slots` gets them.
    std::vector<std::string> tags_in(std::size_t index, std::size_t count, std::vector<int>* slots,
                                     const std::string& prefix) const {
        const auto own = cluster_->slots_of(index);
        std::vector<std::string> tags;
        for (std::size_t i = 0; i < count; ++i) {
            const int slot = own.at(i * own.size() / count + 7);
            slots->push_back(slot);
            tags.push_back(redis_cluster::key_for_slot(slot, prefix));  // "{tag}:n" shares it
        }
        return tags;
    }

    std::unique_ptr<redis_cluster> cluster_;
    sidecar_process sidecar_;
    std::uint16_t first_port_ = 0;
    std::size_t ports_ = 0;
    child_process writer_{"cluster-writer"};  // declared last: stopped first
};

TEST_F(cluster_clients, node_cluster_clients_through_the_sidecar) {
    ASSERT_NO_FATAL_FAILURE(start());
    const auto r = run_process(
        {"node", "--test", "--test-reporter=spec", node_dir + "/cluster_clients.test.mjs"},
        node_env(), 60s);
    EXPECT_TRUE(r.ok()) << r;
    // Every test of the script ran and passed (node --test prints the totals).
    EXPECT_NE(r.out.find("ℹ pass 11"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ℹ fail 0"), std::string::npos) << r.out;
    EXPECT_GT(sidecar_.metric("redis_sidecar_cluster_rewrites_total{kind=\"topology\"}"), 0);
    EXPECT_EQ(sidecar_.metric("redis_sidecar_cluster_rewrite_errors_total"), 0);
}

// Five slots move from one primary to another while a client writes into them: three with
// migrate_slot() (the client's next write gets MOVED), two held half-way (IMPORTING /
// MIGRATING) for a second or so while the keys move in small batches, so new keys are answered
// with ASK by the old owner. ioredis follows both to the sidecar's local ports; not one write
// may fail, and every acknowledged one must be on the new owner.
TEST_F(cluster_clients, live_resharding_under_load_loses_no_command) {
    ASSERT_NO_FATAL_FAILURE(start());
    const auto from = cluster_->primaries().at(0);
    const auto to = cluster_->primaries().at(1);
    std::vector<int> slots;
    const auto tags = tags_in(from, 5, &slots, "reshard");
    ASSERT_NO_FATAL_FAILURE(start_writer(tags, {{"WRITER_RATE", "200"}}));
    ASSERT_TRUE(writer_goes_on(200, 10s));

    const auto redirects_before = sidecar_.metric(redirect_metric);
    const auto began = now_ms();
    for (std::size_t i = 0; i < slots.size(); ++i) {
        if (i % 2 == 0) {
            cluster_->migrate_slot(slots[i], from, to);
        } else {
            cluster_->begin_slot_migration(slots[i], from, to);
            const auto held_since = steady::now();
            std::size_t moved = 0;
            for (;;) {
                const auto n = cluster_->migrate_keys(slots[i], from, to, 50);
                moved += n;
                if (n == 0 && steady::now() - held_since > 1200ms) break;
                std::this_thread::sleep_for(100ms);
            }
            EXPECT_GT(moved, 0u) << "slot " << slots[i] << " had keys to move";
            cluster_->finish_slot_migration(slots[i], from, to);
            cluster_->wait_until_consistent();
        }
        // The client keeps going between the moves.
        ASSERT_TRUE(writer_goes_on(100, 10s)) << "after moving slot " << slots[i];
    }
    const auto ended = now_ms();
    figure("resharding of 5 slots", static_cast<double>(ended - began) / 1000.0, "s");
    ASSERT_TRUE(writer_goes_on(500, 15s));
    const auto summary = stop_writer();
    ASSERT_FALSE(summary.is_null());

    // Not one failed write.
    EXPECT_EQ(summary["failed"].get<long>(), 0) << summary["failures"].dump(2);
    // Writes went on during the resharding, not only around it.
    const auto during = acked_between(summary, began, ended);
    figure("writes acknowledged during the resharding", static_cast<double>(during), "");
    EXPECT_GT(during, 500) << summary["timeline"].dump();
    // Every acknowledged write is on the new owner (read there, not through the sidecar), and
    // nothing of those slots is left on the old one.
    for (std::size_t i = 0; i < tags.size(); ++i) {
        EXPECT_EQ(cluster_->owner_of(slots[i]), to) << cluster_->describe();
        const auto r = tag_of(summary, tags[i]);
        EXPECT_GT(r.acked, 200u) << tags[i];
        std::vector<std::string> missing;
        EXPECT_EQ(missing_on(to, tags[i], r, &missing), 0u)
            << "acknowledged writes missing on the new owner, e.g. "
            << ::testing::PrintToString(missing);
        const auto left =
            cluster_->cli(from, {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slots[i])});
        EXPECT_EQ(trim(left.out), "0") << left;
    }
    expect_local_nodes(summary);
    // The client was redirected and the sidecar rewrote those redirects: a MOVED or two per
    // slot and client connection, and an ASK for every new key written while a slot was held
    // half-way (200 writes/s per tag for more than a second each): hundreds.
    const auto redirects = sidecar_.metric(redirect_metric) - redirects_before;
    figure("redirects rewritten (MOVED + ASK)", redirects, "");
    EXPECT_GT(redirects, 200);
    EXPECT_EQ(sidecar_.metric("redis_sidecar_cluster_rewrite_errors_total"), 0);
}

// A coordinated CLUSTER FAILOVER of one shard while a client writes to three of its slots and to
// two slots of another shard. The old primary pauses writes, hands over and answers MOVED; the
// client follows to the new primary's local port. Allowed: failures of writes to the failing-over
// shard, at most 2% of the writes, and only inside the failover window (its start minus 0.5 s to
// its end plus 5 s). Not allowed: a failure on the other shard, a write acknowledged but missing
// on the new primary, a tag whose last 50 writes did not all succeed (the writes must resume).
TEST_F(cluster_clients, failover_of_a_shard_under_load) {
    ASSERT_NO_FATAL_FAILURE(start());
    const auto primary = cluster_->primaries().back();
    const auto replica = cluster_->replicas_of(primary).at(0);
    const auto other = cluster_->primaries().front();
    std::vector<int> slots;
    auto tags = tags_in(primary, 3, &slots, "fo");
    std::vector<int> other_slots;
    const auto other_tags = tags_in(other, 2, &other_slots, "calm");
    auto all_tags = tags;
    all_tags.insert(all_tags.end(), other_tags.begin(), other_tags.end());
    ASSERT_NO_FATAL_FAILURE(start_writer(all_tags, {{"WRITER_RATE", "200"}}));
    ASSERT_TRUE(writer_goes_on(1000, 10s));

    const auto redirects_before = sidecar_.metric(redirect_metric);
    const auto began = now_ms();
    cluster_->failover(replica);
    const auto ended = now_ms();
    figure("coordinated failover", static_cast<double>(ended - began) / 1000.0, "s");
    ASSERT_TRUE(writer_goes_on(2000, 20s)) << "the writes did not resume after the failover";
    const auto summary = stop_writer();
    ASSERT_FALSE(summary.is_null());

    const auto failed = summary["failed"].get<long>();
    const auto acked = summary["acked"].get<long>();
    figure("writes failed during the failover", static_cast<double>(failed), "");
    figure("writes acknowledged during the failover",
           static_cast<double>(acked_between(summary, began, ended)), "");
    EXPECT_LE(failed * 50, acked) << summary["failures"].dump(2);
    if (failed > 0) {
        EXPECT_GE(summary["first_failure_ms"].get<std::int64_t>(), began - 500)
            << summary["failures"].dump(2);
        EXPECT_LE(summary["last_failure_ms"].get<std::int64_t>(), ended + 5000)
            << summary["failures"].dump(2);
    }
    for (std::size_t i = 0; i < tags.size(); ++i) {
        EXPECT_EQ(cluster_->owner_of(slots[i]), replica) << cluster_->describe();
        const auto r = tag_of(summary, tags[i]);
        EXPECT_GT(r.acked, 500u) << tags[i];  // 200/s per tag for 3 s and more
        EXPECT_TRUE(r.failed.empty() || *r.failed.rbegin() + 50 < r.attempted)
            << tags[i] << ": the last writes failed: " << summary["failures"].dump(2);
        std::vector<std::string> missing;
        EXPECT_EQ(missing_on(replica, tags[i], r, &missing), 0u)
            << "acknowledged writes missing on the new primary, e.g. "
            << ::testing::PrintToString(missing);
    }
    for (std::size_t i = 0; i < other_tags.size(); ++i) {
        const auto r = tag_of(summary, other_tags[i]);
        EXPECT_TRUE(r.failed.empty()) << other_tags[i] << ": " << summary["failures"].dump(2);
        std::vector<std::string> missing;
        EXPECT_EQ(missing_on(other, other_tags[i], r, &missing), 0u)
            << ::testing::PrintToString(missing);
    }
    expect_local_nodes(summary);
    // The client's writes to the old primary came back as (rewritten) MOVED.
    EXPECT_GT(sidecar_.metric(redirect_metric), redirects_before);
    EXPECT_TRUE(eventually([&] { return sidecar_.readyz() == 200; }, 10s));
}

// A new primary joins and gets a slot: the sidecar gives it a local port by itself (periodic
// refresh, no client traffic needed), names that port for the slot in CLUSTER SLOTS, and a
// cluster client reads and writes the slot's keys there.
TEST_F(cluster_clients, a_node_added_gets_a_port) {
    ASSERT_NO_FATAL_FAILURE(start());
    const auto source = cluster_->primaries().at(1);
    const int slot = cluster_->slots_of(source).at(100);
    const auto key = redis_cluster::key_for_slot(slot, "added");
    ASSERT_EQ(trim(cli({"SET", key, "before-the-move"}).out), "OK");

    const auto began = steady::now();
    const auto added = cluster_->add_node(true);
    cluster_->migrate_slot(slot, source, added);
    ASSERT_EQ(cluster_->owner_of(slot), added);
    const auto host = cluster_->node(added).host_name;

    // /status lists it, with a local port.
    long local = -1;
    nlohmann::json status;
    EXPECT_TRUE(eventually(
        [&] {
            status = status_of(sidecar_);
            if (!status.contains("cluster")) return false;
            for (const auto& n : status["cluster"]["nodes"]) {
                if (n["node"].get<std::string>().rfind(host + ":", 0) == 0 &&
                    n.contains("clients")) {
                    local = n["local_port"].get<long>();
                    return true;
                }
            }
            return false;
        },
        20s, 200ms))
        << status.dump(2);
    ASSERT_TRUE(is_local_port(local)) << status.dump(2);
    figure("new node listed with a local port after", seconds_since(began), "s");

    // CLUSTER SLOTS through the sidecar names that port for the slot.
    std::string slots_reply;
    EXPECT_TRUE(eventually(
        [&] {
            const auto r = cli({"--json", "CLUSTER", "SLOTS"}, false);
            slots_reply = r.out;
            const auto j = nlohmann::json::parse(r.out, nullptr, false);
            if (!j.is_array()) return false;
            for (const auto& range : j) {
                if (range.at(0).get<int>() <= slot && slot <= range.at(1).get<int>()) {
                    return range.at(2).at(0) == "127.0.0.1" &&
                           range.at(2).at(1).get<long>() == local;
                }
            }
            return false;
        },
        20s, 200ms))
        << "slot " << slot << ", port " << local << ":\n"
        << slots_reply;
    for (const auto& n : cluster_->nodes()) {
        EXPECT_EQ(slots_reply.find(n.host_name), std::string::npos) << slots_reply;
    }

    // A cluster client (redis-cli -c from the main port) reads the moved key and writes a new
    // one in that slot; both are on the new node.
    const auto get = cli({"GET", key});
    EXPECT_EQ(last_line(get.out), "before-the-move") << get;
    const auto second = "{" + key + "}:second";
    // The main port (the seed node) does not serve the slot: redis-cli gets a (rewritten) MOVED.
    const auto redirects_before = sidecar_.metric(redirect_metric);
    const auto set = cli({"SET", second, "on-the-new-node"});
    EXPECT_EQ(last_line(set.out), "OK") << set;
    EXPECT_GT(sidecar_.metric(redirect_metric), redirects_before);
    const auto moved = cli({"SET", second, "x"}, false);
    EXPECT_EQ(trim(moved.out),
              "MOVED " + std::to_string(slot) + " 127.0.0.1:" + std::to_string(local))
        << moved;
    EXPECT_EQ(last_line(cli({"GET", second}).out), "on-the-new-node");
    EXPECT_EQ(trim(cluster_->cli(added, {"GET", second}).out), "on-the-new-node");
    EXPECT_EQ(trim(cluster_->cli(added, {"GET", key}).out), "before-the-move");
    // Its own port serves the slot too.
    const auto direct =
        run_process({"redis-cli", "-p", std::to_string(local), "GET", second}, base_env(), 10s);
    EXPECT_EQ(trim(direct.out), "on-the-new-node") << direct;
    EXPECT_EQ(sidecar_.readyz(), 200);
}

// A primary dies (SIGKILL); its replica is elected. A client that was writing to its slots the
// whole time resumes through the sidecar (after its and the sidecar's topology refresh), a new
// cluster client writes there, and readiness is back. Writes may fail between the kill and a few
// seconds after the promotion; after that every write must succeed and be on the new primary.
TEST_F(cluster_clients, a_killed_node_is_followed) {
    ASSERT_NO_FATAL_FAILURE(start());
    // Not the seed: the main port maps to the configured endpoint, the seed node.
    const auto victim = cluster_->primaries().back();
    ASSERT_NE(cluster_->node(victim).address(), cluster_->seed());
    std::vector<int> slots;
    const auto tags = tags_in(victim, 3, &slots, "kill");
    ASSERT_NO_FATAL_FAILURE(start_writer(tags, {{"WRITER_RATE", "100"}}));
    ASSERT_TRUE(writer_goes_on(300, 10s));

    const auto killed_at = now_ms();
    cluster_->kill(victim);  // returns once a replica has been elected and all agree
    const auto promoted_at = now_ms();
    figure("kill to promotion", static_cast<double>(promoted_at - killed_at) / 1000.0, "s");
    const auto successor = cluster_->owner_of(slots.front());
    ASSERT_NE(successor, victim);

    // A new cluster client writes to every one of those slots through the main port.
    for (const auto slot : slots) {
        const auto key = redis_cluster::key_for_slot(slot, "after-kill");
        process_result last;
        EXPECT_TRUE(eventually(
            [&] {
                last = cli({"SET", key, "written"});
                return last.ok() && last_line(last.out) == "OK";
            },
            30s, 500ms))
            << last;
        EXPECT_EQ(trim(cluster_->cli(successor, {"GET", key}).out), "written");
    }
    EXPECT_TRUE(eventually([&] { return sidecar_.readyz() == 200; }, 30s))
        << status_of(sidecar_).dump(2);
    const auto ready_at = now_ms();
    figure("kill to ready and writable", static_cast<double>(ready_at - killed_at) / 1000.0, "s");

    // The long-lived client resumed.
    ASSERT_TRUE(writer_goes_on(500, 20s)) << "the writer did not resume after the kill";
    const auto summary = stop_writer();
    ASSERT_FALSE(summary.is_null());
    figure("writes failed around the kill", summary["failed"].get<double>(), "");
    if (summary["failed"].get<long>() > 0) {
        EXPECT_GE(summary["first_failure_ms"].get<std::int64_t>(), killed_at)
            << summary["failures"].dump(2);
        EXPECT_LE(summary["last_failure_ms"].get<std::int64_t>(), promoted_at + 20000)
            << summary["failures"].dump(2);
    }
    EXPECT_GT(acked_between(summary, ready_at, summary["ended_ms"].get<std::int64_t>()), 300);
    std::size_t lost_before = 0;
    for (const auto& tag : tags) {
        const auto r = tag_of(summary, tag);
        // Everything after the last failure succeeded, and is on the new primary. (Writes
        // acknowledged just before a SIGKILL may not have reached the replica: counted only.)
        const std::size_t after = r.failed.empty() ? 0 : *r.failed.rbegin() + 1;
        EXPECT_GT(r.attempted, after + 100) << tag << " did not resume";
        std::vector<std::string> missing;
        EXPECT_EQ(missing_on(successor, tag, r, &missing, after), 0u)
            << tag << ": acknowledged writes after the failover missing: "
            << ::testing::PrintToString(missing);
        std::vector<std::string> ignored;
        lost_before += missing_on(successor, tag, r, &ignored, 0);
    }
    figure("acknowledged writes lost with the killed primary", static_cast<double>(lost_before),
           "");
    expect_local_nodes(summary);
}

}  // namespace
}  // namespace redis_sidecar::cluster_test
