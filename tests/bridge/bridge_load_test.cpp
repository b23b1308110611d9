// Load through the bridge, bounded in count and time: redis-benchmark (a connection per request,
// and pipelined), a 100 MB value, 1,000 concurrent clients, and the max-clients bound.

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "bridge_fixture.hpp"

namespace redis_sidecar::bridge_test {
namespace {

class bridge_load : public bridge_fixture {};

/// One line of redis-benchmark --csv output: "test","rps",...
struct benchmark_row {
    double rps = 0;
    double avg_latency_ms = 0;
};

std::map<std::string, benchmark_row> parse_benchmark_csv(const std::string& out) {
    std::map<std::string, benchmark_row> rows;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line.rfind("\"test\"", 0) == 0) continue;
        std::vector<std::string> fields;
        std::string field;
        std::istringstream cells(line);
        while (std::getline(cells, field, ',')) {
            if (field.size() >= 2 && field.front() == '"' && field.back() == '"') {
                field = field.substr(1, field.size() - 2);
            }
            fields.push_back(field);
        }
        if (fields.size() < 3) continue;
        benchmark_row row;
        row.rps = std::stod(fields[1]);
        row.avg_latency_ms = std::stod(fields[2]);
        rows[fields[0]] = row;
    }
    return rows;
}

void expect_clean_benchmark(const process_result& r, const std::vector<std::string>& tests) {
    ASSERT_TRUE(r.ok()) << r;
    // redis-benchmark reports failed requests and error replies on stderr ("Error from server").
    EXPECT_EQ(r.err.find("rror"), std::string::npos) << r;
    const auto rows = parse_benchmark_csv(r.out);
    EXPECT_EQ(rows.size(), tests.size()) << r.out;
    for (const auto& t : tests) {
        const auto it = rows.find(t);
        ASSERT_NE(it, rows.end()) << "no CSV row for " << t << "\n" << r.out;
        EXPECT_GT(it->second.rps, 0.0) << t;
        EXPECT_GT(it->second.avg_latency_ms, 0.0) << t;
    }
}

TEST_F(bridge_load, benchmark_with_a_new_connection_per_request) {
    ASSERT_NO_FATAL_FAILURE(start());
    const long long connects_before =
        std::stoll(server_info_field("stats", "total_connections_received"));
    const auto r = run_process({"redis-benchmark", "-p", std::to_string(port()), "-n", "2000", "-c",
                                "10", "-k", "0", "-t", "ping,set,get", "--csv"},
                               base_env(), 60s);
    expect_clean_benchmark(r, {"PING_INLINE", "PING_MBULK", "SET", "GET"});
    // Without -r every SET writes the one key "key:__rand_int__" (3-byte value "VXK").
    EXPECT_EQ(trim(redis().cli({"GET", "key:__rand_int__"}).out), "VXK");
    // 8,000 local connections, served by a handful of pooled upstream ones: the pool at work.
    const long long connects_after =
        std::stoll(server_info_field("stats", "total_connections_received"));
    EXPECT_LT(connects_after - connects_before, 100) << "upstream connections opened";
}

TEST_F(bridge_load, benchmark_pipelined) {
    ASSERT_NO_FATAL_FAILURE(start());
    const auto r = run_process({"redis-benchmark", "-p", std::to_string(port()), "-P", "16", "-n",
                                "50000", "-c", "20", "-t", "set,get", "-r", "1000", "--csv"},
                               base_env(), 60s);
    expect_clean_benchmark(r, {"SET", "GET"});
    // -r 1000: keys key:000000000000 .. key:000000000999, all written with 3-byte values.
    const auto keys = std::stoll(trim(redis().cli({"DBSIZE"}).out));
    EXPECT_GT(keys, 900);
    EXPECT_LE(keys, 1000);
    EXPECT_EQ(server_command_calls("set"), 50000);
    EXPECT_EQ(server_command_calls("get"), 50000);
}

TEST_F(bridge_load, hundred_megabyte_value_round_trip) {
    ASSERT_NO_FATAL_FAILURE(start());
    constexpr std::size_t size = 100u * 1024 * 1024;
    std::string value(size, '\0');
    std::mt19937_64 rng(42);
    for (std::size_t i = 0; i + 8 <= size; i += 8) {
        const auto x = rng();
        std::memcpy(value.data() + i, &x, 8);
    }
    // Binary-safe: CRLF and RESP type bytes inside the payload.
    const std::string_view resp_like = "\r\n$-1\r\n*3\r\n";
    value.replace(1000, resp_like.size(), resp_like);
    ASSERT_EQ(value.size(), size);

    const auto started = std::chrono::steady_clock::now();
    auto c = client();
    c.send_raw("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$" + std::to_string(size) + "\r\n", 5s);
    c.send_raw(value, 60s);
    c.send_raw("\r\n", 5s);
    EXPECT_EQ(c.read(60s).text(), "OK");
    EXPECT_EQ(redis().cli({"STRLEN", "big"}).out, std::to_string(size) + "\n");

    c.send({"GET", "big"});
    const auto got = c.read(60s);
    ASSERT_EQ(got.type, '$');
    ASSERT_EQ(got.str.size(), size);
    EXPECT_TRUE(got.str == value) << "the value came back changed";
    // And the connection is fine afterwards.
    EXPECT_EQ(c.call({"PING"}).text(), "PONG");
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_LT(took, 60s);
    std::cerr << "100 MB SET + GET through the bridge took "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
}

