#include "support/eventually.hpp"
#include "support/net.hpp"
#include "support/pki.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace redis_sidecar::testing {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

template <class F>
std::chrono::milliseconds time_it(F f) {
    const auto start = clock::now();
    f();
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
}

/// Every test must leave no child behind: not running, not a zombie.
class support_test : public ::testing::Test {
  protected:
    void TearDown() override { EXPECT_TRUE(no_child_processes()); }
};

// --- temp_dir --------------------------------------------------------------------------------

TEST_F(support_test, temp_dir_writes_files_with_exact_mode_and_is_removed) {
    std::string path;
    {
        temp_dir dir;
        path = dir.path();
        EXPECT_TRUE(std::filesystem::is_directory(path));
        const std::string file = dir.write_file("secret", "hunter2\n");
        EXPECT_EQ(file, path + "/secret");
        EXPECT_EQ(read_file(file), "hunter2\n");
        struct stat st {};
        ASSERT_EQ(::stat(file.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0600u);
        dir.write_file("public", "x", 0644);
        ASSERT_EQ(::stat(dir.file("public").c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0644u);
        std::filesystem::create_directories(path + "/a/b");
        dir.write_file("a/b/c", "deep");

        temp_dir moved = std::move(dir);
        EXPECT_EQ(moved.path(), path);
        EXPECT_TRUE(dir.path().empty());  // NOLINT(bugprone-use-after-move): checking the move
    }
    EXPECT_FALSE(std::filesystem::exists(path));
}

// --- run_process -----------------------------------------------------------------------------

TEST_F(support_test, run_process_captures_out_err_and_exit_code) {
    auto r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"}, base_env(), 10s);
    EXPECT_EQ(r.exit_code, 3) << r;
    EXPECT_EQ(r.term_signal, 0);
    EXPECT_FALSE(r.timed_out);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
}

TEST_F(support_test, run_process_uses_exactly_the_given_environment) {
    auto r = run_process({"/usr/bin/env"}, {{"ONLY", "this"}, {"AND", "that=1"}}, 10s);
    ASSERT_TRUE(r.ok()) << r;
    EXPECT_EQ(r.out, "AND=that=1\nONLY=this\n");

    env_map env = base_env();
    EXPECT_TRUE(env.count("PATH"));
    for (const auto& [k, v] : env) {
        EXPECT_TRUE(k == "PATH" || k == "HOME" || k == "TMPDIR" || k.ends_with("SAN_OPTIONS")) << k;
    }
}

TEST_F(support_test, run_process_writes_stdin_then_closes_it) {
    std::string input(1 << 20, 'i');
    for (std::size_t i = 0; i < input.size(); i += 97) input[i] = '\n';
    auto r = run_process({"cat"}, base_env(), 30s, input);
    ASSERT_TRUE(r.ok()) << r.describe().substr(0, 300);
    EXPECT_EQ(r.out.size(), input.size());
    EXPECT_TRUE(r.out == input);
}

TEST_F(support_test, run_process_handles_large_output_on_both_pipes) {
    // 1 MiB to each pipe, interleaved: blocking on one pipe while the child fills the other
    // would deadlock.
    auto r = run_process({"sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' x | tee /dev/stderr"},
                         base_env(), 30s);
    ASSERT_TRUE(r.ok()) << r.err.substr(0, 200);
    EXPECT_EQ(r.out.size(), 1048576u);
    EXPECT_EQ(r.err.size(), 1048576u);
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), 'x'), 1048576);
}

TEST_F(support_test, run_process_kills_on_timeout_within_bound) {
    process_result r;
    auto took = time_it([&] { r = run_process({"sleep", "30"}, base_env(), 300ms); });
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.term_signal, SIGKILL);
    EXPECT_EQ(r.exit_code, -1);
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 2s);
}

TEST_F(support_test, run_process_kills_the_whole_process_group_on_timeout) {
    // The grandchild holds the pipes too; unless it dies as well, reading would not end.
    process_result r;
    auto took = time_it([&] {
        r = run_process({"sh", "-c", "sleep 30 & echo started; sleep 30"}, base_env(), 300ms);
    });
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.out, "started\n");
    EXPECT_LT(took, 2s);
}

