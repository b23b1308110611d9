#include "redis_sidecar/resp/command.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <climits>
#include <new>
#include <string_view>
#include <utility>

namespace redis_sidecar::resp {
namespace {

/// The scanner options that match what hiredis 0.14 (RESP2 only) can parse, bounded so that
/// hiredis never allocates for a header the sidecar would not accept.
scanner_options reader_options(std::size_t max_buffer) {
    scanner_options o = scanner_options::for_replies();
    o.resp3 = false;
    o.max_aggregate_length = default_max_reader_array;
    o.max_bulk_length =
        std::min<std::int64_t>(default_max_bulk_length, static_cast<std::int64_t>(max_buffer));
    return o;
}

}  // namespace

// hiredis calls these to make each reply object; each charges the reply's budget first and
// refuses (hiredis then fails with REDIS_ERR_OOM, reported as reply_too_large) past its limit.
struct reply_reader::memory_budget {
    const redisReplyObjectFunctions* base = nullptr;  // hiredis' own functions
    std::size_t spent = 0;
    std::size_t limit = default_max_reply_memory;
    bool exceeded = false;

    static memory_budget& of(const redisReadTask* t) {
        while (t->privdata == nullptr && t->parent != nullptr) t = t->parent;
        return *static_cast<memory_budget*>(t->privdata);
    }
    bool charge(std::size_t bytes) {
        // An object also costs its allocation's header.
        const std::size_t cost = sizeof(redisReply) + 16 + bytes;
        if (cost > limit - spent) {
            exceeded = true;
            return false;
        }
        spent += cost;
        return true;
    }
    static void* string(const redisReadTask* t, char* s, std::size_t len) {
        auto& b = of(t);
        return b.charge(len + 1) ? b.base->createString(t, s, len) : nullptr;
    }
    static void* array(const redisReadTask* t, int elements) {
        auto& b = of(t);
        const auto n = static_cast<std::size_t>(std::max(elements, 0));
        return b.charge(n * sizeof(redisReply*)) ? b.base->createArray(t, elements) : nullptr;
    }
    static void* integer(const redisReadTask* t, long long v) {
        auto& b = of(t);
        return b.charge(0) ? b.base->createInteger(t, v) : nullptr;
    }
    static void* nil(const redisReadTask* t) {
        auto& b = of(t);
        return b.charge(0) ? b.base->createNil(t) : nullptr;
    }
};

void reply_reader::budget_deleter::operator()(memory_budget* b) const noexcept {
    delete b;
}

namespace {

reply convert(const redisReply& r) {
    reply out;
    switch (r.type) {
        case REDIS_REPLY_STRING:
            out.type = reply_type::string;
            out.str.assign(r.str, r.len);
            break;
        case REDIS_REPLY_STATUS:
            out.type = reply_type::status;
            out.str.assign(r.str, r.len);
            break;
        case REDIS_REPLY_ERROR:
            out.type = reply_type::error;
            out.str.assign(r.str, r.len);
            break;
        case REDIS_REPLY_INTEGER:
            out.type = reply_type::integer;
            out.integer = r.integer;
            break;
        case REDIS_REPLY_ARRAY:
            out.type = reply_type::array;
            out.elements.reserve(r.elements);
            // Recursion is bounded by hiredis_max_depth (the scanner checks it first).
            for (std::size_t k = 0; k < r.elements; ++k)
                out.elements.push_back(convert(*r.element[k]));
            break;
        default:
            out.type = reply_type::nil;
            break;
    }
    return out;
}

error map_hiredis_error(const redisReader& r) {
    if (r.err == REDIS_ERR_OOM) return error::out_of_memory;
    const std::string_view detail(r.errstr);
    if (detail.find("depth") != std::string_view::npos) return error::nesting_too_deep;
    if (detail.find("reply type byte") != std::string_view::npos) {
        return error::invalid_reply_type;
    }
    return error::protocol_error;
}

}  // namespace

std::string format_command(std::span<const std::string_view> args) {
    if (args.size() > static_cast<std::size_t>(INT_MAX)) throw std::bad_alloc();
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const std::string_view a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    char* target = nullptr;
    const int n =
        redisFormatCommandArgv(&target, static_cast<int>(args.size()), argv.data(), lengths.data());
    if (n < 0 || target == nullptr) throw std::bad_alloc();
    const std::unique_ptr<char, void (*)(char*)> owned(target, redisFreeCommand);
    return {target, static_cast<std::size_t>(n)};
}

std::string format_command(std::initializer_list<std::string_view> args) {
    return format_command(std::span<const std::string_view>(args.begin(), args.size()));
}

void reply_reader::reader_deleter::operator()(redisReader* r) const noexcept {
    redisReaderFree(r);
}

reply_reader::reply_reader(std::size_t max_buffer)
    : budget_(new memory_budget),
      reader_(redisReaderCreate()),
      scanner_(direction::reply, reader_options(max_buffer)),
      max_buffer_(max_buffer) {
    if (!reader_) throw std::bad_alloc();
    static redisReplyObjectFunctions budgeted = {memory_budget::string, memory_budget::array,
                                                 memory_budget::integer, memory_budget::nil,
                                                 freeReplyObject};
    budget_->base = reader_->fn;
    reader_->fn = &budgeted;
    reader_->privdata = budget_.get();
}

reply_reader::~reply_reader() = default;
reply_reader::reply_reader(reply_reader&&) noexcept = default;
reply_reader& reply_reader::operator=(reply_reader&&) noexcept = default;

void reply_reader::feed(std::string_view bytes) {
    if (error_ || pending_ || !reader_) return;
    const std::size_t unparsed = reader_->len - reader_->pos;
    if (unparsed + bytes.size() > max_buffer_) {
        pending_ = make_error_code(error::reply_too_large);
        detail_ = "more than " + std::to_string(max_buffer_) + " unparsed bytes";
        return;
    }
    // Only bytes the scanner accepted reach hiredis: a bad header stops here, before hiredis
    // would act on it (for example allocate an element table for "*2147483647").
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        const scan_result r = scanner_.scan(bytes.substr(pos));
        if (r.consumed > 0 &&
            redisReaderFeed(reader_.get(), bytes.data() + pos, r.consumed) != REDIS_OK) {
            pending_ = make_error_code(map_hiredis_error(*reader_));
            detail_ = reader_->errstr;
            return;
        }
        pos += r.consumed;
        if (r.status == scan_status::error) {
            pending_ = r.error;
            detail_ = scanner_.error_reply();
            return;
        }
        if (r.status == scan_status::need_more) return;
    }
}

