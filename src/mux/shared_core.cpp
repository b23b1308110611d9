#include "redis_sidecar/mux/shared_core.hpp"

#include <utility>

namespace redis_sidecar::mux {

namespace {

resp::scanner_options reply_options(const shared_options& options) {
    auto o = options.replies;
    o.resp3 = options.resp3;
    return o;
}

}  // namespace

shared_core::shared_core(const shared_options& options)
    : options_(options),
      commands_(resp::direction::command, resp::scanner_options::for_commands()),
      replies_(resp::direction::reply, reply_options(options)) {}

// ---------------------------------------------------------------------------------------------
// Commands

submit_status shared_core::submit(client_id client, std::string_view bytes) {
    if (broken_ || violated_) return submit_status::broken;
    const auto& limits = options_.limits;
    // Checked before the bytes are scanned: a caller retries a refused command often.
    if (queue_.size() >= limits.max_commands ||
        (!queue_.empty() && bytes_in_flight_ + bytes.size() > limits.max_bytes)) {
        return submit_status::full;
    }
    if (!one_whole_command(bytes)) return submit_status::not_one_command;
    out_.append(bytes);
    queue_.push_back({client, bytes.size()});
    ++per_client_[client];
    bytes_in_flight_ += bytes.size();
    return submit_status::accepted;
}

bool shared_core::one_whole_command(std::string_view bytes) {
    const auto r = commands_.scan(bytes);
    const bool whole = r.status == resp::scan_status::frame_done && r.consumed == bytes.size();
    if (!whole) commands_.reset();  // mid-frame or failed: the next command starts afresh
    return whole;
}

std::string shared_core::take_output() {
    return std::exchange(out_, std::string());
}

// ---------------------------------------------------------------------------------------------
// Replies

feed_status shared_core::feed_upstream(std::string_view bytes, std::vector<routed_piece>& pieces) {
    if (broken_ || violated_) return feed_status::violation;
    const std::size_t first_piece = pieces.size();  // only this call's pieces are extended
    // Adds bytes [pos, pos + size) for the front client.
    auto route = [&](std::size_t pos, std::size_t size, bool reply_done) {
        const client_id owner = queue_.front().client;
        const char* begin = bytes.data() + pos;
        if (pieces.size() > first_piece && pieces.back().client == owner &&
            pieces.back().bytes.data() + pieces.back().bytes.size() == begin) {
            auto& last = pieces.back();
            last.bytes = std::string_view(last.bytes.data(), last.bytes.size() + size);
        } else {
            pieces.push_back({owner, std::string_view(begin, size), 0});
        }
        if (reply_done) ++pieces.back().replies_completed;
    };
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        if (!mid_reply_ && (queue_.empty() || bytes[pos] == '>')) {
            violated_ = true;  // a reply nobody waits for, or a push
            return feed_status::violation;
        }
        const auto r = replies_.scan(bytes.substr(pos));
        // A push behind an attribute is known only once its type byte is scanned; the
        // attribute's bytes may already have gone to the front client (broken() says so).
        if (r.status == resp::scan_status::error || replies_.info().is_push) {
            violated_ = true;
            return feed_status::violation;
        }
        const bool done = r.status == resp::scan_status::frame_done;
        route(pos, r.consumed, done);
        pos += r.consumed;
        if (done) {
            complete_front();
        } else {
            mid_reply_ = true;
        }
    }
    return feed_status::ok;
}

void shared_core::complete_front() {
    const auto front = queue_.front();
    queue_.pop_front();
    bytes_in_flight_ -= front.bytes;
    const auto it = per_client_.find(front.client);
    if (--it->second == 0) per_client_.erase(it);
    mid_reply_ = false;
}

// ---------------------------------------------------------------------------------------------
// The end

std::vector<lost_commands> shared_core::broken() {
    std::vector<lost_commands> lost;
    if (!broken_) {
        lost.reserve(per_client_.size());
        std::unordered_map<client_id, std::size_t> index;  // client → its entry in `lost`
        index.reserve(per_client_.size());
        for (const auto& c : queue_) {
            const auto [it, added] = index.try_emplace(c.client, lost.size());
            if (added) lost.push_back({c.client, 0, false});
            ++lost[it->second].commands;
        }
        if (mid_reply_ && !lost.empty()) lost.front().partial_reply = true;
    }
    broken_ = true;
    queue_.clear();
    per_client_.clear();
    out_.clear();
    bytes_in_flight_ = 0;
    mid_reply_ = false;
    return lost;
}

// ---------------------------------------------------------------------------------------------
// State

std::size_t shared_core::in_flight(client_id client) const {
    const auto it = per_client_.find(client);
    return it == per_client_.end() ? 0 : it->second;
}

}  // namespace redis_sidecar::mux
