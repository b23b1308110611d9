#!/usr/bin/env bash
# Installs the dependencies (if missing) and builds redis-sidecar into build/ (or $BUILD_DIR).
# SANITIZE=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ "${SANITIZE:-0}" = 1 ]; then
  build=${BUILD_DIR:-build-asan}
  extra=(-DREDIS_SIDECAR_SANITIZE=ON)
else
  build=${BUILD_DIR:-build}
  extra=()
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREDIS_SIDECAR_WERROR=ON "${extra[@]}" "$@" >/dev/null
# Progress and compiler errors on stderr: callers take the folder from the last stdout line.
cmake --build "$build" -j "$(nproc)" >&2
echo "$build"
