#!/usr/bin/env bash
# Where the sidecar's time goes under a bounded load (companion of bench/run.sh).
#
#   bash bench/profile.sh [--requests N] [--out DIR]
#
# Starts a TLS redis-server (requirepass) and build/redis-sidecar on loopback, then, each under
# a bounded redis-benchmark load (steady state, 50 clients, SET/GET, no pipelining):
#   1. strace -c -f on the sidecar: system calls per request;
#   2. perf record -e cpu-clock -g (a software event: works where hardware counters do not),
#      when perf is usable: user vs kernel time and the hottest symbols;
#   3. valgrind --tool=callgrind on a second sidecar instance: instructions by function
#      (inclusive and exclusive), the answer when `perf stat -e instructions` is not supported.
# Results go to DIR (default: a temporary directory that is printed, then kept).
# Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
requests=20000
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) requests=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "bench/profile.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
bin=$PWD/build/redis-sidecar
[ -x "$bin" ] || bash scripts/build.sh >/dev/null
out=${out:-$(mktemp -d /tmp/redis-sidecar-profile.XXXXXX)}
mkdir -p "$out"
work=$(mktemp -d /tmp/redis-sidecar-profile-work.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '[profile %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768+)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  exit 1
}
wait_pong() {  # up to 3 minutes: under valgrind start-up and the first TLS handshakes are slow
  for _ in $(seq 1800); do
    redis-cli -p "$1" PING 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  return 1
}

bash scripts/make-certs.sh "$work" "bench CA"
password="profile-token-$(openssl rand -hex 12)"
printf '%s\n' "$password" > "$work/password"
rport=$(free_port)
redis-server --port 0 --tls-port "$rport" --bind 127.0.0.1 --tls-cert-file "$work/server.crt" \
  --tls-key-file "$work/server.key" --tls-ca-cert-file "$work/ca.crt" --tls-auth-clients no \
  --requirepass "$password" --save "" --appendonly no --dir "$work" --logfile "$work/redis.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "Ready to accept" "$work/redis.log" 2>/dev/null && break; sleep 0.05; done

sidecar() {  # sidecar PORT [WRAPPER...]: starts one, sets spid
  local port=$1; shift
  env REDIS_ADDR="localhost:$rport" REDIS_TLS_ENABLED=true REDIS_TLS_CA_FILE="$work/ca.crt" \
    REDIS_PASSWORD_FILE="$work/password" REDIS_SIDECAR_LISTEN="127.0.0.1:$port" \
    REDIS_SIDECAR_HTTP_ADDR="127.0.0.1:$(free_port)" REDIS_SIDECAR_LOG_LEVEL=warn \
    REDIS_CONNECTION_TIMEOUT=30s "$@" "$bin" run 2>>"$work/sidecar.log" &
  spid=$!
  pids+=($spid)
}
load() {  # load PORT N: the steady-state workload, bounded
  timeout 300 redis-benchmark -p "$1" -c 50 -n "$2" -r 100000 -t set,get -q 2>/dev/null | tr '\r' '\n' | grep -v '^$' | tail -n 2
}

port=$(free_port)
sidecar "$port"
wait_pong "$port"
load "$port" 5000 >/dev/null  # warm the pool

log "1. strace -c: system calls per request ($requests SET + $requests GET, 50 clients)"
timeout 300 strace -c -f -p "$spid" -o "$out/strace.txt" &
st=$!
sleep 0.5
load "$port" "$requests" | tee "$out/strace-load.txt" >&2
kill -INT "$st" 2>/dev/null || true; wait "$st" 2>/dev/null || true
awk -v n=$((2 * requests)) 'NR <= 2 || /total/ {print; next} $4 ~ /^[0-9]+$/ && $4 > 100 {printf "%s   (%.2f per request)\n", $0, $4 / n}' \
  "$out/strace.txt" | tee "$out/strace-per-request.txt" >&2

if perf record -e cpu-clock -o "$work/perf-probe.data" -- true >/dev/null 2>&1; then
  log "2. perf record -e cpu-clock -g on the sidecar"
  timeout 300 perf record -e cpu-clock -F 4999 -g -p "$spid" -o "$out/perf.data" >/dev/null 2>&1 &
  pr=$!
  sleep 0.5
  load "$port" "$requests" >&2
  kill -INT "$pr" 2>/dev/null || true; wait "$pr" 2>/dev/null || true
  perf report -i "$out/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null \
    | grep '%' | grep -v '^#' | sed 's/  *$//' | head -n 40 > "$out/perf-top.txt" || true
  perf report -i "$out/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null \
    | grep '%' | grep -v '^#' | sed 's/  *$//' | head -n 12 > "$out/perf-dso.txt" || true
  cat "$out/perf-dso.txt" >&2
  head -n 25 "$out/perf-top.txt" >&2
else
  log "2. perf is not usable here; skipped"
fi
kill "$spid"; wait "$spid" 2>/dev/null || true

if command -v valgrind >/dev/null; then
  log "3. callgrind (instructions by function; a smaller load: valgrind is ~50x slower)"
  cport=$(free_port)
  sidecar "$cport" valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
    --dump-instr=no --collect-atstart=yes
  wait_pong "$cport" || { log "sidecar under valgrind did not answer"; exit 1; }
  load "$cport" 500 >/dev/null
  load "$cport" $((requests / 4)) >&2
  kill "$spid"; wait "$spid" 2>/dev/null || true
  callgrind_annotate --inclusive=yes "$out/callgrind.out" 2>/dev/null | head -n 60 > "$out/callgrind-inclusive.txt" || true
  callgrind_annotate "$out/callgrind.out" 2>/dev/null | head -n 45 > "$out/callgrind-self.txt" || true
  cat "$out/callgrind-self.txt" >&2
fi
log "results in $out"
