#include "redis_sidecar/upstream/connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>

#include <cerrno>
#include <stdexcept>

#include "redis_sidecar/config/address.hpp"
#include "redis_sidecar/upstream/error.hpp"
#include "redis_sidecar/upstream/handshake.hpp"

namespace redis_sidecar::upstream {

namespace {

using clock = std::chrono::steady_clock;

/// TCP keepalive: first probe after this much idle time, then every interval, `count` tries.
constexpr int keepalive_idle_seconds = 60;
constexpr int keepalive_interval_seconds = 10;
constexpr int keepalive_probes = 3;

std::chrono::microseconds since(clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start);
}

std::string x509_name(X509_NAME* name) {
    if (name == nullptr) return "?";
    char buf[512];
    X509_NAME_oneline(name, buf, sizeof buf);
    return buf;
}

// `unacked_limit` is TCP_USER_TIMEOUT: bytes sent and not acknowledged for that long (a
// blackholed peer: no RST, no FIN) fail the connection with ETIMEDOUT, instead of after the
// kernel's ~15 minutes of retransmissions. A peer that is merely slow to answer (BLPOP) has
// acknowledged what it was sent and is not affected.
void set_socket_options(tcp::socket& s, bool keepalive, std::chrono::milliseconds unacked_limit) {
    boost::system::error_code ignored;
    s.set_option(tcp::no_delay(true), ignored);
    if (unacked_limit.count() > 0) {
        const auto ms = static_cast<unsigned>(unacked_limit.count());
        ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
    }
    if (!keepalive) return;
    s.set_option(asio::socket_base::keep_alive(true), ignored);
    const int fd = s.native_handle();
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &keepalive_idle_seconds, sizeof(int));
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &keepalive_interval_seconds, sizeof(int));
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keepalive_probes, sizeof(int));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The socket BIO under OpenSSL

namespace {

using bio_state = connection::bio_state;

int bio_write(BIO* b, const char* data, int size) {
    auto* st = static_cast<bio_state*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    // MSG_NOSIGNAL: a peer that went away is an EPIPE error, not a SIGPIPE.
    const ssize_t n =
        ::send(st->socket->native_handle(), data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    st->last_errno = errno;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
    return -1;
}

int bio_read(BIO* b, char* data, int size) {
    auto* st = static_cast<bio_state*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    const ssize_t n = ::recv(st->socket->native_handle(), data, static_cast<std::size_t>(size), 0);
    if (n > 0) {
        st->drained = n < size;
        return static_cast<int>(n);
    }
    if (n == 0) {
        st->eof = true;
        return 0;
    }
    st->last_errno = errno;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        st->drained = true;
        BIO_set_retry_read(b);
    }
    return -1;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
    switch (cmd) {
        case BIO_CTRL_FLUSH:
            return 1;
        case BIO_CTRL_EOF:
            return static_cast<bio_state*>(BIO_get_data(b))->eof ? 1 : 0;
        default:
            return 0;
    }
}

int bio_create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
}

BIO_METHOD* socket_bio_method() {
    static BIO_METHOD* method = [] {
        BIO_METHOD* m =
            BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "redis-sidecar socket");
        BIO_meth_set_write(m, bio_write);
        BIO_meth_set_read(m, bio_read);
        BIO_meth_set_ctrl(m, bio_ctrl);
        BIO_meth_set_create(m, bio_create);
        return m;
    }();
    return method;
}

/// Most plaintext handed to one SSL_write (a whole-or-nothing call: 64 records).
constexpr std::size_t max_tls_write = 1024 * 1024;

}  // namespace

// ---------------------------------------------------------------------------------------------
// connection

connection::connection(asio::any_io_executor ex, tls_client* tls, std::uint64_t id)
    : socket_(ex), id_(id), created_(clock::now()) {
    bio_.socket = &socket_;
    if (tls == nullptr) return;
    ssl_ = SSL_new(tls->context().native_handle());
    if (ssl_ == nullptr) throw std::runtime_error("cannot create an OpenSSL connection (SSL_new)");
    BIO* bio = BIO_new(socket_bio_method());
    BIO_set_data(bio, &bio_);
    SSL_set_bio(ssl_, bio, bio);
    // Whole records per recv(), not header then body; no buffers held while nothing is in flight.
    SSL_set_read_ahead(ssl_, 1);
    SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
    SSL_set_connect_state(ssl_);
}