std::optional<reply> reply_reader::next(std::error_code& ec) {
    ec.clear();
    if (error_ || !reader_) {
        ec = error_ ? error_ : make_error_code(error::protocol_error);
        return std::nullopt;
    }
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
        if (budget_->exceeded) {
            error_ = make_error_code(error::reply_too_large);
            detail_ =
                "a reply taking more than " + std::to_string(budget_->limit) + " bytes of memory";
        } else {
            error_ = make_error_code(map_hiredis_error(*reader_));
            detail_ = reader_->errstr;
        }
        ec = error_;
        return std::nullopt;
    }
    if (raw == nullptr) {
        if (pending_) {
            error_ = pending_;
            ec = error_;
        }
        return std::nullopt;
    }
    budget_->spent = 0;  // the next reply starts its own budget
    const std::unique_ptr<redisReply, void (*)(void*)> owned(static_cast<redisReply*>(raw),
                                                             freeReplyObject);
    return convert(*owned);
}

value to_value(const reply& r) {
    value v;
    switch (r.type) {
        case reply_type::status:
            v.type = '+';
            v.text = r.str;
            break;
        case reply_type::error:
            v.type = '-';
            v.text = r.str;
            break;
        case reply_type::string:
            v.type = '$';
            v.text = r.str;
            break;
        case reply_type::integer:
            v.type = ':';
            v.text = std::to_string(r.integer);
            break;
        case reply_type::array:
            v.type = '*';
            v.items.reserve(r.elements.size());
            for (const auto& e : r.elements) v.items.push_back(to_value(e));
            break;
        case reply_type::nil:
            v.type = '$';
            v.null = true;
            break;
    }
    return v;
}

}  // namespace redis_sidecar::resp
