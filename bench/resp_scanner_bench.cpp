// Throughput of resp::scanner over realistic streams. Each benchmark scans a prepared buffer of
// about 4 MiB, fed in pieces the size of a socket read (the argument; 0 = the whole buffer).
//
//   ninja -C build-resp resp_scanner_bench && build-resp/bench/resp_scanner_bench

#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "redis_sidecar/resp/scanner.hpp"

namespace {

using redis_sidecar::resp::direction;
using redis_sidecar::resp::scan_status;
using redis_sidecar::resp::scanner;

/// Stream size each benchmark's buffer is grown to.
constexpr std::size_t stream_bytes = 4 * 1024 * 1024;

std::string bulk(std::string_view s) {
    return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

std::string command(std::initializer_list<std::string_view> args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string_view a : args) out += bulk(a);
    return out;
}

/// Pipelined SET key:N <value> / GET key:N; every `big_every`-th value is 16 KiB (0: never).
std::string set_get_stream(std::size_t value_size, std::size_t big_every) {
    const std::string value(value_size, 'v');
    const std::string big_value(16 * 1024, 'V');
    std::string out;
    for (std::size_t n = 0; out.size() < stream_bytes; ++n) {
        const std::string key = "key:" + std::to_string(n);
        const bool big = big_every != 0 && n % big_every == 0;
        out += command({"SET", key, big ? big_value : value});
        out += command({"GET", key});
    }
    return out;
}

/// What a server answers: bulk strings (GET), integers (INCR), +OK, and LRANGE arrays.
std::string reply_stream() {
    const std::string value(100, 'v');
    std::string lrange = "*100\r\n";
    for (int k = 0; k < 100; ++k) lrange += bulk("item:" + std::to_string(k));
    std::string out;
    for (std::size_t n = 0; out.size() < stream_bytes; ++n) {
        out += bulk(value);
        out += ":" + std::to_string(n) + "\r\n";
        out += "+OK\r\n";
        if (n % 10 == 0) out += lrange;
    }
    return out;
}

std::string inline_stream() {
    std::string out;
    for (std::size_t n = 0; out.size() < stream_bytes; ++n) {
        out += "SET key:" + std::to_string(n) + " \"some value\"\r\nGET key:" + std::to_string(n) +
               "\r\n";
    }
    return out;
}

void scan_stream(benchmark::State& state, direction dir, const std::string& stream) {
    const auto piece = static_cast<std::size_t>(state.range(0));
    std::size_t frames = 0;
    scanner s(dir);
    for (auto _ : state) {
        std::string_view rest = stream;
        while (!rest.empty()) {
            std::string_view chunk = piece == 0 ? rest : rest.substr(0, piece);
            rest.remove_prefix(chunk.size());
            while (!chunk.empty()) {
                const auto r = s.scan(chunk);
                if (r.status == scan_status::error) {
                    state.SkipWithError("scan error");
                    return;
                }
                frames += r.status == scan_status::frame_done;
                chunk.remove_prefix(r.consumed);
            }
        }
    }
    benchmark::DoNotOptimize(frames);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
    state.counters["frames/s"] =
        benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
}

void bm_set_get_100b(benchmark::State& state) {
    static const std::string stream = set_get_stream(100, 0);
    scan_stream(state, direction::command, stream);
}

void bm_set_get_mixed_16k(benchmark::State& state) {
    static const std::string stream = set_get_stream(100, 8);
    scan_stream(state, direction::command, stream);
}

void bm_replies(benchmark::State& state) {
    static const std::string stream = reply_stream();
    scan_stream(state, direction::reply, stream);
}

void bm_inline_commands(benchmark::State& state) {
    static const std::string stream = inline_stream();
    scan_stream(state, direction::command, stream);
}

BENCHMARK(bm_set_get_100b)->Arg(0)->Arg(16 * 1024);
BENCHMARK(bm_set_get_mixed_16k)->Arg(0)->Arg(16 * 1024);
BENCHMARK(bm_replies)->Arg(0)->Arg(16 * 1024);
BENCHMARK(bm_inline_commands)->Arg(0)->Arg(16 * 1024);

}  // namespace
