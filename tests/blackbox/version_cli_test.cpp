// `redis-sidecar version` as a black box: the version, the commit and the OpenSSL inside.

#include <gtest/gtest.h>
#include <openssl/opensslv.h>

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "sidecar_binary.hpp"

namespace redis_sidecar::testing {
namespace {

using json = nlohmann::json;

// No std::regex here: GCC 12 with ASan warns inside <regex> (-Wmaybe-uninitialized).
bool all_of_class(std::string_view s, int (*is)(int)) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [is](unsigned char c) { return is(c) != 0; });
}

// "1.2.3": three numbers separated by dots.
bool is_dotted_version(std::string_view s) {
    int parts = 0;
    for (std::size_t start = 0;; ++parts) {
        const auto dot = s.find('.', start);
        if (!all_of_class(s.substr(start, dot - start), ::isdigit)) return false;
        if (dot == std::string_view::npos) return parts + 1 == 3;
        start = dot + 1;
    }
}

// 12 lower-case hex digits, optionally followed by "-dirty".
bool is_short_commit(std::string_view s) {
    if (s.size() == 18 && s.substr(12) == "-dirty") s = s.substr(0, 12);
    return s.size() == 12 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

json version_json() {
    const auto r = run_sidecar({"version", "--output", "json"}, {});
    EXPECT_EQ(r.exit_code, 0) << r;
    return json::parse(r.out);
}

TEST(version_cli, json_names_version_commit_and_the_openssl_linked_in) {
    const auto j = version_json();
    EXPECT_EQ(j["version"], REDIS_SIDECAR_PROJECT_VERSION);
    // The library the binary was built against (the headers this test is compiled with):
    // linked statically, its version is in the binary whatever the image carries.
    EXPECT_EQ(j["openssl"]["version"], OPENSSL_FULL_VERSION_STR) << j;
    EXPECT_EQ(j["openssl"]["text"].get<std::string>().rfind("OpenSSL " OPENSSL_FULL_VERSION_STR, 0),
              0u)
        << j;
    EXPECT_EQ(j["openssl"]["linkage"], REDIS_SIDECAR_STATIC_DEPS ? "static" : "shared") << j;
    EXPECT_TRUE(is_dotted_version(j["hiredis"].get<std::string>())) << j;
    EXPECT_FALSE(j["compiler"].get<std::string>().empty());
}

TEST(version_cli, commit_is_the_source_trees_head) {
    const auto commit = version_json()["commit"].get<std::string>();
    const auto head = run_process({"git", "-C", REDIS_SIDECAR_SOURCE_DIR, "rev-parse", "HEAD"},
                                  base_env(), std::chrono::seconds(10));
    if (head.exit_code != 0) {
        // A source tree without .git: the build says so rather than inventing one.
        EXPECT_EQ(commit, "unknown");
        return;
    }
    ASSERT_TRUE(is_short_commit(commit)) << commit;
    EXPECT_EQ(trim(head.out).substr(0, 12), commit.substr(0, 12));
}

TEST(version_cli, openssl_is_not_a_shared_library_dependency) {
    // What `version` claims, checked from outside: no libssl / libcrypto in the dynamic section.
    const auto r =
        run_process({"readelf", "-d", REDIS_SIDECAR_BINARY}, base_env(), std::chrono::seconds(10));
    ASSERT_EQ(r.exit_code, 0) << r;
    const bool needs_libcrypto = r.out.find("[libcrypto.so") != std::string::npos;
    EXPECT_EQ(needs_libcrypto, !REDIS_SIDECAR_STATIC_DEPS) << r.out;
    EXPECT_EQ(r.out.find("[libssl.so") != std::string::npos, !REDIS_SIDECAR_STATIC_DEPS) << r.out;
}

TEST(version_cli, text_agrees_with_json) {
    const auto j = version_json();
    const auto r = run_sidecar({"version"}, {});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_EQ(r.out.substr(0, r.out.find('\n')),
              "redis-sidecar " + j["version"].get<std::string>());
    EXPECT_NE(r.out.find("\n  commit   " + j["commit"].get<std::string>() + "\n"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("\n  openssl  " + j["openssl"]["text"].get<std::string>()),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find(REDIS_SIDECAR_STATIC_DEPS ? "(linked statically)" : "(shared library)"),
              std::string::npos)
        << r.out;
    EXPECT_TRUE(r.err.empty()) << r;
}

TEST(version_cli, bad_output_is_a_usage_error) {
    const auto r = run_sidecar({"version", "--output", "yaml"}, {});
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_TRUE(r.out.empty()) << r;
    EXPECT_EQ(r.err, "redis-sidecar version: --output takes text or json\n");
    const auto extra = run_sidecar({"version", "--addr", "cache"}, {});
    EXPECT_EQ(extra.exit_code, 2) << extra;
}

}  // namespace
}  // namespace redis_sidecar::testing
