#include "redis_sidecar/upstream/handshake.hpp"

#include "redis_sidecar/resp/command.hpp"

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

}  // namespace redis_sidecar::upstream
