#include "bridge_fixture.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <system_error>

namespace redis_sidecar::bridge_test {

namespace {

using clock = std::chrono::steady_clock;

int remaining_ms(clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Parses a CRLF-terminated line at pos; nullopt when it is not complete yet.
std::optional<std::string_view> line_at(std::string_view bytes, std::size_t& pos) {
    const auto end = bytes.find("\r\n", pos);
    if (end == std::string_view::npos) return std::nullopt;
    const auto line = bytes.substr(pos, end - pos);
    pos = end + 2;
    return line;
}

long long to_number(std::string_view s) {
    long long n = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc{} || p != s.data() + s.size()) {
        throw std::runtime_error("not RESP: bad number '" + std::string(s) + "'");
    }
    return n;
}

}  // namespace

std::string resp_value::text() const {
    switch (type) {
        case '+':
        case '-':
        case '!':
        case ',':
        case '(':
        case '#':
            return str;
        case ':':
            return std::to_string(integer);
        case '_':
            return "(nil)";
        case '$':
        case '=':
            return null ? "(nil)" : "\"" + str + "\"";
        case '*':
        case '~':
        case '>':
        case '%': {
            if (null) return "(nil)";
            std::string out = type == '%' ? "{" : "[";
            for (std::size_t i = 0; i < elems.size(); ++i) {
                if (i > 0) out += (type == '%' && i % 2 == 1) ? ": " : ", ";
                out += elems[i].text();
            }
            return out + (type == '%' ? "}" : "]");
        }
        default:
            return "?";
    }
}

std::string encode_command(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) {
        out += "$" + std::to_string(a.size()) + "\r\n";
        out += a;
        out += "\r\n";
    }
    return out;
}

std::optional<resp_value> parse_reply(std::string_view bytes, std::size_t& pos) {
    std::size_t p = pos;
    if (p >= bytes.size()) return std::nullopt;
    resp_value v;
    v.type = bytes[p++];
    const auto line = line_at(bytes, p);
    if (!line) return std::nullopt;
    switch (v.type) {
        case '+':
        case '-':
        case ',':
        case '(':
        case '#':
            v.str = std::string(*line);
            break;
        case ':':
            v.integer = to_number(*line);
            break;
        case '_':
            v.null = true;
            break;
        case '$':
        case '=':
        case '!': {
            const auto n = to_number(*line);
            if (n < 0) {
                v.null = true;
                break;
            }
            const auto len = static_cast<std::size_t>(n);
            if (bytes.size() < p + len + 2) return std::nullopt;
            if (bytes.substr(p + len, 2) != "\r\n")
                throw std::runtime_error("not RESP: bulk without CRLF");
            v.str = std::string(bytes.substr(p, len));
            p += len + 2;
            break;
        }
        case '*':
        case '~':
        case '>':
        case '%': {
            const auto n = to_number(*line);
            if (n < 0) {
                v.null = true;
                break;
            }
            const auto count = static_cast<std::size_t>(n) * (v.type == '%' ? 2 : 1);
            for (std::size_t i = 0; i < count; ++i) {
                auto e = parse_reply(bytes, p);
                if (!e) return std::nullopt;
                v.elems.push_back(std::move(*e));
            }
            break;
        }
        default:
            throw std::runtime_error("not RESP: type byte '" + std::string(1, v.type) + "' in '" +
                                     std::string(bytes.substr(pos, 80)) + "'");
    }
    pos = p;
    return v;
}

std::optional<std::size_t> reply_end(std::string_view bytes, std::size_t pos) {
    std::size_t p = pos;
    // Values still owed: an aggregate pays for its own slot and adds one per element, so a
    // counter replaces the recursion parse_reply does.
    long long pending = 1;
    while (pending > 0) {
        if (p >= bytes.size()) return std::nullopt;
        const char type = bytes[p++];
        const auto line = line_at(bytes, p);
        if (!line) return std::nullopt;
        switch (type) {
            case '+':
            case '-':
            case ':':
            case '_':
            case ',':
            case '(':
            case '#':
                --pending;
                break;
            case '$':
            case '=':
            case '!': {
                const auto n = to_number(*line);
                if (n >= 0) {
                    const auto len = static_cast<std::size_t>(n);
                    if (bytes.size() < p + len + 2) return std::nullopt;
                    if (bytes.substr(p + len, 2) != "\r\n") {
                        throw std::runtime_error("not RESP: bulk without CRLF");
                    }
                    p += len + 2;
                }
                --pending;
                break;
            }
            case '*':
            case '~':
            case '>':
            case '%': {
                const auto n = to_number(*line);
                --pending;
                if (n > 0) pending += n * (type == '%' ? 2 : 1);
                break;
            }
            case '|':  // an attribute map comes before the value it describes
                pending += 2 * to_number(*line);
                break;
            default:
                throw std::runtime_error("not RESP: type byte '" + std::string(1, type) + "' in '" +
                                         std::string(bytes.substr(p - 1, 80)) + "'");
        }
    }
    return p;
}

// ---------------------------------------------------------------------------------------------
// resp_client

