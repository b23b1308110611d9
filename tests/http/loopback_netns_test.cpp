// The loopback-only routes over a real network: the admin server listens on the wildcard
// address (as in a pod, 0.0.0.0:9090) and is asked from another host, a network namespace this
// test creates with a veth pair, and from loopback. Needs root, as CI has; skips only when the
// namespace cannot be created for lack of privilege. Traffic goes only to that namespace and to
// loopback.

#include "redis_sidecar/http/admin_server.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "../metrics/text_format_parser.hpp"
#include "client.hpp"
#include "support/eventually.hpp"
#include "support/process.hpp"

namespace redis_sidecar::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace test;
using testing::eventually;

/// Names of this test process's namespace and links (the pid follows): one process, one
/// namespace.
constexpr std::string_view ns_prefix = "rs-http-";
constexpr std::string_view link_prefix = "rsh";
/// Namespaces live here once `ip netns add` made them.
constexpr std::string_view netns_dir = "/run/netns/";
/// Bound on one `ip` command.
constexpr std::chrono::milliseconds ip_timeout{10000};

// `ip` from iproute2, wherever this system keeps it (a root PATH may lack /usr/sbin).
std::string ip_tool() {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
        if (::access(p, X_OK) == 0) return p;
    }
    return "ip";  // the PATH's, if any: run_process says so when there is none
}

testing::process_result run_ip(std::vector<std::string> args) {
    args.insert(args.begin(), ip_tool());
    return testing::run_process(args, testing::base_env(), ip_timeout);
}

bool lacks_privilege(const testing::process_result& r) {
    const auto out = r.output();
    return out.find("Operation not permitted") != std::string::npos ||
           out.find("Permission denied") != std::string::npos;
}

/// A network namespace with one end of a veth pair in it: host side 10.213.a.(b+1)/30, namespace
/// side 10.213.a.(b+2)/30, with a and b taken from the pid so that test processes running at
/// once pick different /30s. Everything it made is removed by the destructor, whatever happened.
class veth_namespace {
  public:
    veth_namespace() {
        const auto pid = static_cast<unsigned>(::getpid());
        const std::string id = std::to_string(pid);
        ns_ = std::string(ns_prefix) + id;
        host_if_ = host_link(id);  // at most 3 + 7 + 1 < IFNAMSIZ
        ns_if_ = std::string(link_prefix) + id + "n";
        const std::string net = "10.213." + std::to_string((pid >> 6) & 0xffu) + ".";
        const unsigned base = (pid & 0x3fu) * 4;
        host_addr_ = net + std::to_string(base + 1);
        ns_addr_ = net + std::to_string(base + 2);
    }
    ~veth_namespace() { remove(); }

    veth_namespace(const veth_namespace&) = delete;
    veth_namespace& operator=(const veth_namespace&) = delete;

    /// What create() found.
    struct outcome {
        bool ok = false;
        bool no_privilege = false;
        std::string detail;  // the failing command and its output
    };

    outcome create() {
        remove_leftovers();
        const std::string net30 = "/30";
        const std::vector<std::vector<std::string>> steps = {
            {"netns", "add", ns_},
            {"link", "add", host_if_, "type", "veth", "peer", "name", ns_if_, "netns", ns_},
            {"addr", "add", host_addr_ + net30, "dev", host_if_},
            {"link", "set", host_if_, "up"},
            {"-n", ns_, "addr", "add", ns_addr_ + net30, "dev", ns_if_},
            {"-n", ns_, "link", "set", ns_if_, "up"},
            {"-n", ns_, "link", "set", "lo", "up"}};
        for (const auto& step : steps) {
            const auto r = run_ip(step);
            if (step[0] == "netns") created_ = true;  // remove() tolerates a half-made one
            if (!r.ok()) {
                std::string cmd = "ip";
                for (const auto& a : step) cmd += " " + a;
                return {false, lacks_privilege(r), cmd + ": " + r.describe()};
            }
        }
        return {true, false, {}};
    }

    /// Deletes the pair (deleting one end deletes the other) and the namespace. Idempotent.
    void remove() noexcept {
        if (!created_) return;
        created_ = false;
        try {
            run_ip({"link", "del", host_if_});
            run_ip({"netns", "del", ns_});
        } catch (...) {
        }
    }

    /// True when neither the namespace nor the host-side link exists any more.
    bool gone() const {
        return !std::filesystem::exists(std::string(netns_dir) + ns_) &&
               !run_ip({"link", "show", host_if_}).ok();
    }

    const std::string& name() const { return ns_; }
    const std::string& host_addr() const { return host_addr_; }
    const std::string& ns_addr() const { return ns_addr_; }

  private:
    static std::string host_link(const std::string& id) {
        return std::string(link_prefix) + id + "h";
    }

    // A test process that crashed left its namespace (and so its veth pair) behind: remove those
    // of dead processes, never one of a live process.
    static void remove_leftovers() {
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(netns_dir, ec)) {
            const std::string file = entry.path().filename().string();
            if (!file.starts_with(ns_prefix)) continue;
            const std::string id = file.substr(ns_prefix.size());
            if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) continue;
            const auto pid = static_cast<pid_t>(std::stol(id));
            if (pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH)) {
                run_ip({"link", "del", host_link(id)});
                run_ip({"netns", "del", file});
            }
        }
    }

    std::string ns_, host_if_, ns_if_, host_addr_, ns_addr_;
    bool created_ = false;
};

