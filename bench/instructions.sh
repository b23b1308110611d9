#!/usr/bin/env bash
# Instructions per request of redis-sidecar binaries under callgrind: a load-independent way to
# compare two builds (a before and an after) on a busy machine, where timings are noise.
#
#   bash bench/instructions.sh BINARY [BINARY ...]
#
# For each binary, on one local TLS redis-server with requirepass: an idle run (start, one PING,
# SIGTERM) and two workloads through the sidecar (redis-benchmark GET -n 20000 -c 10; SET
# -n 50000 -c 4 -P 16). Prints total instructions and (workload - idle) / requests. Every run is
# bounded (valgrind makes the sidecar ~50x slower; a workload takes 10-60 s).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BINARY [BINARY ...]" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "bench/instructions.sh: valgrind is missing" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
bash "$root/scripts/make-certs.sh" "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port) listen=$(free_port) http=$(free_port)
redis-server --port 0 --tls-port "$up" --bind 127.0.0.1 --tls-cert-file "$work/server.crt" \
  --tls-key-file "$work/server.key" --tls-ca-cert-file "$work/ca.crt" --tls-auth-clients no \
  --requirepass bench-token-0123456789 --save "" --appendonly no --daemonize yes \
  --pidfile "$work/redis.pid" --logfile "$work/redis.log"

# run BINARY WORKLOAD: prints the total instruction count of the sidecar's process.
run() {
  local bin=$1 load=$2 out="$work/cg.out"
  REDIS_ADDR="localhost:$up" REDIS_TLS_ENABLED=true REDIS_TLS_CA_FILE="$work/ca.crt" \
    REDIS_PASSWORD=bench-token-0123456789 REDIS_SIDECAR_LISTEN="127.0.0.1:$listen" \
    REDIS_SIDECAR_HTTP_ADDR="127.0.0.1:$http" REDIS_SIDECAR_LOG_LEVEL=warn REDIS_MIN_IDLE_CONNECTIONS=1 \
    timeout 300 valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" run >"$work/sidecar.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do redis-cli -p "$listen" PING >/dev/null 2>&1 && break; sleep 0.1; done
  case $load in
    idle) redis-cli -p "$listen" PING >/dev/null ;;
    get) timeout 300 redis-benchmark -p "$listen" -n 20000 -c 10 -t get -q >/dev/null ;;
    pipelined) timeout 300 redis-benchmark -p "$listen" -n 50000 -c 4 -P 16 -t set -q >/dev/null ;;
  esac
  kill -TERM "$pid"
  wait "$pid" || true
  sed -n 's/^summary: //p' "$out"
}

printf '%-60s %14s %14s %14s %12s %12s\n' binary idle get pipelined "get/req" "pipelined/req"
for bin in "$@"; do
  idle=$(run "$bin" idle)
  get=$(run "$bin" get)
  pipe=$(run "$bin" pipelined)
  printf '%-60s %14d %14d %14d %12d %12d\n' "$bin" "$idle" "$get" "$pipe" \
    $(((get - idle) / 20000)) $(((pipe - idle) / 50000))
done
