#include "redis_sidecar/bridge/recycler.hpp"

#include <boost/asio/steady_timer.hpp>

#include "redis_sidecar/bridge/session.hpp"
#include "redis_sidecar/log/logger.hpp"
#include "redis_sidecar/resp/command.hpp"

namespace redis_sidecar::bridge {

namespace {

class recycler final : public upstream::reader, public std::enable_shared_from_this<recycler> {
public:
    recycler(std::shared_ptr<session_context> ctx, std::shared_ptr<upstream::connection> c,
             const resp::scanner& scanner)
        : ctx_(std::move(ctx)), conn_(std::move(c)), scanner_(scanner), timer_(conn_->get_executor()) {}

    void start(std::string leftover) {
        const auto& up = *ctx_->upstream;
        std::vector<std::string_view> hello = {"HELLO", "2"};
        const std::string user = up.username.value_or("default");
        if (up.password) hello.insert(hello.end(), {"AUTH", user, up.password->reveal()});
        if (!ctx_->client_name.empty()) hello.insert(hello.end(), {"SETNAME", ctx_->client_name});
        commands_ = resp::format_command({"RESET"}) + resp::format_command(hello);
        after_reset_ = 1;
        const std::string db = std::to_string(up.db);
        if (up.db != 0) {
            commands_ += resp::format_command({"SELECT", db});
            ++after_reset_;
        }
        timer_.expires_after(ctx_->recycle_timeout);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (!ec) self->done(false, "timed out");
        });
        conn_->set_reader(this);
        if (!leftover.empty() && !consume(leftover)) return;
        conn_->async_write(asio::buffer(commands_),
                           [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                               if (ec) self->done(false, "write failed");
                           });
        conn_->resume_reading();
    }

    bool on_upstream_data(upstream::connection&, std::string_view bytes) override {
        auto self = shared_from_this();
        consume(bytes);
        return !finished_;
    }

    void on_upstream_error(upstream::connection&, std::error_code ec) override {
        done(false, ec.message());
    }

private:
    // Frames before RESET's "+RESET" are what the old client was owed; after it, our replies.
    bool consume(std::string_view bytes) {
        while (!bytes.empty() && !finished_) {
            const auto r = scanner_.scan(bytes);
            if (r.status == resp::scan_status::error) return done(false, "malformed reply");
            bytes.remove_prefix(r.consumed);
            if (r.status != resp::scan_status::frame_done) break;
            const auto& info = scanner_.info();
            if (!seen_reset_) {
                if (info.type == '+' && info.head() == "RESET") seen_reset_ = true;
                if (info.type == '-' && info.head().substr(0, 11) == "ERR unknown") {
                    return done(false, "server has no RESET (Redis < 6.2)");
                }
                continue;
            }
            if (info.type == '-' || info.is_push) return done(false, "re-authentication refused");
            if (--after_reset_ == 0) {
                if (!bytes.empty()) return done(false, "unexpected bytes after RESET");
                return done(true, {});
            }
        }
        return true;
    }

    bool done(bool ok, const std::string& why) {
        if (finished_) return false;
        finished_ = true;
        timer_.cancel();
        conn_->set_reader(nullptr);
        if (ok) {
            ++ctx_->stats->recycled_reset;
        } else {
            ++ctx_->stats->discarded;
            log::debug("closing an upstream connection instead of reusing it", {{"reason", why}});
        }
        ctx_->pool->release(std::move(conn_), ok);
        return ok;
    }

    std::shared_ptr<session_context> ctx_;
    std::shared_ptr<upstream::connection> conn_;
    resp::scanner scanner_;
    asio::steady_timer timer_;
    std::string commands_;
    int after_reset_ = 0;
    bool seen_reset_ = false;
    bool finished_ = false;
};

}  // namespace

void recycle_with_reset(const std::shared_ptr<session_context>& context,
                        std::shared_ptr<upstream::connection> connection,
                        const resp::scanner& scanner, std::string leftover) {
    std::make_shared<recycler>(context, std::move(connection), scanner)->start(std::move(leftover));
}

}  // namespace redis_sidecar::bridge
