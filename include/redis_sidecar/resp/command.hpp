#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "redis_sidecar/resp/error.hpp"
#include "redis_sidecar/resp/scanner.hpp"
#include "redis_sidecar/resp/value.hpp"

struct redisReader;

namespace redis_sidecar::resp {

/// The multibulk encoding of a command ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), made by hiredis'
/// redisFormatCommandArgv. For the sidecar's own commands (HELLO, AUTH, PING, ROLE, ...);
/// forwarded client commands are never re-encoded. Throws std::bad_alloc if hiredis cannot
/// allocate, like any std::string would.
std::string format_command(std::span<const std::string_view> args);

/// Convenience overload: format_command({"AUTH", user, password}).
std::string format_command(std::initializer_list<std::string_view> args);

/// The kind of a RESP2 reply.
enum class reply_type : std::uint8_t { string, status, error, integer, nil, array };

/// One RESP2 reply, owned. Only the fields that match `type` carry meaning.
struct reply {
    reply_type type = reply_type::nil;
    /// string, status, error: the bytes (for an error: "ERR unknown command ...", no '-').
    std::string str;
    /// integer: the value.
    long long integer = 0;
    /// array: the elements.
    std::vector<reply> elements;

    friend bool operator==(const reply&, const reply&) = default;
};

/// Bytes a reply_reader holds before it refuses more: its own replies (HELLO, INFO, ROLE)
/// are small; 64 MiB bounds a misbehaving upstream.
inline constexpr std::size_t default_max_reader_buffer = std::size_t{64} * 1024 * 1024;

/// Memory one reply's objects may take in a reply_reader (hiredis' reply objects and element
/// tables, estimated as they are made); the sidecar's own replies take kilobytes. Headers within
/// the bounds still cost up to ~20 bytes of objects per byte received (an element table at each
/// `*N`, an object per element), so a reply streamed without end — an array of million-element
/// arrays — is cut here, not by the command's timeout after gigabytes.
inline constexpr std::size_t default_max_reply_memory = std::size_t{16} * 1024 * 1024;

/// Array nesting hiredis 0.14 parses (its read stack has 9 slots: 8 arrays and a leaf; its
/// message says "depth > 7" counting from 0). reply_reader's scanner refuses deeper replies
/// first, with error::nesting_too_deep.
inline constexpr std::size_t hiredis_max_depth = 8;

/// Most elements of one array reply_reader accepts. hiredis allocates an array's element
/// table up front, so the count must be bounded before hiredis sees the header.
inline constexpr std::int64_t default_max_reader_array = std::int64_t{1024} * 1024;

/// Turns a RESP2 byte stream into reply values, for the sidecar's own connections (hiredis'
/// redisReader underneath). Input is validated by a resp::scanner first, so an oversized or
/// malformed header is refused before hiredis allocates for it, and one reply's objects are
/// bounded (default_max_reply_memory). After an error the reader stays failed. Not copyable;
/// movable.
class reply_reader {
  public:
    /// A reader holding at most `max_buffer` unparsed bytes.
    explicit reply_reader(std::size_t max_buffer = default_max_reader_buffer);
    ~reply_reader();
    reply_reader(reply_reader&&) noexcept;
    reply_reader& operator=(reply_reader&&) noexcept;
    reply_reader(const reply_reader&) = delete;
    reply_reader& operator=(const reply_reader&) = delete;

    /// Appends bytes. Errors (malformed input, over the buffer bound) surface from next().
    void feed(std::string_view bytes);

    /// The next complete reply, or nullopt with `ec` clear when more bytes are needed, or
    /// nullopt with `ec` set (a resp::error) when the stream is invalid.
    std::optional<reply> next(std::error_code& ec);

    /// hiredis' or the scanner's description of the last error, for logs.
    const std::string& error_detail() const { return detail_; }

  private:
    struct reader_deleter {
        void operator()(redisReader* r) const noexcept;
    };
    /// What the reply being built has cost so far (hiredis' object functions charge it).
    struct memory_budget;
    struct budget_deleter {
        void operator()(memory_budget* b) const noexcept;
    };

    std::unique_ptr<memory_budget, budget_deleter> budget_;  // before reader_: outlives it
    std::unique_ptr<redisReader, reader_deleter> reader_;
    scanner scanner_;
    std::size_t max_buffer_;
    std::error_code pending_;  // an error found by feed(), reported after the replies before it
    std::error_code error_;    // the error next() reported; sticky
    std::string detail_;
};

/// A reply read by reply_reader (RESP2) as a resp::value, for code that reads both kinds (the
/// cluster topology parsers).
value to_value(const reply& r);

}  // namespace redis_sidecar::resp