/// Calls `f` on a thread that has entered the network namespace `ns` (setns changes only the
/// calling thread's namespace, so the rest of the process stays on the host) and returns what it
/// returned. Throws what `f` threw, or std::system_error if the namespace cannot be entered.
template <class F>
auto in_netns(const std::string& ns, F f) {
    std::optional<decltype(f())> result;
    std::exception_ptr error;
    std::thread([&] {
        try {
            const std::string path = std::string(netns_dir) + ns;
            const testing::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            if (!fd || ::setns(fd.get(), CLONE_NEWNET) != 0) {
                throw std::system_error(errno, std::generic_category(), "setns " + path);
            }
            result.emplace(f());
        } catch (...) {
            error = std::current_exception();
        }
    }).join();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

/// Captures this process's stderr (the server's log lines) until taken or destroyed.
class stderr_capture {
  public:
    stderr_capture() { ::testing::internal::CaptureStderr(); }
    ~stderr_capture() {
        if (!taken_) ::testing::internal::GetCapturedStderr();
    }
    stderr_capture(const stderr_capture&) = delete;
    stderr_capture& operator=(const stderr_capture&) = delete;
    std::string take() {
        taken_ = true;
        return ::testing::internal::GetCapturedStderr();
    }

  private:
    bool taken_ = false;
};

std::size_t count_of(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
}

/// How the server listens, and what it then sees as the namespace's address.
struct listen_case {
    const char* name;
    const char* listen;
    bool ipv4_mapped;  // a dual-stack [::] listener sees IPv4 peers as ::ffff:a.b.c.d
};

void PrintTo(const listen_case& c, std::ostream* os) {
    *os << c.listen;
}

class loopback_netns_test : public ::testing::TestWithParam<listen_case> {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "not root: creating a network namespace and a veth pair needs root "
                            "(CI runs as root, where this test runs)";
        }
        if (GetParam().ipv4_mapped) {
            std::ifstream sysctl("/proc/sys/net/ipv6/bindv6only");
            int v6only = 0;
            if (!(sysctl >> v6only)) GTEST_SKIP() << "no IPv6 on this machine";
            if (v6only != 0) {
                GTEST_SKIP() << "net.ipv6.bindv6only=1: a [::] listener is not dual-stack here";
            }
        }
        ns_.emplace();
        veth_namespace::outcome made;
        try {
            made = ns_->create();
        } catch (const std::exception& e) {
            FAIL() << "cannot run ip (iproute2: apt-get install iproute2): " << e.what();
        }
        if (!made.ok && made.no_privilege) {
            GTEST_SKIP() << "no privilege to create a network namespace here (a container "
                            "without CAP_SYS_ADMIN / CAP_NET_ADMIN?): "
                         << made.detail;
        }
        ASSERT_TRUE(made.ok) << made.detail;
        start_server();
    }

    void TearDown() override {
        if (server_) {
            server_->stop();
            guard_.reset();
            EXPECT_TRUE(eventually([&] { return loop_done_.load(); }, 3s));
            ioc_.stop();
        }
        if (thread_.joinable()) thread_.join();
        if (ns_) {
            ns_->remove();
            EXPECT_TRUE(ns_->gone()) << "namespace " << ns_->name() << " or its veth pair is left";
        }
    }

    void start_server() {
        sources src;
        src.live = [] { return true; };
        src.started = [] { return true; };
        src.ready = [] { return true; };
        src.status = [] { return nlohmann::json{{"status", "healthy"}}; };
        src.configz = [] { return nlohmann::json{{"upstream", {{"host", "cache"}}}}; };
        src.quit = [this] { ++quits_; };
        server_limits limits;
        limits.timeout = 2s;
        server_ = std::make_unique<admin_server>(ioc_.get_executor(), GetParam().listen,
                                                 std::move(src), limits);
        server_->start();
        port_ = server_->port();
        ASSERT_NE(port_, 0);
        thread_ = std::thread([this] {
            ioc_.run();
            loop_done_ = true;
        });
    }

    asio::io_context ioc_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{
        ioc_.get_executor()};
    std::unique_ptr<admin_server> server_;
    std::thread thread_;
    std::atomic<bool> loop_done_{false};
    std::atomic<int> quits_{0};
    std::uint16_t port_ = 0;
    std::optional<veth_namespace> ns_;
};

constexpr const char* configz_refused =
    "redis-sidecar: /configz answers only loopback (127.0.0.0/8, ::1)\n";
constexpr const char* quit_refused =
    "redis-sidecar: /quitquitquit answers only loopback (127.0.0.0/8, ::1)\n";

