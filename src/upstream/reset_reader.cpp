#include "redis_sidecar/upstream/reset_reader.hpp"

#include "redis_sidecar/upstream/error.hpp"

namespace redis_sidecar::upstream {

namespace {
/// HELLO's reply is ~200 bytes; the re-authentication's replies never come near this.
constexpr std::size_t reauth_buffer = std::size_t{64} * 1024;
}  // namespace

reset_reader::reset_reader(const resp::scanner& scanner, std::optional<std::uint64_t> owed,
                           handshake reauth)
    : scanner_(scanner),
      owed_(owed),
      reauth_(std::move(reauth)),
      commands_(resp::format_command({"RESET"}) + reauth_.commands),
      reader_(reauth_buffer) {}

bool reset_reader::fail(error kind, std::string why) {
    outcome_ = reset_result{make_error_code(kind), std::move(why)};
    return false;
}

// The replies the old client was owed come first (counted, or up to the first "+RESET" when it
// left request/reply), then RESET's, then the re-authentication's.
std::optional<reset_result> reset_reader::feed(std::string_view bytes) {
    while (!bytes.empty() && !outcome_) {
        const auto r = scanner_.scan(bytes);
        if (r.status == resp::scan_status::error) {
            fail(error::protocol_error, "malformed reply");
            break;
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
        // error or a push can begin: refuse anything else at its first byte.
        const bool resets_turn = owed_ && *owed_ == 0;
        if (resets_turn && info.type != '+' && info.type != '-' && info.type != '>') {
            fail(error::protocol_error, "unexpected reply before RESET's");
            break;
        }
        if (!frame_done) break;
        if (owed_ && *owed_ > 0) {
            if (!info.is_push) --*owed_;
            continue;
        }
        if (info.type == '+' && info.head() == "RESET") {
            seen_reset_ = true;
            if (reauth_.steps.empty()) {
                if (bytes.empty()) {
                    outcome_ = reset_result{};
                } else {
                    fail(error::protocol_error, "bytes after RESET");
                }
            }
        } else if (info.type == '-' && info.head().substr(0, 11) == "ERR unknown") {
            outcome_ = reset_result{make_error_code(error::server_error),
                                    "server has no RESET (Redis < 6.2)", true};
        } else if (owed_ && !info.is_push) {
            fail(error::protocol_error, "unexpected reply before RESET's");
        }
    }
    return outcome_;
}

// After RESET the connection speaks RESP2 again. `frame` is one reply or its start.
void reset_reader::reauth_reply(std::string_view frame, bool frame_done, bool last) {
    reader_.feed(frame);
    std::error_code ec;
    auto reply = reader_.next(ec);
    if (ec) {
        fail(error::protocol_error, "re-authentication: " + reader_.error_detail());
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
        fail(error::protocol_error, "bytes after RESET");
        return;
    }
    const auto out = check_handshake(reauth_, replies_, true);
    outcome_ = out.ec ? reset_result{out.ec, "re-authentication: " + out.detail} : reset_result{};
}

}  // namespace redis_sidecar::upstream
