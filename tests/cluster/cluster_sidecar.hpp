#pragma once

// A TLS Redis Cluster shaped like ElastiCache's (tests/support/redis_cluster.hpp) with the
// sidecar binary in front of it in cluster mode, for the black-box cluster tests.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "faults/sidecar_process.hpp"
#include "support/redis_cluster.hpp"

namespace redis_sidecar::cluster_test {

using namespace redis_sidecar::testing;
using namespace std::chrono_literals;
using faults_test::http_status;
using faults_test::sidecar_process;

/// The nodes' password (requirepass and masterauth).
inline const std::string cluster_password = "cluster-password-0123456789";

/// `count` consecutive loopback ports nobody listens on now (first of them), from a random
/// place in 20000-59999. Throws if none is found.
inline std::uint16_t free_port_range(std::size_t count) {
    std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 200; ++attempt) {
        const auto first =
            static_cast<std::uint16_t>(std::uniform_int_distribution<int>(20000, 59000)(rng));
        bool all_free = true;
        for (std::size_t i = 0; i < count && all_free; ++i) {
            unique_fd fd(::socket(AF_INET, SOCK_STREAM, 0));
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(static_cast<std::uint16_t>(first + i));
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            all_free = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        }
        if (all_free) return first;
    }
    throw std::runtime_error("no free port range of " + std::to_string(count));
}

/// The sidecar's environment for `cluster`, node ports from `first_port`.
inline env_map sidecar_env(const redis_cluster& cluster, std::uint16_t first_port,
                           std::size_t ports = 20) {
    env_map env;
    env["REDIS_ADDR"] = cluster.seed();
    env["REDIS_SIDECAR_HOSTS_FILE"] = cluster.hosts_file();
    env["REDIS_TLS_ENABLED"] = "true";
    env["REDIS_TLS_CA_FILE"] = cluster.pki().ca_cert();
    if (cluster.options().requirepass) env["REDIS_PASSWORD"] = *cluster.options().requirepass;
    env["REDIS_SIDECAR_CLUSTER_PORTS"] =
        std::to_string(first_port) + "-" + std::to_string(first_port + ports - 1);
    return env;
}

/// GET /status as JSON.
inline nlohmann::json status_of(const sidecar_process& s) {
    std::string body;
    http_status(s.http_port(), "/status", &body);
    return nlohmann::json::parse(body, nullptr, false);
}

/// Default options: 3 primaries + 3 replicas, TLS, host names, a password.
inline redis_cluster_options cluster_options() {
    redis_cluster_options o;
    o.requirepass = cluster_password;
    return o;
}

}  // namespace redis_sidecar::cluster_test
