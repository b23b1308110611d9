#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis_sidecar/cluster/topology.hpp"

namespace redis_sidecar::cluster {

/// Which replies carry node addresses, by the command that asked.
enum class reply_kind : std::uint8_t {
    none,      ///< nothing to rewrite
    slots,     ///< CLUSTER SLOTS
    shards,    ///< CLUSTER SHARDS
    nodes,     ///< CLUSTER NODES
    replicas,  ///< CLUSTER REPLICAS / CLUSTER SLAVES
    /// EXEC of a transaction that queued some of the above: rewrite_transaction.
    transaction,
};

/// A topology command queued in a transaction: its place among the queued commands.
struct queued_command {
    std::size_t index = 0;
    reply_kind kind = reply_kind::none;
};

/// The kind of reply a command gets: `name` and `subcommand` as the client sent them (any case).
reply_kind kind_of(std::string_view name, std::string_view subcommand);

/// A reply held whole to be rewritten is at most this large; a larger one is replaced by an
/// error (its bytes are dropped as they arrive, never buffered).
inline constexpr std::size_t max_rewritten_reply = std::size_t{8} * 1024 * 1024;

/// What a rewrite needs from the running cluster bridge.
class address_book {
  public:
    virtual ~address_book() = default;
    /// The local port that stands for `n` (given one, and its listener started, if it had
    /// none). nullopt: no port is free (REDIS_SIDECAR_CLUSTER_PORTS is full) or `n` has no
    /// address.
    virtual std::optional<std::uint16_t> local_port(const node& n) = 0;
    /// The address local clients reach the sidecar's ports at ("127.0.0.1").
    virtual const std::string& local_host() const = 0;
    /// A MOVED came back: the topology changed; refresh it soon.
    virtual void redirected() = 0;
};

/// The outcome of one rewrite.
struct rewrite_result {
    std::string bytes;         ///< what the client gets
    bool rewritten = false;    ///< node addresses were replaced
    std::string error;         ///< non-empty: the reply could not be rewritten; `bytes` is an error
    std::size_t unmapped = 0;  ///< nodes left out: no local port was free for them
};

/// Rewrites every node address in `reply` (one whole RESP2/RESP3 reply to a `kind` command) to
/// the local port standing for that node. Nodes that get no port are left out. A reply of the
/// wrong shape becomes an error reply naming the command: a client must never learn an
/// upstream address it cannot reach.
rewrite_result rewrite_reply(reply_kind kind, std::string_view reply, address_book& book);

/// Rewrites EXEC's reply: the elements answering the queued topology commands as
/// rewrite_reply would, and MOVED/ASK errors among the elements. A nil (WATCH) or an error
/// (EXECABORT) passes as it is.
rewrite_result rewrite_transaction(std::string_view reply,
                                   const std::vector<queued_command>& queued, address_book& book);

/// Rewrites a MOVED/ASK error line (without the leading '-' and the CRLF); nullopt when `line`
/// is no redirect. A redirect to a node that gets no port becomes a CLUSTERDOWN-style error.
std::optional<rewrite_result> rewrite_redirect(std::string_view line, address_book& book);

/// The address form Redis uses in MOVED/ASK and CLUSTER NODES: "host:port".
std::string join_address(std::string_view host, std::uint16_t port);

}  // namespace redis_sidecar::cluster