connection::~connection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
}

void connection::start_reading() {
    if (!reading_ && !broken_) do_read();
}

void connection::resume_reading() {
    paused_ = false;
    if (!reading_ && !broken_) do_read();
}

char* connection::read_buffer() {
    if (!buffer_) buffer_ = std::make_unique_for_overwrite<char[]>(read_buffer_size);
    return buffer_.get();
}

void connection::register_for_reading() {
    boost::system::error_code ec;
    const auto protocol = peer_.protocol();
    const auto fd = socket_.release(ec);
    if (ec) return;  // keeps the registration it has: correct, only one wake-up more per request
    socket_.assign(protocol, fd, ec);
    if (ec) ::close(fd);  // the connection then fails at its first read or write
}

void connection::do_read() {
    reading_ = true;
    if (ssl_ == nullptr) {
        socket_.async_read_some(
            asio::buffer(read_buffer(), read_buffer_size),
            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                self->on_read(ec, n);
            });
        return;
    }
    // Bytes OpenSSL holds, or a socket not known to be drained: read (from the loop, never
    // inside the reader's resume_reading()). Otherwise wait for the socket: no recv() that
    // would only say EAGAIN.
    if (SSL_has_pending(ssl_) != 0 || !bio_.drained) {
        asio::post(socket_.get_executor(), [self = shared_from_this()] { self->tls_read(); });
    } else {
        wait_readable();
    }
}

void connection::wait_readable() {
    // No reader holds the bytes of the last read now: a connection that waits (idle in the
    // pool, or a client between commands) keeps no read buffer.
    buffer_.reset();
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                           if (ec) {
                               self->on_read(ec, 0);
                               return;
                           }
                           self->bio_.drained = false;
                           self->tls_read();
                       });
}

void connection::tls_read() {
    if (broken_) {
        reading_ = false;
        return;
    }
    prepare_tls_call();
    const int n = SSL_read(ssl_, read_buffer(), static_cast<int>(read_buffer_size));
    if (n > 0) {
        on_read({}, static_cast<std::size_t>(n));
        return;
    }
    const int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ) {
        wait_readable();
    } else if (e == SSL_ERROR_WANT_WRITE) {
        socket_.async_wait(tcp::socket::wait_write,
                           [self = shared_from_this()](const boost::system::error_code& ec) {
                               if (ec) {
                                   self->on_read(ec, 0);
                               } else {
                                   self->tls_read();
                               }
                           });
    } else {
        on_read(tls_error(e), 0);
    }
}

void connection::on_read(const boost::system::error_code& ec, std::size_t n) {
    reading_ = false;
    if (broken_) return;
    if (ec) {
        fail(timed_out_ ? make_error_code(error::timeout) : std::error_code(ec));
        return;
    }
    if (reader_ == nullptr) {
        // Bytes nobody asked for on an idle connection: the protocol state is unknown.
        fail(make_error_code(error::protocol_error));
        return;
    }
    // Paused unless the reader says "go on" or resumes (possibly from inside the call).
    paused_ = true;
    if (reader_->on_upstream_data(*this, std::string_view(buffer_.get(), n))) paused_ = false;
    if (!paused_ && !broken_ && !reading_) do_read();
}

void connection::async_write(asio::const_buffer buffer, write_handler handler) {
    if (ssl_ == nullptr) {
        asio::async_write(socket_, buffer, std::move(handler));
        return;
    }
    write_data_ = static_cast<const char*>(buffer.data());
    write_left_ = buffer.size();
    write_total_ = buffer.size();
    write_handler_ = std::move(handler);
    tls_write();
}

void connection::tls_write() {
    while (write_left_ > 0) {
        if (broken_) {
            finish_write(asio::error::operation_aborted);
            return;
        }
        // SSL_write writes all it is given or nothing; a retry repeats the same arguments.
        const auto chunk = static_cast<int>(std::min(write_left_, max_tls_write));
        prepare_tls_call();
        const int n = SSL_write(ssl_, write_data_, chunk);
        if (n > 0) {
            write_data_ += n;
            write_left_ -= static_cast<std::size_t>(n);
            continue;
        }
        const int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            socket_.async_wait(
                e == SSL_ERROR_WANT_WRITE ? tcp::socket::wait_write : tcp::socket::wait_read,
                [self = shared_from_this()](const boost::system::error_code& ec) {
                    if (ec) {
                        self->finish_write(ec);
                    } else {
                        self->tls_write();
                    }
                });
            return;
        }
        finish_write(tls_error(e));
        return;
    }
    finish_write({});
}

