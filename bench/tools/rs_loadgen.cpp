// rs_loadgen: the two workloads redis-benchmark cannot do, for bench/run.sh.
//
//   rs_loadgen latency (--port P [--host H] | --unix PATH) [--tls --cacert F [--sni NAME]]
//                      [--auth PASS] [--conns 4] [--rate 2000] [--seconds 10] [--value-size 32]
//     Open-loop load at a fixed total rate (req/s) spread over --conns connections, one
//     blocking thread per connection, alternating SET and GET of one key per connection.
//     Each request is due at start + k/rate_per_conn. Its latency runs from the moment it was
//     sent, or from the moment it was due if the previous reply came back late (so a stall is
//     not hidden: coordinated omission is corrected as wrk2 does). Prints one JSON line.
//
//   rs_loadgen idle (--port P [--host H] | --unix PATH) --conns N [--ping]
//     Opens N connections (one by one; with --ping each sends PING and waits for +PONG before
//     the next opens), prints "ready <opened> <failed>" and holds them until stdin closes or
//     SIGTERM; then closes them and exits.
//
// Plain POSIX sockets and OpenSSL; no Redis library. Every wait is bounded (--seconds, and a
// 10 s receive timeout per reply).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
    std::string mode;
    std::string host = "127.0.0.1";
    int port = 0;
    std::string unix_path;
    bool tls = false;
    std::string cacert;
    std::string sni = "localhost";
    std::string auth;
    int conns = 4;
    double rate = 2000;
    double seconds = 10;
    std::size_t value_size = 32;
    bool ping = false;
};

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "rs_loadgen: %s\n", what.c_str());
    std::exit(2);
}

options parse(int argc, char** argv) {
    if (argc < 2) die("usage: rs_loadgen latency|idle [options] (see the source's header)");
    options o;
    o.mode = argv[1];
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value after " + a);
            return argv[++i];
        };
        if (a == "--host")
            o.host = next();
        else if (a == "--port")
            o.port = std::stoi(next());
        else if (a == "--unix")
            o.unix_path = next();
        else if (a == "--tls")
            o.tls = true;
        else if (a == "--cacert")
            o.cacert = next();
        else if (a == "--sni")
            o.sni = next();
        else if (a == "--auth")
            o.auth = next();
        else if (a == "--conns")
            o.conns = std::stoi(next());
        else if (a == "--rate")
            o.rate = std::stod(next());
        else if (a == "--seconds")
            o.seconds = std::stod(next());
        else if (a == "--value-size")
            o.value_size = std::stoul(next());
        else if (a == "--ping")
            o.ping = true;
        else
            die("unknown option " + a);
    }
    if (o.port == 0 && o.unix_path.empty()) die("--port or --unix is required");
    if (o.conns < 1) die("--conns must be >= 1");
    return o;
}

