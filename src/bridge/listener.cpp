#include "redis_sidecar/bridge/listener.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/write.hpp>

#include <algorithm>
#include <vector>

#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/log/logger.hpp"

namespace redis_sidecar::bridge {

namespace {

constexpr std::string_view reply_max_clients = "-ERR max number of clients reached\r\n";
/// Pending connections the kernel queues for us.
constexpr int accept_backlog = 1024;

}  // namespace

listener::listener(asio::any_io_executor ex, std::shared_ptr<session_context> context,
                   std::size_t max_clients)
    : ex_(std::move(ex)), ctx_(std::move(context)), max_clients_(max_clients), sweep_timer_(ex_) {
    ctx_->on_session_end = [this](session* s) { sessions_.erase(s); };
}

listener::~listener() {
    ctx_->on_session_end = nullptr;
    try {
        sweep_timer_.cancel();
        stop_accepting();
        close_all();
        if (lanes_) lanes_->close_all();
        ctx_->lanes = nullptr;
    } catch (const std::exception& e) {  // a destructor must not throw
        log::error("closing the listener failed", {{"error", e.what()}});
    }
}

void listener::listen_tcp(const std::string& host_port) {
    const auto a = config::parse_address(host_port);
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(a.host, ec);
    if (ec) throw std::runtime_error("REDIS_SIDECAR_LISTEN: '" + a.host + "' is not an IP address");
    const asio::ip::tcp::endpoint ep(address, a.port.value_or(6379));
    tcp_.emplace(ex_);
    tcp_->open(ep.protocol());
    tcp_->set_option(asio::socket_base::reuse_address(true));
    tcp_->bind(ep, ec);
    if (ec) {
        throw std::runtime_error("REDIS_SIDECAR_LISTEN: cannot listen on " + host_port + ": " +
                                 ec.message());
    }
    tcp_->listen(accept_backlog);
    log::info("listening", {{"tcp", config::join_host_port(a.host, tcp_port())}});
    accept_tcp();
}

void listener::listen_unix(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            throw std::runtime_error("REDIS_SIDECAR_SOCKET: " + path +
                                     " exists and is not a socket");
        }
        // A live socket answers a connect; a stale one (a crashed predecessor's) refuses it.
        asio::local::stream_protocol::socket probe(ex_);
        boost::system::error_code ec;
        probe.connect(asio::local::stream_protocol::endpoint(path), ec);
        if (!ec) {
            throw std::runtime_error("REDIS_SIDECAR_SOCKET: " + path +
                                     " is in use by another process");
        }
        ::unlink(path.c_str());
    }
    unix_.emplace(ex_);
    const asio::local::stream_protocol::endpoint ep(path);
    unix_->open(ep.protocol());
    boost::system::error_code ec;
    // Create the file 0660 from the start: no window in which others could connect.
    const mode_t old_mask = ::umask(0117);
    unix_->bind(ep, ec);
    ::umask(old_mask);
    if (ec) {
        throw std::runtime_error("REDIS_SIDECAR_SOCKET: cannot listen on " + path + ": " +
                                 ec.message());
    }
    ::chmod(path.c_str(), 0660);
    unix_->listen(accept_backlog);
    unix_path_ = path;
    log::info("listening", {{"unix", path}});
    accept_unix();
}

void listener::enable_multiplex(std::size_t shared_connections, std::size_t max_total) {
    lanes_ =
        std::make_unique<lane_set>(ex_, ctx_->pool, ctx_->stats, shared_connections, max_total);
    ctx_->lanes = lanes_.get();
}

std::uint16_t listener::tcp_port() const {
    boost::system::error_code ec;
    return tcp_ ? tcp_->local_endpoint(ec).port() : 0;
}

// Accepted straight into the sessions' socket type: no getsockname() and no second epoll
// registration per connection (2,000 connects a second make that count).
void listener::accept_tcp() {
    auto peer = std::make_shared<local_socket>(ex_);
    tcp_->async_accept(*peer, [this, peer](const boost::system::error_code& ec) {
        if (ec == asio::error::operation_aborted || !tcp_ || !tcp_->is_open()) return;
        if (!ec) {
            boost::system::error_code ignored;
            peer->set_option(asio::ip::tcp::no_delay(true), ignored);
            on_accept(ec, std::move(*peer));
        } else {
            log::warn("accept failed", {{"error", ec.message()}});
        }
        accept_tcp();
    });
}

void listener::accept_unix() {
    auto peer = std::make_shared<local_socket>(ex_);
    unix_->async_accept(*peer, [this, peer](const boost::system::error_code& ec) {
        if (ec == asio::error::operation_aborted || !unix_ || !unix_->is_open()) return;
        if (!ec) {
            on_accept(ec, std::move(*peer));
        } else {
            log::warn("accept failed", {{"error", ec.message()}});
        }
        accept_unix();
    });
}

void listener::on_accept(const boost::system::error_code&, local_socket socket) {
    if (sessions_.size() >= max_clients_) {
        ++ctx_->stats->clients_rejected;
        auto s = std::make_shared<local_socket>(std::move(socket));
        asio::async_write(*s, asio::buffer(reply_max_clients),
                          [s](const boost::system::error_code&, std::size_t) {
                              boost::system::error_code ignored;
                              s->close(ignored);
                          });
        return;
    }
    auto s = std::make_shared<session>(std::move(socket), ctx_);
    sessions_.emplace(s.get(), s);
    s->start();
    schedule_sweep();
}

// Runs while there are clients: every quarter of write_timeout (at least 50 ms). A write found
// pending at `limit` consecutive sweeps has been pending for write_timeout at least, and at
// most a period more.
void listener::schedule_sweep() {
    if (sweeping_ || sessions_.empty()) return;
    sweeping_ = true;
    const auto period = std::max(ctx_->write_timeout / 4, std::chrono::milliseconds(50));
    const auto limit = static_cast<unsigned>(std::max<std::chrono::milliseconds::rep>(
        1, (ctx_->write_timeout + period - std::chrono::milliseconds(1)) / period));
    sweep_timer_.expires_after(period);
    sweep_timer_.async_wait(
        [this, limit, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
            if (ec || alive.expired()) return;  // the listener is going away
            sweeping_ = false;
            std::vector<std::shared_ptr<session>> live;
            live.reserve(sessions_.size());
            for (auto& [ptr, weak] : sessions_) {
                if (auto s = weak.lock()) live.push_back(std::move(s));
            }
            // enforce_write_deadline may end a session, which erases it from sessions_.
            for (auto& s : live) s->enforce_write_deadline(limit);
            if (lanes_) lanes_->enforce_deadlines(limit);
            schedule_sweep();
        });
}

void listener::stop_accepting() {
    boost::system::error_code ignored;
    if (tcp_) tcp_->close(ignored);
    if (unix_) {
        unix_->close(ignored);
        if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
        unix_path_.clear();
    }
}

void listener::close_all() {
    auto sessions = sessions_;
    for (auto& [ptr, weak] : sessions) {
        if (auto s = weak.lock()) s->close();
    }
}

}  // namespace redis_sidecar::bridge