/// Raises this process's descriptor limit (1,000 clients need 1,000 sockets).
void raise_fd_limit(rlim_t wanted) {
    rlimit rl{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < wanted) {
        ASSERT_GE(rl.rlim_max, wanted) << "hard RLIMIT_NOFILE too low for this test";
        rl.rlim_cur = wanted;
        ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
}

TEST_F(bridge_load, thousand_concurrent_clients) {
    constexpr int clients = 1000;
    ASSERT_NO_FATAL_FAILURE(raise_fd_limit(clients + 200));
    bridge_options options;
    // One upstream connection per active client (the design's lease) and enough time for the
    // pool to open them at its connect rate.
    options.env["REDIS_MAX_CONNECTIONS"] = std::to_string(clients);
    options.env["REDIS_CONNECTION_TIMEOUT"] = "30s";
    ASSERT_NO_FATAL_FAILURE(start(options));

    const auto started = std::chrono::steady_clock::now();
    const auto deadline = started + 45s;
    // All connected at once before anyone sends a byte: 1,000 sessions live in the sidecar.
    std::vector<resp_client> conns;
    conns.reserve(clients);
    for (int i = 0; i < clients; ++i) conns.push_back(client());
    for (int i = 0; i < clients; ++i) {
        conns[i].send({"SET", "client:" + std::to_string(i), "value-" + std::to_string(i)});
        conns[i].send({"GET", "client:" + std::to_string(i)});
    }

    // Read every client's two replies, in whatever order the clients finish.
    std::vector<std::string> buffers(clients);
    std::vector<bool> done(clients, false);
    int finished = 0;
    std::vector<pollfd> fds(clients);
    while (finished < clients && std::chrono::steady_clock::now() < deadline) {
        for (int i = 0; i < clients; ++i) fds[i] = {done[i] ? -1 : conns[i].fd(), POLLIN, 0};
        const int ready = ::poll(fds.data(), fds.size(), 200);
        ASSERT_GE(ready, 0) << std::strerror(errno);
        for (int i = 0; i < clients; ++i) {
            if (done[i] || fds[i].revents == 0) continue;
            char chunk[4096];
            const auto n = ::recv(fds[i].fd, chunk, sizeof chunk, MSG_DONTWAIT);
            ASSERT_GT(n, 0) << "client " << i << " closed early; had '" << buffers[i] << "'";
            buffers[i].append(chunk, static_cast<std::size_t>(n));
            std::size_t pos = 0;
            const auto set_reply = parse_reply(buffers[i], pos);
            if (!set_reply) continue;
            const auto get_reply = parse_reply(buffers[i], pos);
            if (!get_reply) continue;
            ASSERT_EQ(set_reply->text(), "OK") << "client " << i;
            ASSERT_EQ(get_reply->text(), "\"value-" + std::to_string(i) + "\"") << "client " << i;
            ASSERT_EQ(pos, buffers[i].size()) << "client " << i << " got extra bytes";
            done[i] = true;
            ++finished;
            conns[i].close();
        }
    }
    const auto took = std::chrono::steady_clock::now() - started;
    ASSERT_EQ(finished, clients) << "clients answered within the bound";
    EXPECT_EQ(trim(redis().cli({"DBSIZE"}).out), std::to_string(clients));
    EXPECT_EQ(trim(redis().cli({"GET", "client:777"}).out), "value-777");
    std::cerr << clients << " concurrent clients served in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
    // The sidecar keeps serving afterwards.
    EXPECT_EQ(trim(cli({"PING"}).out), "PONG");
}

TEST_F(bridge_load, clients_over_the_bound_are_refused) {
    bridge_options options;
    options.env["REDIS_SIDECAR_MAX_CLIENTS"] = "5";
    ASSERT_NO_FATAL_FAILURE(start(options));
    // The readiness PINGs of start() have left: wait until all 5 places are free again.
    std::vector<resp_client> held;
    ASSERT_TRUE(eventually(
        [&] {
            held.clear();
            for (int i = 0; i < 5; ++i) {
                auto c = i % 2 == 0 ? client() : resp_client::unix_socket(socket_path());
                c.send({"PING"});
                if (c.read().text() != "PONG") return false;
                held.push_back(std::move(c));
            }
            return true;
        },
        10s));

    for (const bool use_unix : {false, true}) {
        auto sixth = use_unix ? resp_client::unix_socket(socket_path()) : client();
        EXPECT_EQ(sixth.read().text(), "ERR max number of clients reached") << use_unix;
        EXPECT_TRUE(sixth.wait_closed(5s)) << use_unix;
    }
    // The five are unaffected.
    for (auto& c : held) EXPECT_EQ(c.call({"ECHO", "still here"}).text(), "\"still here\"");

    // One leaves: a new client gets its place.
    held.pop_back();
    EXPECT_TRUE(eventually(
        [&] {
            auto c = client();
            c.send({"PING"});
            return c.read().text() == "PONG";
        },
        10s));
}

}  // namespace
}  // namespace redis_sidecar::bridge_test
