#include "version.hpp"

#include <link.h>
#include <openssl/crypto.h>

#include <string_view>

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include "git_commit.hpp"

#ifndef REDIS_SIDECAR_VERSION
#define REDIS_SIDECAR_VERSION "0.0.0"
#endif
#ifndef REDIS_SIDECAR_BUILD_TYPE
#define REDIS_SIDECAR_BUILD_TYPE ""
#endif

namespace redis_sidecar::app {

namespace {

#define RS_STRINGIFY_(x) #x
#define RS_STRINGIFY(x) RS_STRINGIFY_(x)

// Asked of the process rather than of the build flags: what matters for a CVE is whether the
// code that runs came from a shared libcrypto (then the image's package decides its version).
bool libcrypto_is_shared_object() {
    bool found = false;
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) {
            const std::string_view name = info->dlpi_name != nullptr ? info->dlpi_name : "";
            if (name.find("libcrypto.so") != std::string_view::npos) {
                *static_cast<bool*>(data) = true;
                return 1;
            }
            return 0;
        },
        &found);
    return found;
}

std::string compiler() {
#if defined(__clang__)
    return "Clang " __clang_version__;
#elif defined(__GNUC__)
    return "GCC " RS_STRINGIFY(__GNUC__) "." RS_STRINGIFY(__GNUC_MINOR__) "." RS_STRINGIFY(
        __GNUC_PATCHLEVEL__);
#else
    return "unknown";
#endif
}

}  // namespace

build_info this_build() {
    build_info b;
    b.version = REDIS_SIDECAR_VERSION;
    b.commit = REDIS_SIDECAR_GIT_COMMIT;
    b.openssl = OpenSSL_version(OPENSSL_VERSION);
    b.openssl_version = OpenSSL_version(OPENSSL_FULL_VERSION_STRING);
    b.openssl_static = !libcrypto_is_shared_object();
    b.hiredis =
        RS_STRINGIFY(HIREDIS_MAJOR) "." RS_STRINGIFY(HIREDIS_MINOR) "." RS_STRINGIFY(HIREDIS_PATCH);
    b.compiler = compiler();
    b.build_type = REDIS_SIDECAR_BUILD_TYPE;
    return b;
}

std::string to_text(const build_info& b) {
    std::string out = "redis-sidecar " + b.version + "\n";
    out += "  commit   " + b.commit + "\n";
    out += "  openssl  " + b.openssl +
           (b.openssl_static ? " (linked statically)" : " (shared library)") + "\n";
    out += "  hiredis  " + b.hiredis + "\n";
    out += "  built    " + b.compiler + (b.build_type.empty() ? "" : ", " + b.build_type) + "\n";
    return out;
}

nlohmann::json to_json(const build_info& b) {
    return {{"version", b.version},
            {"commit", b.commit},
            {"openssl",
             {{"version", b.openssl_version},
              {"text", b.openssl},
              {"linkage", b.openssl_static ? "static" : "shared"}}},
            {"hiredis", b.hiredis},
            {"compiler", b.compiler},
            {"build_type", b.build_type}};
}

}  // namespace redis_sidecar::app