resp_client resp_client::tcp(std::uint16_t port, std::chrono::milliseconds timeout) {
    auto fd = connect_tcp("127.0.0.1", port, timeout);
    if (!fd) throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
    return resp_client(std::move(fd));
}

resp_client resp_client::unix_socket(const std::string& path, std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) throw std::system_error(errno, std::generic_category(), "socket(AF_UNIX)");
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
            return resp_client(std::move(fd));
        }
        if (clock::now() >= deadline) throw std::runtime_error("cannot connect to " + path);
        // A listener that is still binding: poll again shortly (bounded by the deadline).
        ::poll(nullptr, 0, 10);
    }
}

void resp_client::send_raw(std::string_view bytes, std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    while (!bytes.empty()) {
        pollfd p{fd_.get(), POLLOUT, 0};
        const int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r == 0) throw std::runtime_error("write timed out");
        if (r < 0 && errno == EINTR) continue;
        const auto n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "send");
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

void resp_client::send(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
    send_raw(encode_command(args), timeout);
}

bool resp_client::fill(clock::time_point deadline) {
    // Drop what was parsed, so a long session does not keep every reply.
    if (pos_ > 0 && pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    }
    for (;;) {
        pollfd p{fd_.get(), POLLIN, 0};
        const int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r == 0)
            throw std::runtime_error("read timed out (have: '" + buf_.substr(pos_, 200) + "')");
        if (r < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "poll");
        }
        char chunk[256 * 1024];
        const auto n = ::recv(fd_.get(), chunk, sizeof chunk, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            if (errno == ECONNRESET) return false;
            throw std::system_error(errno, std::generic_category(), "recv");
        }
        if (n == 0) return false;
        buf_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }
}

resp_value resp_client::read(std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        if (auto v = parse_reply(buf_, pos_)) return std::move(*v);
        if (!fill(deadline)) {
            throw std::runtime_error("connection closed by the sidecar (have: '" +
                                     buf_.substr(pos_, 200) + "')");
        }
    }
}

std::string resp_client::read_raw(std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        if (const auto end = reply_end(buf_, pos_)) {
            std::string reply = buf_.substr(pos_, *end - pos_);
            pos_ = *end;
            return reply;
        }
        if (!fill(deadline)) {
            throw std::runtime_error("connection closed by the peer (have " +
                                     std::to_string(buf_.size() - pos_) + " bytes: '" +
                                     buf_.substr(pos_, 200) + "')");
        }
    }
}

resp_value resp_client::call(const std::vector<std::string>& args,
                             std::chrono::milliseconds timeout) {
    send(args, timeout);
    return read(timeout);
}

bool resp_client::wait_closed(std::chrono::milliseconds timeout, std::string* rest) {
    const auto deadline = clock::now() + timeout;
    try {
        while (fill(deadline)) {
        }
    } catch (const std::runtime_error&) {
        return false;  // timed out: still open
    }
    if (rest != nullptr) *rest = buf_.substr(pos_);
    return true;
}

bool resp_client::silent_for(std::chrono::milliseconds quiet) {
    pollfd p{fd_.get(), POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(quiet.count())) == 0 && pos_ == buf_.size();
}

// ---------------------------------------------------------------------------------------------
// bridge_fixture

void bridge_fixture::start(bridge_options options) {
    redis_server_options ro;
    ro.tls = true;
    ro.acl_users = {"user " + std::string(upstream_user) + " on >" +
                    std::string(upstream_password) + " ~* &* +@all"};
    ro.extra_config_lines = options.redis_config;
    if (options.direct_port) {
        // After our `port 0`, so it wins; `bind 127.0.0.1` keeps it on loopback.
        direct_port_ = free_tcp_port();
        ro.extra_config_lines.push_back("port " + std::to_string(direct_port_));
    }
    redis_ = std::make_unique<redis_server>(ro);
    redis_->start();

    dir_ = std::make_unique<temp_dir>("rs-bridge");
    socket_path_ = dir_->file("sidecar.sock");
    port_ = free_tcp_port();

    env_map env = base_env();
    env["REDIS_ADDR"] = redis_->address();
    env["REDIS_TLS_ENABLED"] = "true";
    env["REDIS_TLS_CA_FILE"] = redis_->pki().ca_cert();
    env["REDIS_USERNAME"] = std::string(upstream_user);
    env["REDIS_PASSWORD"] = std::string(upstream_password);
    env["REDIS_SIDECAR_LISTEN"] = "127.0.0.1:" + std::to_string(port_);
    env["REDIS_SIDECAR_SOCKET"] = socket_path_;
    http_port_ = free_tcp_port();
    env["REDIS_SIDECAR_HTTP_ADDR"] = "127.0.0.1:" + std::to_string(http_port_);
    env["REDIS_SIDECAR_LOG_FORMAT"] = "text";
    env["REDIS_SIDECAR_MAX_DRAIN"] = "5s";  // bounds the exit in TearDown
    // The whole suite runs a second time with multiplexing on (ctest's `mux:` tests): a test's
    // own REDIS_SIDECAR_MULTIPLEX, given below, still wins.
    if (const char* mux = std::getenv("RS_TEST_MULTIPLEX"); mux != nullptr && *mux != '\0') {
        env["REDIS_SIDECAR_MULTIPLEX"] = mux;
    }
    for (const auto& [k, v] : options.env) env[k] = v;
    if (auto it = env.find("REDIS_SIDECAR_CLIENT_PASSWORD"); it != env.end()) {
        client_password_ = it->second;
    }

    sidecar_ = std::make_unique<child_process>("redis-sidecar");
    sidecar_->start({REDIS_SIDECAR_BINARY, "run"}, env);

    // Ready: the first upstream connection is up and a real client gets PONG through the bridge.
    std::vector<std::string> ping = {"redis-cli", "-p", std::to_string(port_)};
    if (client_password_) ping.insert(ping.end(), {"--no-auth-warning", "-a", *client_password_});
    ping.emplace_back("PING");
    process_result last;
    const bool up = eventually(
        [&] {
            if (!sidecar_->running()) return true;  // reported below
            last = run_process(ping, base_env(), 5s);
            return trim(last.out) == "PONG";
        },
        20s, 25ms);
    ASSERT_TRUE(up && sidecar_->running())
        << "the sidecar did not answer PING through the bridge: " << last << "\nsidecar stderr:\n"
        << sidecar_->err() << "\nstdout:\n"
        << sidecar_->out();
    ASSERT_TRUE(sidecar_->wait_for_output("state changed from=starting to=ready", 5s))
        << sidecar_->out() << sidecar_->err();
    ASSERT_TRUE(sidecar_->wait_for_output("listening tcp=127.0.0.1:" + std::to_string(port_), 5s));
}