void connection::finish_write(const boost::system::error_code& ec) {
    auto handler = std::move(write_handler_);
    write_handler_ = nullptr;
    const std::size_t written = write_total_ - write_left_;
    asio::post(socket_.get_executor(), [h = std::move(handler), ec, written] { h(ec, written); });
}

void connection::async_handshake(std::function<void(const boost::system::error_code&)> handler) {
    handshake_handler_ = std::move(handler);
    tls_handshake();
}

void connection::tls_handshake() {
    prepare_tls_call();
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
        finish_handshake({});
        return;
    }
    const int e = SSL_get_error(ssl_, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        finish_handshake(tls_error(e));
        return;
    }
    socket_.async_wait(e == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                           if (ec) {
                               self->finish_handshake(ec);
                           } else {
                               self->tls_handshake();
                           }
                       });
}

void connection::finish_handshake(const boost::system::error_code& ec) {
    auto handler = std::move(handshake_handler_);
    handshake_handler_ = nullptr;
    handler(ec);
}

void connection::prepare_tls_call() {
    // OpenSSL reports a call's own errors only from an empty queue; errno from an earlier
    // EAGAIN must not be taken for this call's failure.
    if (ERR_peek_error() != 0) ERR_clear_error();
    bio_.last_errno = 0;
}

boost::system::error_code connection::tls_error(int ssl_error) {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    namespace ssl_errors = asio::ssl::error;
    switch (ssl_error) {
        case SSL_ERROR_ZERO_RETURN:  // close_notify
            return asio::error::eof;
        case SSL_ERROR_SSL:
            if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                return ssl_errors::stream_truncated;
            }
            return {static_cast<int>(e), asio::error::get_ssl_category()};
        case SSL_ERROR_SYSCALL:
            if (e != 0) return {static_cast<int>(e), asio::error::get_ssl_category()};
            if (bio_.eof || bio_.last_errno == 0) return ssl_errors::stream_truncated;
            return {bio_.last_errno, boost::system::system_category()};
        default:
            return ssl_errors::unexpected_result;
    }
}

void connection::fail(std::error_code ec) {
    if (broken_) return;
    broken_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (reader_ != nullptr) reader_->on_upstream_error(*this, ec);
}

void connection::close() {
    fail(make_error_code(error::shutting_down));
}

void connection::close_on_timeout() {
    timed_out_ = true;
    fail(make_error_code(error::timeout));
}

// ---------------------------------------------------------------------------------------------
// async_command

namespace {

class command_exchange final : public reader,
                               public std::enable_shared_from_this<command_exchange> {
  public:
    command_exchange(std::shared_ptr<connection> c, std::string formatted, std::size_t replies,
                     std::function<void(command_result)> handler)
        : conn_(std::move(c)),
          formatted_(std::move(formatted)),
          wanted_(replies),
          timer_(conn_->get_executor()),
          handler_(std::move(handler)),
          previous_(conn_->current_reader()) {}

    void start(std::chrono::milliseconds timeout) {
        conn_->set_reader(this);
        timer_.expires_after(timeout);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (!ec && !self->done_) self->conn_->close_on_timeout();
        });
        conn_->async_write(
            asio::buffer(formatted_),
            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                if (ec) self->finish(make_error_code(error::io_error));
            });
        conn_->start_reading();
    }

    bool on_upstream_data(connection&, std::string_view bytes) override {
        auto self = shared_from_this();  // finish() may drop the last other reference
        reader_.feed(bytes);
        std::error_code ec;
        while (result_.replies.size() < wanted_) {
            auto r = reader_.next(ec);
            if (ec) {
                finish(make_error_code(error::protocol_error));
                return false;
            }
            if (!r) return true;
            result_.replies.push_back(std::move(*r));
        }
        // Anything after the last wanted reply would belong to nobody.
        auto extra = reader_.next(ec);
        finish(extra || ec ? make_error_code(error::protocol_error) : std::error_code{});
        return true;
    }

    void on_upstream_error(connection&, std::error_code ec) override { finish(ec); }

  private:
    void finish(std::error_code ec) {
        if (done_) return;
        done_ = true;
        timer_.cancel();
        conn_->set_reader(previous_);
        if (ec && !conn_->broken()) conn_->close();
        result_.ec = ec;
        auto handler = std::move(handler_);
        handler(std::move(result_));
    }

    std::shared_ptr<connection> conn_;
    std::string formatted_;
    std::size_t wanted_;
    asio::steady_timer timer_;
    std::function<void(command_result)> handler_;
    reader* previous_;
    resp::reply_reader reader_;
    command_result result_;
    bool done_ = false;
};

}  // namespace