/// One blocking connection, plain or TLS.
class conn {
  public:
    conn(const options& o, SSL_CTX* ctx) {
        if (!o.unix_path.empty()) {
            fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_un a{};
            a.sun_family = AF_UNIX;
            std::snprintf(a.sun_path, sizeof a.sun_path, "%s", o.unix_path.c_str());
            if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
                err_ = std::string("connect: ") + std::strerror(errno);
                return;
            }
        } else {
            fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(static_cast<uint16_t>(o.port));
            ::inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
            if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
                err_ = std::string("connect: ") + std::strerror(errno);
                return;
            }
            int one = 1;
            ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        timeval tv{10, 0};  // no reply wait is unbounded
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (ctx != nullptr) {
            ssl_ = SSL_new(ctx);
            SSL_set_fd(ssl_, fd_);
            SSL_set_tlsext_host_name(ssl_, o.sni.c_str());
            SSL_set1_host(ssl_, o.sni.c_str());
            if (SSL_connect(ssl_) != 1) {
                err_ = "TLS handshake failed";
                return;
            }
        }
        ok_ = true;
    }
    ~conn() {
        if (ssl_ != nullptr) SSL_free(ssl_);
        if (fd_ >= 0) ::close(fd_);
    }
    conn(const conn&) = delete;
    conn& operator=(const conn&) = delete;

    bool ok() const { return ok_; }
    const std::string& error() const { return err_; }

    bool send_all(const std::string& s) {
        std::size_t off = 0;
        while (off < s.size()) {
            const auto n =
                ssl_ != nullptr
                    ? SSL_write(ssl_, s.data() + off, static_cast<int>(s.size() - off))
                    : static_cast<int>(::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL));
            if (n <= 0) return false;
            off += static_cast<std::size_t>(n);
        }
        return true;
    }

    /// Reads one simple reply (+, -, :, or a $ bulk string); enough for PING/SET/GET/AUTH.
    bool read_reply(std::string* first_line = nullptr) {
        std::string line;
        if (!read_line(line)) return false;
        if (first_line != nullptr) *first_line = line;
        if (line.empty()) return false;
        if (line[0] == '$') {
            const long len = std::strtol(line.c_str() + 1, nullptr, 10);
            if (len >= 0 && !consume(static_cast<std::size_t>(len) + 2)) return false;
        }
        return line[0] != '-';
    }

  private:
    bool fill() {
        if (pos_ > 0 && pos_ == buf_.size()) {
            buf_.clear();
            pos_ = 0;
        }
        char tmp[16384];
        const auto n = ssl_ != nullptr ? SSL_read(ssl_, tmp, sizeof tmp)
                                       : static_cast<int>(::recv(fd_, tmp, sizeof tmp, 0));
        if (n <= 0) return false;
        buf_.append(tmp, static_cast<std::size_t>(n));
        return true;
    }
    bool read_line(std::string& line) {
        for (;;) {
            const auto e = buf_.find("\r\n", pos_);
            if (e != std::string::npos) {
                line.assign(buf_, pos_, e - pos_);
                pos_ = e + 2;
                return true;
            }
            if (!fill()) return false;
        }
    }
    bool consume(std::size_t n) {
        while (buf_.size() - pos_ < n) {
            if (!fill()) return false;
        }
        pos_ += n;
        return true;
    }

    int fd_ = -1;
    SSL* ssl_ = nullptr;
    bool ok_ = false;
    std::string err_;
    std::string buf_;
    std::size_t pos_ = 0;
};

SSL_CTX* make_ctx(const options& o) {
    if (!o.tls) return nullptr;
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx, o.cacert.c_str(), nullptr) != 1) die("bad --cacert");
    return ctx;
}

std::string bulk(const std::string& s) {
    return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}

std::string cmd(std::initializer_list<std::string> args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) out += bulk(a);
    return out;
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    const auto k = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    const auto i = std::min(v.size() - 1, k == 0 ? 0 : k - 1);
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
    return v[i];
}

