#include "recycler.hpp"

#include <boost/asio/steady_timer.hpp>

#include "redis_sidecar/upstream/error.hpp"

namespace redis_sidecar::upstream {

namespace {

class recycler final : public reader, public std::enable_shared_from_this<recycler> {
  public:
    recycler(std::shared_ptr<connection> c, const resp::scanner& scanner,
             std::optional<std::uint64_t> owed, handshake reauth, reset_handler done)
        : conn_(std::move(c)),
          replies_(scanner, owed, std::move(reauth)),
          timer_(conn_->get_executor()),
          done_(std::move(done)) {}

    void start(std::string leftover, std::chrono::milliseconds timeout) {
        timer_.expires_after(timeout);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (!ec) self->finish({make_error_code(error::timeout), "timed out"});
        });
        conn_->set_reader(this);
        if (!leftover.empty() && consume(leftover)) return;
        conn_->async_write(
            asio::buffer(replies_.commands()),
            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                if (ec) self->finish({make_error_code(classify(ec)), "write failed"});
            });
        conn_->resume_reading();
    }

    bool on_upstream_data(connection&, std::string_view bytes) override {
        auto self = shared_from_this();
        consume(bytes);
        return !finished_;
    }

    void on_upstream_error(connection&, std::error_code ec) override {
        finish({make_error_code(classify(ec)), "connection lost"});
    }

  private:
    /// True once the reset has ended.
    bool consume(std::string_view bytes) {
        if (auto outcome = replies_.feed(bytes)) finish(std::move(*outcome));
        return finished_;
    }

    void finish(reset_result result) {
        if (finished_) return;
        finished_ = true;
        timer_.cancel();
        conn_->set_reader(nullptr);
        auto done = std::move(done_);
        done(std::move(conn_), std::move(result));
    }

    std::shared_ptr<connection> conn_;
    reset_reader replies_;
    asio::steady_timer timer_;
    reset_handler done_;
    bool finished_ = false;
};

}  // namespace

void reset_connection(std::shared_ptr<connection> c, const resp::scanner& scanner,
                      std::string leftover, std::optional<std::uint64_t> owed, handshake reauth,
                      std::chrono::milliseconds timeout, reset_handler done) {
    std::make_shared<recycler>(std::move(c), scanner, owed, std::move(reauth), std::move(done))
        ->start(std::move(leftover), timeout);
}

}  // namespace redis_sidecar::upstream
