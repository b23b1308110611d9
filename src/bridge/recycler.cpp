#include "redis_sidecar/bridge/recycler.hpp"

#include <boost/asio/steady_timer.hpp>

#include "redis_sidecar/bridge/context.hpp"
#include "redis_sidecar/upstream/pool.hpp"
#include "redis_sidecar/log/logger.hpp"
#include "redis_sidecar/resp/command.hpp"

namespace redis_sidecar::bridge {

namespace asio = boost::asio;

namespace {

class recycler final : public upstream::reader, public std::enable_shared_from_this<recycler> {
public:
    recycler(std::shared_ptr<session_context> ctx, std::shared_ptr<upstream::connection> c,
             const resp::scanner& scanner, std::optional<std::uint64_t> owed)
        : ctx_(std::move(ctx)), conn_(std::move(c)), scanner_(scanner), owed_(owed),
          timer_(conn_->get_executor()) {}

    void start(std::string leftover) {
        auto reauth = make_reauth_pipeline(*ctx_);
        commands_ = resp::format_command({"RESET"}) + std::move(reauth.commands);
        after_reset_ = reauth.replies;
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
    // The replies the old client was owed come first (counted, or up to the first "+RESET" when
    // it left request/reply), then RESET's, then the re-authentication's.
    bool consume(std::string_view bytes) {
        while (!bytes.empty() && !finished_) {
            const auto r = scanner_.scan(bytes);
            if (r.status == resp::scan_status::error) return done(false, "malformed reply");
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
                } else if (info.type == '-' && info.head().substr(0, 11) == "ERR unknown") {
                    return done(false, "server has no RESET (Redis < 6.2)");
                } else if (owed_ && !info.is_push) {
                    return done(false, "unexpected reply before RESET's");
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
    std::optional<std::uint64_t> owed_;
    asio::steady_timer timer_;
    std::string commands_;
    std::uint64_t after_reset_ = 0;
    bool seen_reset_ = false;
    bool finished_ = false;
};

}  // namespace

void recycle_with_reset(const std::shared_ptr<session_context>& context,
                        std::shared_ptr<upstream::connection> connection,
                        const resp::scanner& scanner, std::string leftover,
                        std::optional<std::uint64_t> owed) {
    std::make_shared<recycler>(context, std::move(connection), scanner, owed)
        ->start(std::move(leftover));
}

}  // namespace redis_sidecar::bridge