int run_latency(const options& o) {
    SSL_CTX* ctx = make_ctx(o);
    const double per_conn_rate = o.rate / o.conns;
    const auto interval = std::chrono::duration<double>(1.0 / per_conn_rate);
    const auto per_conn_requests =
        static_cast<std::size_t>(std::max(1.0, per_conn_rate * o.seconds));
    std::mutex m;
    std::vector<double> all_us;
    std::atomic<long> errors{0};
    std::atomic<long> setup_failures{0};
    const std::string value(o.value_size, 'x');
    // Everyone starts together, after every connection is set up (and authenticated).
    const auto start = clock_type::now() + std::chrono::milliseconds(300);
    std::vector<std::thread> threads;
    for (int t = 0; t < o.conns; ++t) {
        threads.emplace_back([&, t] {
            conn c(o, ctx);
            if (!c.ok()) {
                ++setup_failures;
                return;
            }
            if (!o.auth.empty() && (!c.send_all(cmd({"AUTH", o.auth})) || !c.read_reply())) {
                ++setup_failures;
                return;
            }
            const std::string key = "rs-lat:" + std::to_string(t);
            const std::string set = cmd({"SET", key, value});
            const std::string get = cmd({"GET", key});
            std::vector<double> mine;
            mine.reserve(per_conn_requests);
            auto prev_done = clock_type::time_point{};
            // Stagger the connections across one interval so requests do not arrive in bursts.
            const auto offset = std::chrono::duration_cast<clock_type::duration>(
                interval * (static_cast<double>(t) / o.conns));
            for (std::size_t k = 0; k < per_conn_requests; ++k) {
                const auto due = start + offset +
                                 std::chrono::duration_cast<clock_type::duration>(
                                     interval * static_cast<double>(k));
                if (clock_type::now() < due) std::this_thread::sleep_until(due);
                const auto sent = clock_type::now();
                const auto from = prev_done > due ? due : sent;
                if (!c.send_all(k % 2 == 0 ? set : get) || !c.read_reply()) {
                    ++errors;
                    break;
                }
                prev_done = clock_type::now();
                mine.push_back(std::chrono::duration<double, std::micro>(prev_done - from).count());
            }
            std::lock_guard lock(m);
            all_us.insert(all_us.end(), mine.begin(), mine.end());
        });
    }
    for (auto& th : threads) th.join();
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    const auto n = all_us.size();
    double sum = 0;
    for (double x : all_us) sum += x;
    const double p50 = percentile(all_us, 50), p99 = percentile(all_us, 99),
                 p999 = percentile(all_us, 99.9), pmax = percentile(all_us, 100);
    std::printf(
        "{\"requests\": %zu, \"errors\": %ld, \"setup_failures\": %ld, \"target_rate\": %.0f, "
        "\"achieved_rate\": %.1f, \"mean_us\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
        "\"p999_us\": %.1f, \"max_us\": %.1f}\n",
        n, errors.load(), setup_failures.load(), o.rate, static_cast<double>(n) / elapsed,
        n ? sum / static_cast<double>(n) : 0.0, p50, p99, p999, pmax);
    if (ctx != nullptr) SSL_CTX_free(ctx);
    return (errors.load() == 0 && setup_failures.load() == 0 && n > 0) ? 0 : 1;
}

volatile sig_atomic_t stop_flag = 0;
void on_term(int) {
    stop_flag = 1;
}

int run_idle(const options& o) {
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    SSL_CTX* ctx = make_ctx(o);
    std::vector<std::unique_ptr<conn>> conns;
    conns.reserve(static_cast<std::size_t>(o.conns));
    int failed = 0;
    std::string first_error;
    const std::string ping = cmd({"PING"});
    for (int i = 0; i < o.conns && !stop_flag; ++i) {
        auto c = std::make_unique<conn>(o, ctx);
        bool ok = c->ok();
        if (ok && o.ping) {
            std::string line;
            ok = c->send_all(ping) && c->read_reply(&line) && line == "+PONG";
            if (!ok && first_error.empty()) first_error = "PING: " + line;
        } else if (!ok && first_error.empty()) {
            first_error = c->error();
        }
        if (ok)
            conns.push_back(std::move(c));
        else
            ++failed;
    }
    std::printf("ready %zu %d\n", conns.size(), failed);
    std::fflush(stdout);
    if (!first_error.empty())
        std::fprintf(stderr, "rs_loadgen idle: first failure: %s\n", first_error.c_str());
    // Hold until stdin closes (the harness closes it) or a signal; bounded by --seconds.
    const auto deadline = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                                  std::chrono::duration<double>(o.seconds));
    while (!stop_flag && clock_type::now() < deadline) {
        pollfd p{0, POLLIN, 0};
        const int r = ::poll(&p, 1, 200);
        if (r > 0) {
            char b[64];
            if (::read(0, b, sizeof b) <= 0) break;
        }
    }
    conns.clear();
    if (ctx != nullptr) SSL_CTX_free(ctx);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    if (o.mode == "latency") return run_latency(o);
    if (o.mode == "idle") return run_idle(o);
    die("unknown mode " + o.mode);
}