TEST_F(support_test, run_process_does_not_wait_for_leftover_background_children) {
    process_result r;
    auto took = time_it([&] {
        r = run_process({"sh", "-c", "sleep 30 & exit 0"}, base_env(), 10s);
    });
    EXPECT_TRUE(r.ok()) << r;
    EXPECT_LT(took, 2s);
}

TEST_F(support_test, run_process_reports_the_terminating_signal) {
    auto r = run_process({"sh", "-c", "kill -TERM $$"}, base_env(), 10s);
    EXPECT_EQ(r.term_signal, SIGTERM) << r;
    EXPECT_EQ(r.exit_code, -1);
}

TEST_F(support_test, run_process_throws_for_a_missing_program) {
    EXPECT_THROW(run_process({"no-such-program-xyz"}, base_env(), 1s), std::runtime_error);
    EXPECT_THROW(run_process({"/nonexistent/prog"}, base_env(), 1s), std::system_error);
}

// --- child_process ---------------------------------------------------------------------------

TEST_F(support_test, child_process_stops_and_reaps_on_destruction) {
    pid_t pid = -1;
    {
        child_process child("sleeper");
        child.start({"sleep", "30"}, base_env());
        pid = child.pid();
        ASSERT_GT(pid, 0);
        EXPECT_TRUE(child.running());
        EXPECT_EQ(child_pids("sleep"), std::vector<pid_t>{pid});
        EXPECT_EQ(child.wait_exit(50ms), std::nullopt);  // still running at the deadline
    }
    EXPECT_EQ(::kill(pid, 0), -1);  // gone, and (checked in TearDown) not a zombie either
}

TEST_F(support_test, child_process_reports_exit_code_and_output) {
    child_process child;
    child.start({"sh", "-c", "echo to-out; echo to-err >&2; exit 7"}, base_env());
    EXPECT_EQ(child.wait_exit(10s), 7);
    EXPECT_FALSE(child.running());
    EXPECT_EQ(child.out(), "to-out\n");
    EXPECT_EQ(child.err(), "to-err\n");
    EXPECT_EQ(child.wait_exit(0ms), 7);  // the stored status
}

TEST_F(support_test, child_process_signal_exit_is_128_plus_signal) {
    child_process child;
    child.start({"sleep", "30"}, base_env());
    child.send_signal(SIGINT);
    EXPECT_EQ(child.wait_exit(10s), 128 + SIGINT);
}

TEST_F(support_test, child_process_stop_escalates_to_sigkill) {
    child_process child;
    // An ignored SIGTERM survives exec, so sleep itself ignores it.
    child.start({"sh", "-c", "trap '' TERM; echo ready; exec sleep 30"}, base_env());
    ASSERT_TRUE(child.wait_for_output("ready", 10s));
    std::optional<int> status;
    auto took = time_it([&] { status = child.stop(300ms); });
    EXPECT_EQ(status, 128 + SIGKILL);
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 2s);
}

TEST_F(support_test, child_process_stop_tells_a_sanitizer_leak_check_hang_from_a_program_hang) {
    // LeakSanitizer's hang at exit, reproduced: the process ignores SIGTERM, and a child that
    // shares its executable (python3 forking itself) holds it in a ptrace stop, as the
    // sanitizer's StopTheWorld tracer does. stop() must recognise it and count it as exit 0;
    // child_process_stop_escalates_to_sigkill shows that any other hang is 128 + SIGKILL.
    const std::string script = R"(
import ctypes, os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
parent = os.getpid()
if os.fork() == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, parent, None, None) != 0:  # PTRACE_ATTACH: the parent stops
        print("attach failed", ctypes.get_errno(), flush=True)
        os._exit(1)
    os.waitpid(parent, 0x40000000)  # __WALL: the attach stop
    print("traced", flush=True)
    time.sleep(30)
    os._exit(0)
time.sleep(30)
)";
    child_process child("leak-check");
    child.start({"python3", "-c", script}, base_env());
    ASSERT_TRUE(child.wait_for_output("traced", 10s)) << child.out() << child.err();
    EXPECT_EQ(child.stop(300ms), 0);
}

TEST_F(support_test, child_process_stopped_child_is_still_cleaned_up) {
    child_process child;
    child.start({"sleep", "30"}, base_env());
    child.send_signal(SIGSTOP);
    std::optional<int> status;
    auto took = time_it([&] { status = child.stop(); });
    EXPECT_EQ(status, 128 + SIGTERM);  // SIGCONT let it act on the SIGTERM
    EXPECT_LT(took, 1s);
}

