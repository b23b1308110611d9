#pragma once

// `redis-sidecar version`: what was built, from which commit, with which libraries inside.

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace redis_sidecar::app {

/// What a build is made of. OpenSSL is linked into the binary (REDIS_SIDECAR_STATIC_DEPS), so
/// its version is the one a CVE triage needs, and the image's libssl (if any) says nothing.
struct build_info {
    std::string version;          ///< the project's version (CMake's PROJECT_VERSION)
    std::string commit;           ///< git commit, "-dirty" when built from modified sources
    std::string openssl;          ///< OpenSSL_version(OPENSSL_VERSION) of the linked library
    std::string openssl_version;  ///< its bare number, "3.0.17"
    bool openssl_static = false;  ///< no libcrypto shared object is loaded in this process
    std::string hiredis;          ///< the hiredis version compiled in
    std::string compiler;         ///< "GCC 12.2.0"
    std::string build_type;       ///< CMAKE_BUILD_TYPE
};

/// The running binary's build information.
build_info this_build();

/// The text form: the first line is "redis-sidecar VERSION", then one line per part.
std::string to_text(const build_info& b);

/// The JSON form: {version, commit, openssl: {version, text, linkage}, hiredis, compiler,
/// build_type}.
nlohmann::json to_json(const build_info& b);

}  // namespace redis_sidecar::app
