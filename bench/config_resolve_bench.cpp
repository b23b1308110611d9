// Cost of config::resolve() — what `redis-sidecar run|config|check` pays once at start-up, and
// what a settings reload would pay. Three shapes of input, each resolved from scratch per
// iteration: a bare address; a typical ElastiCache pod (URL + TLS + pool + sidecar variables);
// the same plus a secrets directory and a YAML file (files are read on every resolve).
//
//   bash scripts/build.sh -DREDIS_SIDECAR_BENCH=ON   (or BUILD_DIR=build-bench)
//   build-bench/bench/config_resolve_bench

#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "redis_sidecar/config/resolver.hpp"

namespace {

namespace config = redis_sidecar::config;

config::inputs minimal_inputs() {
    config::inputs in;
    in.env["REDIS_ADDR"] = "localhost:6379";
    return in;
}

config::inputs elasticache_inputs() {
    config::inputs in;
    in.env["REDIS_URL"] =
        "rediss://app-user:an-auth-token-of-32-characters!!@master.my-cache.abc123.euw1.cache."
        "amazonaws.com:6379/3";
    in.env["REDIS_TLS_ENABLED"] = "true";
    in.env["REDIS_MAX_CONNECTIONS"] = "256";
    in.env["REDIS_MIN_IDLE_CONNECTIONS"] = "4";
    in.env["REDIS_CONNECTION_TIMEOUT"] = "2s";
    in.env["REDIS_SOCKET_TIMEOUT"] = "500ms";
    in.env["REDIS_SIDECAR_LISTEN"] = "127.0.0.1:6379";
    in.env["REDIS_SIDECAR_SOCKET"] = "/run/redis-sidecar/redis.sock";
    in.env["REDIS_SIDECAR_HTTP_ADDR"] = "0.0.0.0:9090";
    in.env["REDIS_SIDECAR_LOG_LEVEL"] = "warn";
    // Unrelated variables a pod carries too (Kubernetes service links, PATH, ...).
    for (int n = 0; n < 40; ++n) {
        in.env["SOME_SERVICE_" + std::to_string(n) + "_PORT"] = "tcp://10.0.0.1:80";
    }
    in.env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    return in;
}

/// A secrets directory and a YAML file in a private temporary directory, removed at exit.
struct file_fixture {
    std::filesystem::path dir;
    file_fixture() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "rs-config-bench.XXXXXX");
        dir = ::mkdtemp(tmpl.data());
        std::filesystem::create_directories(dir / "secrets");
        std::ofstream(dir / "secrets" / "password") << "an-auth-token-of-32-characters!!\n";
        std::ofstream(dir / "secrets" / "username") << "app-user\n";
        std::ofstream(dir / "config.yaml")
            << "upstream:\n"
               "  host: master.my-cache.abc123.euw1.cache.amazonaws.com\n"
               "  port: 6379\n"
               "  tls: {enabled: true}\n"
               "pool:\n"
               "  max_connections: 64\n"
               "  min_idle_connections: 2\n";
    }
    ~file_fixture() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

void resolve_loop(benchmark::State& state, const config::inputs& in) {
    for (auto _ : state) {
        auto r = config::resolve(in);
        benchmark::DoNotOptimize(r);
    }
    state.counters["resolves/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void bm_resolve_minimal(benchmark::State& state) {
    resolve_loop(state, minimal_inputs());
}

void bm_resolve_elasticache_env(benchmark::State& state) {
    resolve_loop(state, elasticache_inputs());
}

void bm_resolve_with_files(benchmark::State& state) {
    static const file_fixture files;
    config::inputs in = elasticache_inputs();
    in.env.erase("REDIS_URL");  // the address and credentials come from the YAML and secrets
    in.env["REDIS_SIDECAR_SECRETS_DIR"] = (files.dir / "secrets").string();
    in.env["REDIS_SIDECAR_CONFIG"] = (files.dir / "config.yaml").string();
    resolve_loop(state, in);
}

void bm_resolve_and_print_json(benchmark::State& state) {
    const config::inputs in = elasticache_inputs();
    for (auto _ : state) {
        auto text = config::to_json(config::resolve(in).values).dump();
        benchmark::DoNotOptimize(text);
    }
}

BENCHMARK(bm_resolve_minimal);
BENCHMARK(bm_resolve_elasticache_env);
BENCHMARK(bm_resolve_with_files);
BENCHMARK(bm_resolve_and_print_json);

}  // namespace
