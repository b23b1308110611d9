#!/usr/bin/env bash
# Builds the libFuzzer targets in build-fuzz (clang) and runs each (resp_scanner_fuzz,
# bridge_core_fuzz, cluster_rewrite_fuzz, aws_reply_fuzz, own_reply_fuzz, mux_router_fuzz) for SECONDS on its committed seed corpus. Exits non-zero if the fuzzer finds a crash (the input is saved as
# build-fuzz/crash-*). New interesting inputs go to build-fuzz/corpus, not to the seeds.
#
#   tests/fuzz/run.sh 60
set -euo pipefail

seconds="${1:?usage: $0 SECONDS}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build-fuzz"

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  CXX=clang++ cmake -S "$root" -B "$build" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREDIS_SIDECAR_FUZZ=ON -DREDIS_SIDECAR_TESTS=OFF
else
  cmake -S "$root" -B "$build" -DREDIS_SIDECAR_FUZZ=ON -DREDIS_SIDECAR_TESTS=OFF
fi
cmake --build "$build" --target resp_scanner_fuzz bridge_core_fuzz cluster_rewrite_fuzz aws_reply_fuzz \
  own_reply_fuzz mux_router_fuzz -j 2

# fuzz TARGET SEEDS: runs one target for SECONDS on its committed seeds; new inputs go to
# build-fuzz/corpus-TARGET, crashes to build-fuzz/crash-*.
fuzz() {
  local target=$1 seeds=$2
  mkdir -p "$build/corpus-$target"
  "$build/tests/fuzz/$target" \
    -max_total_time="$seconds" \
    -print_final_stats=1 \
    -max_len=4096 \
    -dict="$root/tests/fuzz/resp.dict" \
    -artifact_prefix="$build/" \
    "$build/corpus-$target" "$seeds"
}
fuzz resp_scanner_fuzz "$root/tests/fuzz/corpus"
fuzz bridge_core_fuzz "$root/tests/fuzz/corpus-core"
fuzz cluster_rewrite_fuzz "$root/tests/fuzz/corpus-cluster"
fuzz aws_reply_fuzz "$root/tests/fuzz/corpus-aws"
fuzz own_reply_fuzz "$root/tests/fuzz/corpus-own"
fuzz mux_router_fuzz "$root/tests/fuzz/corpus-mux"
