#include "recycler.hpp"

#include <boost/asio/steady_timer.hpp>

#include "redis_sidecar/resp/command.hpp"

namespace redis_sidecar::upstream {

namespace {

class recycler final : public reader, public std::enable_shared_from_this<recycler> {
  public:
    recycler(std::shared_ptr<connection> c, const resp::scanner& scanner,
             std::optional<std::uint64_t> owed, handshake reauth, reset_handler done)
        : conn_(std::move(c)),
          scanner_(scanner),
          owed_(owed),
          timer_(conn_->get_executor()),
          commands_(resp::format_command({"RESET"}) + reauth.commands),
          after_reset_(reauth.steps.size()),
          done_(std::move(done)) {}

    void start(std::string leftover, std::chrono::milliseconds timeout) {
        timer_.expires_after(timeout);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (!ec) self->finish(false, "timed out");
        });
        conn_->set_reader(this);
        if (!leftover.empty() && !consume(leftover)) return;
        conn_->async_write(
            asio::buffer(commands_),
            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                if (ec) self->finish(false, "write failed");
            });
        conn_->resume_reading();
    }

    bool on_upstream_data(connection&, std::string_view bytes) override {
        auto self = shared_from_this();
        consume(bytes);
        return !finished_;
    }

    void on_upstream_error(connection&, std::error_code) override {
        finish(false, "connection lost");
    }

  private:
    // The replies the old client was owed come first (counted, or up to the first "+RESET" when
    // it left request/reply), then RESET's, then the re-authentication's.
    bool consume(std::string_view bytes) {
        while (!bytes.empty() && !finished_) {
            const auto r = scanner_.scan(bytes);
            if (r.status == resp::scan_status::error) return finish(false, "malformed reply");
            bytes.remove_prefix(r.consumed);
            if (r.status != resp::scan_status::frame_done) break;
            const auto& info = scanner_.info();
            if (!seen_reset_) {
                if (owed_ && *owed_ > 0) {
                    if (!info.is_push) --*owed_;
                    continue;
                }
                const bool is_reset = info.type == '+' && info.head() == "RESET";
                if (is_reset) {
                    seen_reset_ = true;
                    if (after_reset_ == 0)
                        return finish(bytes.empty(), "unexpected bytes after RESET");
                } else if (info.type == '-' && info.head().substr(0, 11) == "ERR unknown") {
                    return finish(false, "server has no RESET (Redis < 6.2)");
                } else if (owed_ && !info.is_push) {
                    return finish(false, "unexpected reply before RESET's");
                }
                continue;
            }
            if (info.type == '-' || info.is_push) return finish(false, "re-authentication refused");
            if (--after_reset_ == 0) {
                if (!bytes.empty()) return finish(false, "unexpected bytes after RESET");
                return finish(true, "");
            }
        }
        return true;
    }

    bool finish(bool ok, const char* why) {
        if (finished_) return false;
        finished_ = true;
        timer_.cancel();
        conn_->set_reader(nullptr);
        auto done = std::move(done_);
        done(std::move(conn_), ok, why);
        return ok;
    }

    std::shared_ptr<connection> conn_;
    resp::scanner scanner_;
    std::optional<std::uint64_t> owed_;
    asio::steady_timer timer_;
    std::string commands_;
    std::size_t after_reset_;
    reset_handler done_;
    bool seen_reset_ = false;
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
