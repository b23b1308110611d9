#include "redis_sidecar/upstream/handshake.hpp"

#include "redis_sidecar/resp/command.hpp"
#include "redis_sidecar/upstream/error.hpp"

namespace redis_sidecar::upstream {

handshake make_handshake(const config::upstream_settings& up, std::string_view client_name,
                         handshake_options options) {
    handshake h;
    if (options.hello) {
        std::vector<std::string_view> hello = {"HELLO", "2"};
        const std::string user = up.username.value_or("default");
        if (up.password) hello.insert(hello.end(), {"AUTH", user, up.password->reveal()});
        if (!client_name.empty()) hello.insert(hello.end(), {"SETNAME", client_name});
        h.commands = resp::format_command(hello);
        h.steps.emplace_back("auth");
    } else {
        if (up.password) {
            h.commands += up.username
                              ? resp::format_command({"AUTH", *up.username, up.password->reveal()})
                              : resp::format_command({"AUTH", up.password->reveal()});
            h.steps.emplace_back("auth");
        }
        if (!client_name.empty()) {
            h.commands += resp::format_command({"CLIENT", "SETNAME", client_name});
            h.steps.emplace_back("setname");
        }
    }
    if (up.db != 0) {
        h.commands += resp::format_command({"SELECT", std::to_string(up.db)});
        h.steps.emplace_back("select");
    }
    if (options.ping) {
        h.commands += resp::format_command({"PING"});
        h.steps.emplace_back("ping");
    }
    return h;
}

server_info parse_hello(const resp::reply& hello) {
    server_info info;
    const auto& e = hello.elements;
    for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
        const auto& key = e[i].str;
        const auto& value = e[i + 1];
        if (key == "version") info.version = value.str;
        if (key == "role") info.role = value.str;
        if (key == "mode") info.mode = value.str;
        if (key == "id") info.client_id = value.integer;
    }
    return info;
}

namespace {

/// A reply's type for an error message; never its content (an AUTH reply is not a secret, but a
/// hostile upstream's bytes do not belong in logs).
std::string describe(const resp::reply& r) {
    switch (r.type) {
        case resp::reply_type::status:
            return "another status reply";
        case resp::reply_type::string:
            return "a bulk string";
        case resp::reply_type::integer:
            return "an integer";
        case resp::reply_type::array:
            return "an array of " + std::to_string(r.elements.size());
        case resp::reply_type::nil:
            return "a nil";
        case resp::reply_type::error:
            return "an error";
    }
    return "an unexpected reply";
}

std::string upper(std::string_view step) {
    if (step == "auth") return "AUTH";
    if (step == "setname") return "CLIENT SETNAME";
    if (step == "select") return "SELECT";
    return std::string(step);
}

}  // namespace

handshake_outcome check_handshake(const handshake& h, const std::vector<resp::reply>& replies,
                                  bool hello) {
    handshake_outcome out;
    const auto fail = [&out](error kind, const std::string& step, std::string detail) {
        out.ec = make_error_code(kind);
        out.failed_step = step;
        out.detail = std::move(detail);
        return out;
    };
    if (replies.size() != h.steps.size()) {
        return fail(error::protocol_error, h.steps.empty() ? "" : h.steps.front(),
                    "expected " + std::to_string(h.steps.size()) + " replies, got " +
                        std::to_string(replies.size()));
    }
    for (std::size_t i = 0; i < replies.size(); ++i) {
        const auto& r = replies[i];
        const auto& step = h.steps[i];
        if (r.type == resp::reply_type::error) {
            if (hello && i == 0 && r.str.find("unknown command") != std::string::npos) {
                out.no_hello = true;
                return fail(error::protocol_error, step, r.str);
            }
            return fail(classify_reply(r.str), step, r.str);
        }
        // A reply of the wrong type is refused like an error: the server is not what it claims
        // to be (or not in step with the commands), and a silently accepted one would hide it.
        if (hello && i == 0) {
            if (r.type != resp::reply_type::array || r.elements.size() % 2 != 0) {
                return fail(error::protocol_error, step,
                            "HELLO answered with " + describe(r) + ", not a map");
            }
        } else if (step == "ping") {
            if (r.type != resp::reply_type::status || r.str != "PONG") {
                return fail(error::protocol_error, step,
                            "PING answered with " + describe(r) + ", not PONG");
            }
        } else if (r.type != resp::reply_type::status || r.str != "OK") {
            return fail(error::protocol_error, step,
                        upper(step) + " answered with " + describe(r) + ", not OK");
        }
    }
    if (hello) {
        if (!replies.empty()) out.info = parse_hello(replies.front());
    } else {
        out.info.supports_hello = false;
    }
    return out;
}

}  // namespace redis_sidecar::upstream
