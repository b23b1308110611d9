#include "identity.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace redis_sidecar::app {

std::string client_name() {
    std::string name;
    if (const char* pod = std::getenv("POD_NAME"); pod != nullptr && *pod != '\0') {
        name = pod;
    } else {
        char host[256] = {};
        if (::gethostname(host, sizeof host - 1) == 0) name = host;
    }
    // CLIENT SETNAME refuses spaces and newlines.
    std::replace_if(
        name.begin(), name.end(), [](char c) { return c <= ' ' || c > '~'; }, '_');
    if (name.size() > 64) name.resize(64);
    return "redis-sidecar:" + (name.empty() ? std::string("unknown") : name);
}

}  // namespace redis_sidecar::app
