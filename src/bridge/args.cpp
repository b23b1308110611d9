#include "redis_sidecar/bridge/args.hpp"

#include <cctype>
#include <charconv>

namespace redis_sidecar::bridge {

namespace {

long long read_number(std::string_view frame, std::size_t& pos) {
    const auto end = frame.find('\r', pos);
    long long n = 0;
    std::from_chars(frame.data() + pos,
                    frame.data() + (end == std::string_view::npos ? frame.size() : end), n);
    pos = end == std::string_view::npos ? frame.size() : end + 2;
    return n;
}

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

}  // namespace

std::string_view skip_empty_commands(std::string_view frame) {
    while (!frame.empty()) {
        const auto eol = frame.find('\n');
        if (eol == std::string_view::npos) break;
        const auto line = frame.substr(0, eol);
        bool empty = false;
        if (line.front() == '*') {
            long long n = 1;
            const auto end = line.back() == '\r' ? line.size() - 1 : line.size();
            std::from_chars(line.data() + 1, line.data() + end, n);
            empty = n <= 0;
        } else {
            empty = line.find_first_not_of(" \t\r\v\f") == std::string_view::npos;
        }
        if (!empty) break;
        frame.remove_prefix(eol + 1);
    }
    return frame;
}

std::vector<std::string> split_multibulk(std::string_view frame) {
    frame = skip_empty_commands(frame);
    std::size_t pos = 0;
    while (pos < frame.size() && frame[pos] == '*') {
        ++pos;
        const auto count = read_number(frame, pos);
        if (count <= 0) continue;  // an empty command Redis ignores
        std::vector<std::string> args;
        args.reserve(static_cast<std::size_t>(count));
        for (long long i = 0; i < count && pos < frame.size(); ++i) {
            ++pos;  // '$'
            const auto len = static_cast<std::size_t>(read_number(frame, pos));
            args.emplace_back(frame.substr(pos, len));
            pos += len + 2;
        }
        return args;
    }
    return {};
}

std::vector<std::string> split_inline(std::string_view frame) {
    frame = skip_empty_commands(frame);
    std::vector<std::string> args;
    std::size_t i = 0;
    const auto n = frame.size();
    while (i < n) {
        // White space as sdssplitargs sees it (isspace), the line end aside: an argument loop
        // that stopped on a space this loop did not skip would never advance.
        while (i < n && frame[i] != '\n' && std::isspace(static_cast<unsigned char>(frame[i]))) ++i;
        if (i >= n) break;
        if (frame[i] == '\n') {
            if (!args.empty()) break;  // end of the command line
            ++i;                       // a blank line before it
            continue;
        }
        std::string arg;
        if (frame[i] == '"') {
            for (++i; i < n && frame[i] != '"'; ++i) {
                if (frame[i] == '\\' && i + 1 < n) {
                    const char e = frame[++i];
                    if (e == 'x' && i + 2 < n && hex(frame[i + 1]) >= 0 && hex(frame[i + 2]) >= 0) {
                        arg.push_back(
                            static_cast<char>(hex(frame[i + 1]) * 16 + hex(frame[i + 2])));
                        i += 2;
                    } else {
                        arg.push_back(e == 'n'   ? '\n'
                                      : e == 'r' ? '\r'
                                      : e == 't' ? '\t'
                                      : e == 'b' ? '\b'
                                      : e == 'a' ? '\a'
                                                 : e);
                    }
                } else {
                    arg.push_back(frame[i]);
                }
            }
            ++i;  // closing quote
        } else if (frame[i] == '\'') {
            for (++i; i < n && frame[i] != '\''; ++i) {
                if (frame[i] == '\\' && i + 1 < n && frame[i + 1] == '\'') ++i;
                arg.push_back(frame[i]);
            }
            ++i;
        } else {
            while (i < n && !std::isspace(static_cast<unsigned char>(frame[i])))
                arg.push_back(frame[i++]);
        }
        args.push_back(std::move(arg));
    }
    return args;
}

}  // namespace redis_sidecar::bridge