TEST_F(support_test, child_process_can_be_restarted_and_appends_output) {
    child_process child;
    child.start({"echo", "one"}, base_env());
    EXPECT_EQ(child.wait_exit(10s), 0);
    child.start({"echo", "two"}, base_env());
    EXPECT_EQ(child.wait_exit(10s), 0);
    EXPECT_EQ(child.out(), "one\ntwo\n");
}

TEST_F(support_test, leftover_children_are_detected) {
    child_process child;
    child.start({"true"}, base_env());
    // Exited but not reaped yet: a zombie still counts.
    EXPECT_TRUE(eventually([&] { return !no_child_processes(); }, 5s));
    EXPECT_EQ(child_pids("true"), std::vector<pid_t>{child.pid()});
    EXPECT_EQ(child.wait_exit(5s), 0);
    EXPECT_TRUE(no_child_processes());
}

/// Pids of all processes (anyone's children) whose command line is exactly `argv`.
std::vector<pid_t> processes_with_cmdline(const std::vector<std::string>& argv) {
    std::string wanted;
    for (const auto& a : argv) wanted += a + '\0';
    std::vector<pid_t> found;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        if (read_file("/proc/" + name + "/cmdline") == wanted) found.push_back(std::stoi(name));
    }
    return found;
}

TEST_F(support_test, children_die_with_a_crashing_test_process) {
    // A unique argument, so that only our sleeper can match.
    const std::vector<std::string> argv{
        "sleep", "3000." + std::to_string(::getpid()) + std::to_string(free_tcp_port())};
    // "fast" (plain fork) style: the dying child then sees `tmp`, so that the temp dir its
    // child_process makes (and cannot remove, dying) is inside one we remove.
    temp_dir tmp;
    GTEST_FLAG_SET(death_test_style, "fast");
    EXPECT_DEATH(
        {
            ::setenv("TMPDIR", tmp.path().c_str(), 1);
            child_process child;
            child.start(argv, base_env());
            std::abort();  // no destructor runs: only PR_SET_PDEATHSIG can clean up
        },
        "");
    EXPECT_TRUE(eventually([&] { return processes_with_cmdline(argv).empty(); }, 5s))
        << "orphaned child survived its crashed parent";
}

// --- eventually, ports, silent server --------------------------------------------------------

TEST_F(support_test, eventually_polls_until_true_or_deadline) {
    int calls = 0;
    EXPECT_TRUE(eventually([&] { return ++calls == 3; }, 5s, 1ms));
    EXPECT_EQ(calls, 3);
    bool result = true;
    auto took = time_it([&] { result = eventually([] { return false; }, 100ms); });
    EXPECT_FALSE(result);
    EXPECT_GE(took, 100ms);
    EXPECT_LT(took, 1s);
}

