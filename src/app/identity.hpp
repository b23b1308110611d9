#pragma once

#include <string>

namespace redis_sidecar::app {

/// "redis-sidecar:<pod or host name>", the CLIENT SETNAME of every upstream connection, so that
/// `CLIENT LIST` on the server shows which pod holds which connection.
std::string client_name();

}  // namespace redis_sidecar::app
