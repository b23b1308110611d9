#!/bin/sh
# Installs the pinned client libraries (package-lock.json) into this folder's node_modules; see
# tests/support/npm-ci.sh (idempotent, serialized, fails loudly: the client-library tests must
# fail, not skip, when npm or the registry cannot be reached).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec sh "$here/../../support/npm-ci.sh" "$here" "the node client tests" ioredis redis