TEST_F(support_test, free_port_is_bindable_and_closed_port_refuses) {
    const std::uint16_t port = free_tcp_port();
    EXPECT_NE(port, 0);
    unique_fd fd(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

    EXPECT_EQ(closed_port(), closed_port());
    EXPECT_FALSE(connect_tcp("127.0.0.1", closed_port(), 1s));
    bool up = true;
    auto took = time_it([&] { up = wait_for_tcp_port("127.0.0.1", closed_port(), 200ms); });
    EXPECT_FALSE(up);
    EXPECT_LT(took, 1s);
}

TEST_F(support_test, silent_server_accepts_and_never_answers) {
    silent_tcp_server server;
    EXPECT_TRUE(wait_for_tcp_port("127.0.0.1", server.port(), 5s));
    unique_fd conn = connect_tcp("localhost", server.port(), 5s);
    ASSERT_TRUE(conn);
    EXPECT_TRUE(eventually([&] { return server.accepted() >= 2; }, 5s));
    ASSERT_EQ(::send(conn.get(), "PING\r\n", 6, MSG_NOSIGNAL), 6);
    EXPECT_TRUE(eventually([&] { return server.bytes_received() == 6; }, 5s));

    timeval tv{0, 200'000};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::array<char, 16> buf{};
    ssize_t n = 0;
    auto took = time_it([&] { n = ::recv(conn.get(), buf.data(), buf.size(), 0); });
    EXPECT_EQ(n, -1);  // no data and no EOF: the timeout expired
    EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
    EXPECT_GE(took, 150ms);
}

// --- test_pki --------------------------------------------------------------------------------

TEST_F(support_test, pki_makes_a_verifiable_chain) {
    test_pki& pki = test_pki::shared();
    EXPECT_EQ(&pki, &test_pki::shared());
    for (const auto& name : {test_pki::default_server, test_pki::wrong_server}) {
        auto r =
            run_process({"openssl", "verify", "-CAfile", pki.ca_cert(), pki.server_cert(name).cert},
                        base_env(), 10s);
        EXPECT_TRUE(r.ok()) << r;
    }
    auto r = run_process({"openssl", "verify", "-purpose", "sslclient", "-CAfile", pki.ca_cert(),
                          pki.client_cert().cert},
                         base_env(), 10s);
    EXPECT_TRUE(r.ok()) << r;
    r = run_process(
        {"openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", pki.server_cert().cert},
        base_env(), 10s);
    EXPECT_NE(r.out.find("DNS:localhost, IP Address:127.0.0.1"), std::string::npos) << r;
    EXPECT_THROW(pki.server_cert("nope"), std::out_of_range);

    std::unique_ptr<test_pki> second;
    auto took = time_it([&] { second = std::make_unique<test_pki>(); });
    std::cout << "[timing] test_pki (CA + 3 certificates): " << took.count() << " ms\n";
    EXPECT_NE(second->ca_cert(), pki.ca_cert());
    r = run_process({"openssl", "verify", "-CAfile", pki.ca_cert(), second->server_cert().cert},
                    base_env(), 10s);
    EXPECT_FALSE(r.ok()) << "a second PKI must not be trusted by the first CA";

    const cert_files other = pki.issue_server_cert("redis.internal", {"redis.internal"}, {});
    EXPECT_EQ(pki.server_cert("redis.internal").cert, other.cert);
    EXPECT_TRUE(std::filesystem::exists(other.key));
}

// --- redis_server ----------------------------------------------------------------------------

TEST_F(support_test, plain_server_answers_via_cli) {
    redis_server server;
    server.start();
    EXPECT_NE(server.port(), 0);
    EXPECT_TRUE(server.running());
    auto r = server.cli({"PING"});
    EXPECT_TRUE(r.ok()) << r;
    EXPECT_EQ(trim(r.out), "PONG");
    EXPECT_EQ(trim(server.cli({"SET", "k", "v"}).out), "OK");
    EXPECT_EQ(trim(server.cli({"GET", "k"}).out), "v");
    auto bad = server.cli({"GET"});
    EXPECT_EQ(bad.exit_code, 1);  // -e: an error reply is a failure, printed on stderr
    EXPECT_NE(bad.err.find("wrong number of arguments"), std::string::npos) << bad;
    EXPECT_NE(server.log().find("Ready to accept connections"), std::string::npos);
    EXPECT_EQ(child_pids("redis-server"), std::vector<pid_t>{server.pid()});
}

TEST_F(support_test, tls_server_with_requirepass) {
    redis_server_options options;
    options.tls = true;
    options.requirepass = "s3cr\"et pass";  // quoting in redis.conf
    redis_server server(options);
    auto took = time_it([&] { server.start(); });
    std::cout << "[timing] TLS redis-server start (config + spawn + PING): " << took.count()
              << " ms\n";
    auto r = server.cli({"PING"});
    EXPECT_TRUE(r.ok()) << r;
    EXPECT_EQ(trim(r.out), "PONG");

    // Plain text against the TLS port fails.
    auto plain = run_process({"redis-cli", "-e", "-p", std::to_string(server.port()), "PING"},
                             base_env(), 10s);
    EXPECT_FALSE(plain.ok()) << plain;

    auto wrong =
        run_process({"redis-cli", "-e", "-p", std::to_string(server.port()), "--tls", "--cacert",
                     server.pki().ca_cert(), "--no-auth-warning", "-a", "wrong", "PING"},
                    base_env(), 10s);
    EXPECT_FALSE(wrong.ok());
    EXPECT_NE(wrong.output().find("WRONGPASS"), std::string::npos) << wrong;
}

TEST_F(support_test, acl_user_can_log_in) {
    redis_server_options options;
    options.acl_users = {"user app on >app-secret-password ~* +@all",
                         "user reader on >reader-pw ~* +@read"};
    redis_server server(options);
    server.start();
    auto r = server.cli_as("app", "app-secret-password", {"SET", "k", "v"});
    EXPECT_TRUE(r.ok()) << r;
    EXPECT_EQ(trim(server.cli_as("app", "app-secret-password", {"ACL", "WHOAMI"}).out), "app");
    auto denied = server.cli_as("reader", "reader-pw", {"SET", "k", "w"});
    EXPECT_NE(denied.output().find("NOPERM"), std::string::npos) << denied;
    auto wrong = server.cli_as("app", "nope", {"PING"});
    EXPECT_NE(wrong.output().find("WRONGPASS"), std::string::npos) << wrong;
}

TEST_F(support_test, tls_server_requiring_client_certificates) {
    redis_server_options options;
    options.tls = true;
    options.tls_auth_clients = true;
    redis_server server(options);
    server.start();
    auto r = server.cli({"PING"});
    EXPECT_TRUE(r.ok()) << r;
    EXPECT_EQ(trim(r.out), "PONG");

    auto no_cert = run_process({"redis-cli", "-e", "-p", std::to_string(server.port()), "--tls",
                                "--cacert", server.pki().ca_cert(), "PING"},
                               base_env(), 10s);
    EXPECT_FALSE(no_cert.ok()) << no_cert;
    EXPECT_EQ(no_cert.out.find("PONG"), std::string::npos);
}

process_result s_client(std::uint16_t port, const std::string& hostname, const test_pki& pki) {
    // Empty stdin: s_client exits right after the handshake.
    return run_process(
        {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-verify_hostname",
         hostname, "-CAfile", pki.ca_cert(), "-verify_return_error", "-brief"},
        base_env(), 10s);
}

TEST_F(support_test, server_certificates_verify_by_hostname) {
    redis_server_options options;
    options.tls = true;
    redis_server good(options);
    options.cert_name = test_pki::wrong_server;
    redis_server wrong(options);
    good.start();
    wrong.start();

    auto ok = s_client(good.port(), "localhost", good.pki());
    EXPECT_TRUE(ok.ok()) << ok;
    EXPECT_NE(ok.output().find("Verification: OK"), std::string::npos) << ok;

    auto bad = s_client(wrong.port(), "localhost", wrong.pki());
    EXPECT_FALSE(bad.ok()) << bad;
    EXPECT_NE(bad.output().find("hostname mismatch"), std::string::npos) << bad;

    // redis-cli checks the chain but not the host name: it still connects to the wrong cert.
    EXPECT_TRUE(wrong.cli({"PING"}).ok());
}

TEST_F(support_test, restart_keeps_the_port) {
    redis_server_options options;
    options.tls = true;
    redis_server server(options);
    server.start();
    const std::uint16_t port = server.port();
    const pid_t first = server.pid();
    server.restart();
    EXPECT_EQ(server.port(), port);
    EXPECT_NE(server.pid(), first);
    EXPECT_TRUE(server.cli({"PING"}).ok());

    server.kill(SIGKILL);
    EXPECT_FALSE(server.running());
    EXPECT_FALSE(connect_tcp("127.0.0.1", port, 1s));
    server.start();
    EXPECT_EQ(server.port(), port);
    EXPECT_EQ(trim(server.cli({"PING"}).out), "PONG");
}

TEST_F(support_test, stopped_server_answers_nothing_until_continued) {
    redis_server server;
    server.start();
    server.kill(SIGSTOP);
    EXPECT_TRUE(server.running());
    auto r = server.cli({"PING"}, 300ms);
    EXPECT_TRUE(r.timed_out) << r;
    server.kill(SIGCONT);
    EXPECT_EQ(trim(server.cli({"PING"}).out), "PONG");
    server.kill(SIGSTOP);  // and the destructor still cleans up a stopped server
}

TEST_F(support_test, fixed_port_in_use_fails_start_with_the_log) {
    silent_tcp_server squatter;
    redis_server_options options;
    options.port = squatter.port();
    redis_server server(options);
    try {
        server.start();
        FAIL() << "start() should have failed";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(server.running());
}

TEST_F(support_test, servers_are_gone_after_destruction) {
    {
        redis_server a;
        redis_server_options options;
        options.tls = true;
        redis_server b(options);
        a.start();
        b.start();
        EXPECT_EQ(child_pids("redis-server").size(), 2u);
    }
    EXPECT_TRUE(child_pids("redis-server").empty());
}

}  // namespace
}  // namespace redis_sidecar::testing
