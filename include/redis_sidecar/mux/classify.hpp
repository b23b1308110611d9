#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace redis_sidecar::mux {

/// Where a command may run (issue 16).
enum class route : std::uint8_t {
    /// On a connection shared with other clients: the command neither reads nor changes
    /// connection state, answers with exactly one reply and never blocks the connection.
    shareable,
    /// On the client's own leased connection, which it then keeps until it disconnects.
    dedicated,
};

/// Why a command needs a dedicated connection. The names (to_string) are metric labels.
enum class pin_reason : std::uint8_t {
    /// Shareable: no reason.
    none,
    /// MULTI / EXEC / DISCARD / WATCH / UNWATCH: the connection holds a transaction or watches.
    transaction,
    /// (P/S)SUBSCRIBE, their UNSUBSCRIBEs, MONITOR: replies stop answering commands one for one.
    pubsub,
    /// May block the connection (BLPOP …, WAIT, XREAD … BLOCK): everything behind it would wait.
    blocking,
    /// Sets or reads state of the connection itself: SELECT, AUTH, HELLO with AUTH or SETNAME,
    /// READONLY, ASKING, RESET, QUIT, CLIENT (all but a few), replication handshakes.
    connection_state,
    /// Administration that may stall, crash or close the connection it arrives on: DEBUG,
    /// SHUTDOWN.
    admin,
    /// Not in the table (module commands, commands newer than the table): safe by default.
    unknown,
};

/// The label of a reason: "none", "transaction", "pubsub", "blocking", "connection_state",
/// "admin", "unknown".
std::string_view to_string(pin_reason reason);

/// How a table row's class is decided.
enum class rule : std::uint8_t {
    /// By the row alone.
    fixed,
    /// By the subcommand (the first argument): the row `name|subcommand`; a subcommand that has
    /// no row is dedicated (unknown). CLIENT only.
    subcommand,
    /// XREAD / XREADGROUP: blocking when a BLOCK option precedes STREAMS, else shareable.
    block_option,
    /// HELLO: shareable when it neither authenticates nor names the connection (see
    /// classify()).
    hello,
};

/// One row of the command table.
struct command_row {
    /// Lower-case command name; `name|subcommand` for a subcommand row.
    std::string_view name;
    route where = route::dedicated;
    pin_reason reason = pin_reason::unknown;
    rule how = rule::fixed;
};

/// The result of classify().
struct classification {
    route where = route::dedicated;
    pin_reason reason = pin_reason::unknown;
    /// The protocol the shared connection must speak, 2 or 3, for a HELLO that names one (it
    /// leaves the client speaking it); 0: the client's current protocol.
    int protocol = 0;

    bool shareable() const { return where == route::shareable; }
    friend bool operator==(const classification&, const classification&) = default;
};

/// The command table: every command of Redis 7.2 / 7.4 (and the hash-field TTL, stream and
/// hash commands of 8.x) with its class, sorted by name (`|` sorts after letters, so a
/// subcommand row follows its command's row). One table of data; see docs/architecture.md
/// "Multiplexing (issue 16)" for why each dedicated row is there.
std::span<const command_row> command_table();

/// The row of `name` (any case; `client|id` for a subcommand row), or nullptr.
const command_row* find_command(std::string_view name);

/// True when the class of `name` (any case) depends on its arguments (CLIENT, HELLO, XREAD,
/// XREADGROUP): only then need the caller split the command to call classify() with them.
bool depends_on_arguments(std::string_view name);

/// The class of a command: `name` (any case) and the arguments after it (only those of the
/// commands depends_on_arguments() names are read). Unknown commands are dedicated (unknown).
/// HELLO: without a protocol version (an information request) → shareable; HELLO 2 or HELLO 3
/// without AUTH and SETNAME → shareable on a shared connection of that protocol (`protocol`);
/// anything else → dedicated (connection_state). Its reply
/// carries the shared connection's `id` field; a client that hands that id to CLIENT TRACKING
/// REDIRECT is already dedicated by the TRACKING.
classification classify(std::string_view name, std::span<const std::string_view> args = {});

}  // namespace redis_sidecar::mux