TEST_P(loopback_netns_test, another_host_gets_403_for_configz_and_quit_and_the_rest_200) {
    struct answers {
        std::optional<reply> livez, readyz, metrics, status, configz, quit_post, quit_get, after;
    };
    const std::string host = ns_->host_addr();
    const std::uint16_t port = port_;
    stderr_capture log;
    const answers a = in_netns(ns_->name(), [&] {
        answers x;
        // The first request also waits until the new link carries traffic.
        eventually(
            [&] {
                x.livez = fetch_at(host, port, "GET", "/livez");
                return x.livez.has_value();
            },
            5s, 50ms);
        x.readyz = fetch_at(host, port, "GET", "/readyz");
        x.metrics = fetch_at(host, port, "GET", "/metrics");
        x.status = fetch_at(host, port, "GET", "/status");
        x.configz = fetch_at(host, port, "GET", "/configz");
        x.quit_post = fetch_at(host, port, "POST", "/quitquitquit");
        x.quit_get = fetch_at(host, port, "GET", "/quitquitquit");
        x.after = fetch_at(host, port, "GET", "/livez");
        return x;
    });
    const std::string lines = log.take();

    ASSERT_TRUE(a.livez) << "no answer from " << host << ":" << port << " inside namespace "
                         << ns_->name();
    EXPECT_EQ(a.livez->status, 200u);
    EXPECT_EQ(a.livez->body, "ok\n");
    ASSERT_TRUE(a.readyz);
    EXPECT_EQ(a.readyz->status, 200u);
    ASSERT_TRUE(a.metrics);
    EXPECT_EQ(a.metrics->status, 200u);
    EXPECT_TRUE(metrics::text_format::parse(a.metrics->body).doc) << a.metrics->body;
    ASSERT_TRUE(a.status);
    EXPECT_EQ(a.status->status, 200u);
    EXPECT_EQ(nlohmann::json::parse(a.status->body).at("status"), "healthy");

    ASSERT_TRUE(a.configz);
    EXPECT_EQ(a.configz->status, 403u);
    EXPECT_EQ(a.configz->body, configz_refused);
    ASSERT_TRUE(a.quit_post);
    EXPECT_EQ(a.quit_post->status, 403u);
    EXPECT_EQ(a.quit_post->body, quit_refused);
    ASSERT_TRUE(a.quit_get);
    EXPECT_EQ(a.quit_get->status, 403u) << "not 405: a refused peer learns nothing of the route";

    // The server keeps running and did not begin to quit.
    ASSERT_TRUE(a.after);
    EXPECT_EQ(a.after->status, 200u);
    const auto livez = fetch(port_, "GET", "/livez");
    ASSERT_TRUE(livez);
    EXPECT_EQ(livez->status, 200u);
    EXPECT_EQ(quits_.load(), 0);

    const auto refused = server_->refused_requests();
    EXPECT_EQ(refused.configz, 1u);
    EXPECT_EQ(refused.quitquitquit, 2u);

    // One log line per refused request, naming the path and the address the server saw.
    const std::string peer = std::string(GetParam().ipv4_mapped ? "::ffff:" : "") + ns_->ns_addr();
    EXPECT_EQ(count_of(lines, "admin request refused"), 3u) << lines;
    EXPECT_EQ(count_of(lines, "\"peer\":\"" + peer + "\""), 3u) << lines;
    EXPECT_EQ(count_of(lines, "\"path\":\"/configz\""), 1u) << lines;
    EXPECT_EQ(count_of(lines, "\"path\":\"/quitquitquit\""), 2u) << lines;
    EXPECT_EQ(count_of(lines, "\"method\":\"POST\""), 1u) << lines;
}

TEST_P(loopback_netns_test, loopback_gets_configz_and_may_quit) {
    std::vector<std::string> loopbacks = {"127.0.0.1"};
    if (GetParam().ipv4_mapped) loopbacks.emplace_back("::1");
    for (const auto& host : loopbacks) {
        const auto configz = fetch_at(host, port_, "GET", "/configz");
        ASSERT_TRUE(configz) << host;
        EXPECT_EQ(configz->status, 200u) << host << ": " << configz->body;
        EXPECT_EQ(nlohmann::json::parse(configz->body).at("upstream").at("host"), "cache");
    }
    // The namespace's own address is loopback for nobody: from the host, 10.213.x.y is a local
    // address but not 127.0.0.0/8, so even this machine is refused there.
    const auto own = fetch_at(ns_->host_addr(), port_, "GET", "/configz");
    ASSERT_TRUE(own);
    EXPECT_EQ(own->status, 403u);

    const auto quit = fetch(port_, "POST", "/quitquitquit");
    ASSERT_TRUE(quit);
    EXPECT_EQ(quit->status, 200u);
    EXPECT_TRUE(eventually([&] { return quits_.load() == 1; }, 2s));
    const auto refused = server_->refused_requests();
    EXPECT_EQ(refused.configz, 1u);
    EXPECT_EQ(refused.quitquitquit, 0u);
}

INSTANTIATE_TEST_SUITE_P(listen, loopback_netns_test,
                         ::testing::Values(listen_case{"ipv4_any", "0.0.0.0:0", false},
                                           listen_case{"dual_stack_any", "[::]:0", true}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace redis_sidecar::http