void async_command(const std::shared_ptr<connection>& c, std::string formatted, std::size_t replies,
                   std::chrono::milliseconds timeout, std::function<void(command_result)> handler) {
    if (c->broken()) {
        asio::post(c->get_executor(), [h = std::move(handler)]() mutable {
            h(command_result{make_error_code(error::io_error), {}});
        });
        return;
    }
    std::make_shared<command_exchange>(c, std::move(formatted), replies, std::move(handler))
        ->start(timeout);
}

// ---------------------------------------------------------------------------------------------
// async_open

namespace {

class opener final : public std::enable_shared_from_this<opener> {
  public:
    opener(asio::any_io_executor ex, tls_client* tls, std::uint64_t id,
           std::vector<tcp::endpoint> endpoints, open_options options, open_handler handler)
        : conn_(std::make_shared<connection>(ex, tls, id)),
          tls_(tls),
          endpoints_(std::move(endpoints)),
          options_(std::move(options)),
          handler_(std::move(handler)),
          timer_(ex) {}

    void start() {
        timer_.expires_after(options_.timeout);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (ec || self->done_) return;
            self->timed_out_ = true;
            self->conn_->close_on_timeout();
        });
        step_start_ = clock::now();
        asio::async_connect(
            conn_->socket(), endpoints_,
            [self = shared_from_this()](const boost::system::error_code& ec,
                                        const tcp::endpoint& ep) { self->on_connect(ec, ep); });
    }

    const std::shared_ptr<connection>& connection_being_opened() const { return conn_; }

  private:
    void trace(std::string name, bool ok, std::string detail) {
        if (options_.trace != nullptr) {
            options_.trace->push_back({std::move(name), ok, since(step_start_), std::move(detail)});
        }
        step_start_ = clock::now();
    }

    std::error_code classified(const std::error_code& ec) const {
        if (timed_out_) return make_error_code(error::timeout);
        return make_error_code(classify(ec));
    }

    void on_connect(const boost::system::error_code& ec, const tcp::endpoint& ep) {
        if (done_) return;
        if (ec) {
            const auto why = classified(ec);
            trace("tcp", false, why.message() + " (" + ec.message() + ")");
            finish(why, ec.message());
            return;
        }
        conn_->set_peer(ep);
        // The connect timeout (TCP + TLS + AUTH + PING) bounds how long sent bytes may stay
        // unacknowledged too.
        set_socket_options(conn_->socket(), options_.keepalive, options_.timeout);
        conn_->register_for_reading();
        trace("tcp", true,
              "connected to " + config::join_host_port(ep.address().to_string(), ep.port()));
        if (!conn_->tls()) {
            send_hello();
            return;
        }
        const auto& tls_settings = options_.upstream->tls;
        SSL* ssl = conn_->ssl_handle();
        // Never an empty name: that would turn host-name verification off.
        const auto& name =
            tls_settings.server_name.empty() ? options_.upstream->host : tls_settings.server_name;
        if (!config::is_ip_literal(name)) SSL_set_tlsext_host_name(ssl, name.c_str());
        if (tls_settings.verify) {
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (config::is_ip_literal(name)) {
                X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
            } else {
                X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
            }
        }
        tls_->offer_session(ssl, name);
        conn_->async_handshake([self = shared_from_this()](const boost::system::error_code& e) {
            self->on_handshake(e);
        });
    }

    void on_handshake(const boost::system::error_code& ec) {
        if (done_) return;
        SSL* ssl = conn_->ssl_handle();
        if (ec) {
            const auto why = classified(ec);
            std::string detail = openssl_reason(ssl, ec);
            trace("tls", false, detail);
            finish(why, detail);
            return;
        }
        std::string detail = std::string(SSL_get_version(ssl)) + ", " + SSL_get_cipher_name(ssl);
        if (X509* cert = SSL_get1_peer_certificate(ssl)) {
            detail += ", subject " + x509_name(X509_get_subject_name(cert)) + ", issuer " +
                      x509_name(X509_get_issuer_name(cert));
            X509_free(cert);
        }
        detail += options_.upstream->tls.verify ? ", verified" : ", NOT verified (skip verify)";
        if (SSL_session_reused(ssl) != 0) detail += ", session resumed";
        trace("tls", true, detail);
        send_hello();
    }

    // The handshake in one round trip; servers before Redis 6 (no HELLO) get AUTH + SETNAME.
    void send_hello() { send_handshake({.hello = true, .ping = true}); }
    void send_legacy() {
        legacy_ = true;
        send_handshake({.hello = false, .ping = true});
    }
    void send_handshake(handshake_options how) {
        handshake_ = make_handshake(*options_.upstream, options_.client_name, how);
        async_command(
            conn_, std::move(handshake_.commands), handshake_.steps.size(), remaining(),
            [self = shared_from_this()](command_result r) { self->on_hello(std::move(r)); });
    }

    std::chrono::milliseconds remaining() const {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            open_started_ + options_.timeout - clock::now());
        return std::max(left, std::chrono::milliseconds(1));
    }

    void on_hello(command_result r) {
        if (done_) return;
        if (r.ec && !timed_out_) {
            // A server that turns the connection away (maxclients) writes one error and closes:
            // that error is the reason, not the EOF after it.
            for (std::size_t i = 0; i < r.replies.size() && i < handshake_.steps.size(); ++i) {
                if (r.replies[i].type != resp::reply_type::error) continue;
                const auto& text = r.replies[i].str;
                trace(handshake_.steps[i], false, text);
                finish(make_error_code(classify_reply(text)), text);
                return;
            }
        }
        if (r.ec) {
            const auto why = make_error_code(timed_out_ ? error::timeout : classify(r.ec));
            trace(handshake_.steps.front(), false, why.message());
            finish(why);
            return;
        }
        auto out = check_handshake(handshake_, r.replies, !legacy_);
        if (out.no_hello && !legacy_) {
            send_legacy();
            return;
        }
        if (out.ec) {
            // The server's error text never holds our password.
            trace(out.failed_step, false, out.detail);
            finish(out.ec, out.detail);
            return;
        }
        const auto& info = out.info;
        const auto& up = *options_.upstream;
        trace("auth", true,
              std::string(up.password ? "authenticated as " + up.username.value_or("default")
                                      : "no password configured") +
                  (info.version.empty() ? "" : ", server " + info.version) +
                  (info.role.empty() ? "" : ", role " + info.role));
        trace("ping", true, "PONG");
        conn_->set_info(std::move(out.info));
        if (conn_->tls()) {
            const auto& up = *options_.upstream;
            tls_->remember_session(conn_->ssl_handle(),
                                   up.tls.server_name.empty() ? up.host : up.tls.server_name);
        }
        finish({});
    }

    void finish(std::error_code ec, const std::string& detail = {}) {
        if (done_) return;
        done_ = true;
        timer_.cancel();
        if (ec) ec = make_error_code(timed_out_ ? error::timeout : classify(ec));
        if (ec) {
            if (!conn_->broken()) conn_->close();
            handler_(ec, nullptr, detail.empty() ? ec.message() : detail);
        } else {
            handler_({}, conn_, {});
        }
    }

    std::shared_ptr<connection> conn_;
    tls_client* tls_;
    std::vector<tcp::endpoint> endpoints_;
    open_options options_;
    open_handler handler_;
    asio::steady_timer timer_;
    handshake handshake_;  // its steps name what each pipelined reply answers
    clock::time_point open_started_ = clock::now();
    clock::time_point step_start_ = clock::now();
    bool done_ = false;
    bool timed_out_ = false;
    bool legacy_ = false;
};

}  // namespace

std::shared_ptr<connection> async_open(asio::any_io_executor ex, tls_client* tls, std::uint64_t id,
                                       std::vector<tcp::endpoint> endpoints, open_options options,
                                       open_handler handler) {
    auto o = std::make_shared<opener>(ex, tls, id, std::move(endpoints), std::move(options),
                                      std::move(handler));
    o->start();
    return o->connection_being_opened();
}

}  // namespace redis_sidecar::upstream