std::optional<int> bridge_fixture::stop_sidecar() {
    stopped_ = true;
    return sidecar_->stop(15s);
}

void bridge_fixture::TearDown() {
    if (sidecar_) {
        if (!stopped_) {
            const auto status = stop_sidecar();
            EXPECT_EQ(status, std::optional<int>(0)) << "sidecar exit after SIGTERM\n"
                                                     << sidecar_->err();
        }
        const auto output = sidecar_->out() + sidecar_->err();
        EXPECT_EQ(output.find(upstream_password), std::string::npos)
            << "the upstream password appears in the sidecar's output";
        if (client_password_) {
            EXPECT_EQ(output.find(*client_password_), std::string::npos)
                << "the client password appears in the sidecar's output";
        }
        if (HasFailure()) {
            std::cerr << "---- sidecar stdout ----\n"
                      << sidecar_->out() << "---- sidecar stderr ----\n"
                      << sidecar_->err() << "------------------------\n";
        }
        sidecar_.reset();
    }
    redis_.reset();
    EXPECT_TRUE(no_child_processes());
}

process_result bridge_fixture::cli(const std::vector<std::string>& args,
                                   std::chrono::milliseconds timeout,
                                   const std::string& stdin_data) const {
    std::vector<std::string> argv = {"redis-cli", "-p", std::to_string(port_)};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, base_env(), timeout, stdin_data);
}

process_result bridge_fixture::cli_unix(const std::vector<std::string>& args,
                                        std::chrono::milliseconds timeout) const {
    std::vector<std::string> argv = {"redis-cli", "-s", socket_path_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, base_env(), timeout);
}

resp_client bridge_fixture::direct_client() const {
    if (direct_port_ == 0) throw std::runtime_error("direct_client() needs options.direct_port");
    auto c = resp_client::tcp(direct_port_);
    const auto auth = c.call({"AUTH", std::string(upstream_user), std::string(upstream_password)});
    if (auth.text() != "OK") throw std::runtime_error("direct AUTH failed: " + auth.text());
    return c;
}

std::string bridge_fixture::metrics() const {
    const auto deadline = clock::now() + 5s;
    auto fd = connect_tcp("127.0.0.1", http_port_, 2s);
    if (!fd) return {};
    const std::string request =
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
        return {};
    }
    std::string response;
    for (;;) {
        pollfd p{fd.get(), POLLIN, 0};
        const int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return {};  // timed out: no complete answer
        char chunk[16384];
        const auto n = ::recv(fd.get(), chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        response.append(chunk, static_cast<std::size_t>(n));
    }
    const auto body = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) return {};
    return response.substr(body + 4);
}

std::string bridge_fixture::server_info_field(const std::string& section,
                                              const std::string& field) {
    const auto r = redis_->cli({"INFO", section});
    std::istringstream in(r.out);
    std::string line;
    const std::string prefix = field + ":";
    while (std::getline(in, line)) {
        if (line.rfind(prefix, 0) == 0) return trim(line.substr(prefix.size()));
    }
    return {};
}

long long bridge_fixture::server_command_calls(const std::string& command) {
    const auto value = server_info_field("commandstats", "cmdstat_" + command);
    // "calls=3,usec=...".
    if (value.rfind("calls=", 0) != 0) return 0;
    return std::stoll(value.substr(6, value.find(',') - 6));
}

}  // namespace redis_sidecar::bridge_test
