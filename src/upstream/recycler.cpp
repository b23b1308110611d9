#include "recycler.hpp"

#include <boost/asio/steady_timer.hpp>

#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/upstream/error.hpp"

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
          reauth_(std::move(reauth)),
          done_(std::move(done)) {}

    void start(std::string leftover, std::chrono::milliseconds timeout) {
        timer_.expires_after(timeout);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (!ec) self->fail(error::timeout, "timed out");
        });
        conn_->set_reader(this);
        if (!leftover.empty() && !consume(leftover)) return;
        conn_->async_write(
            asio::buffer(commands_),
            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                if (ec) self->fail(classify(ec), "write failed");
            });
        conn_->resume_reading();
    }

    bool on_upstream_data(connection&, std::string_view bytes) override {
        auto self = shared_from_this();
        consume(bytes);
        return !finished_;
    }

    void on_upstream_error(connection&, std::error_code ec) override {
        fail(classify(ec), "connection lost");
    }

  private:
    // The replies the old client was owed come first (counted, or up to the first "+RESET" when
    // it left request/reply), then RESET's, then the re-authentication's.
    bool consume(std::string_view bytes) {
        while (!bytes.empty() && !finished_) {
            const auto r = scanner_.scan(bytes);
            if (r.status == resp::scan_status::error) {
                return fail(error::protocol_error, "malformed reply");
            }
            const auto frame = bytes.substr(0, r.consumed);
            bytes.remove_prefix(r.consumed);
            const bool frame_done = r.status == resp::scan_status::frame_done;
            if (seen_reset_) {
                reauth_reply(frame, frame_done, bytes.empty());
                continue;
            }
            const auto& info = scanner_.info();
            // Where RESET's reply belongs (the owed ones counted and skipped), only a status, an
            // error or a push can begin: refuse anything else at its first byte rather than wait
            // for an array's ten million elements.
            const bool resets_turn = owed_ && *owed_ == 0;
            if (resets_turn && info.type != '+' && info.type != '-' && info.type != '>') {
                return fail(error::protocol_error, "unexpected reply before RESET's");
            }
            if (!frame_done) break;
            if (owed_ && *owed_ > 0) {
                if (!info.is_push) --*owed_;
                continue;
            }
            if (info.type == '+' && info.head() == "RESET") {
                seen_reset_ = true;
                if (reauth_.steps.empty()) {
                    return bytes.empty() ? finish({})
                                         : fail(error::protocol_error, "bytes after RESET");
                }
            } else if (info.type == '-' && info.head().substr(0, 11) == "ERR unknown") {
                return finish({make_error_code(error::server_error),
                               "server has no RESET (Redis < 6.2)", true});
            } else if (owed_ && !info.is_push) {
                return fail(error::protocol_error, "unexpected reply before RESET's");
            }
        }
        return !finished_;
    }

    // After RESET the connection speaks RESP2 again: the re-authentication's replies are read
    // (bounded) and checked like a new connection's handshake. `frame` is one reply or its start.
    void reauth_reply(std::string_view frame, bool frame_done, bool last) {
        reader_.feed(frame);
        std::error_code ec;
        auto reply = reader_.next(ec);
        if (ec) {
            fail(classify(ec), reader_.error_detail());
            return;
        }
        if (!frame_done) return;
        if (!reply) {
            fail(error::protocol_error, "re-authentication reply unreadable");
            return;
        }
        replies_.push_back(std::move(*reply));
        if (replies_.size() < reauth_.steps.size()) return;
        if (!last) {
            fail(error::protocol_error, "bytes after RESET");  // it would be out of step
            return;
        }
        const auto out = check_handshake(reauth_, replies_, true);
        finish(out.ec ? reset_result{out.ec, "re-authentication: " + out.detail} : reset_result{});
    }

    bool fail(error kind, std::string why) {
        return finish({make_error_code(kind), std::move(why)});
    }

    bool finish(reset_result result) {
        if (finished_) return false;
        finished_ = true;
        timer_.cancel();
        conn_->set_reader(nullptr);
        const bool ok = !result.ec;
        auto done = std::move(done_);
        done(std::move(conn_), std::move(result));
        return ok;
    }

    std::shared_ptr<connection> conn_;
    resp::scanner scanner_;
    std::optional<std::uint64_t> owed_;
    asio::steady_timer timer_;
    std::string commands_;
    handshake reauth_;
    resp::reply_reader reader_{std::size_t{64} * 1024};  // HELLO's reply is ~200 bytes
    std::vector<resp::reply> replies_;
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
