#!/usr/bin/env bash
# redis-sidecar against its peers, in one run, on this machine.
#
#   bash bench/run.sh [--quick] [--rounds N] [--nice N] [--haproxy-threads N] [--json FILE]
#                     [--markdown FILE] [--keep-work]
#
# --nice N (e.g. -10, needs root) runs the measurements (not the build) at that niceness: on a
# machine shared with other people's builds it keeps their compilers from setting the pace.
# --haproxy-threads N sets haproxy's nbthread (default: haproxy's own, one per core); the
# sidecar runs one event-loop thread, so N=1 compares the two on the same thread budget.
#
# One local TLS redis-server with requirepass; five ways to reach it, all on loopback:
#   direct        redis-benchmark speaks TLS itself (--tls --cacert, -a)
#   stunnel       stunnel4 in client mode (verify = 2, CAfile, checkHost); the client AUTHs
#   haproxy       haproxy mode tcp, "ssl verify required ca-file … verifyhost"; the client AUTHs
#   sidecar-tcp   redis-sidecar on 127.0.0.1 (it does TLS and AUTH itself; the client sends none)
#   sidecar-unix  redis-sidecar's unix socket (redis-benchmark -s)
# Each workload runs for every setup, setups alternating (rotated) within each of several rounds;
# the report takes medians and ratios (bench/report.py). The sidecar's own figures (start-up time,
# idle memory, memory per connection, micro-benchmarks) are measured on fresh instances.
# Everything started here is stopped on exit (trap) and checked for by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=0
niceness=0
haproxy_threads=""
stale_binary=""
rounds=""
json_out=""
md_out=""
keep_work=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    --nice) niceness=$2; shift ;;
    --haproxy-threads) haproxy_threads=$2; shift ;;
    --json) json_out=$2; shift ;;
    --markdown) md_out=$2; shift ;;
    --keep-work) keep_work=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

# ---- sizes: bounded counts everywhere; --quick is a smoke run ---------------------------------
if [ "$quick" = 1 ]; then
  rounds=${rounds:-1}
  n_churn10=300; n_churn50=500
  n_steady=20000; n_pipe=100000; n_large=20
  lat_seconds=3; idle_conns=2000; busy_conns=50; startups=1; micro_min_time=0.05
else
  rounds=${rounds:-3}
  n_churn10=2000; n_churn50=3000
  n_steady=100000; n_pipe=400000; n_large=100
  lat_seconds=10; idle_conns=10000; busy_conns=500; startups=3; micro_min_time=0.5
fi
lat_rate=2000       # req/s in total over lat_conns connections: "moderate" (see docs/benchmarks.md)
lat_conns=4
large_clients=4
cmd_timeout=300     # seconds, any single load command

python=/usr/bin/python3
[ -x "$python" ] || python=python3
bash scripts/install-deps.sh  # the peers (stunnel4, haproxy) too
for tool in redis-server redis-benchmark redis-cli stunnel4 haproxy openssl curl g++; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is missing (bash scripts/install-deps.sh; apt-get install stunnel4 haproxy)" >&2; exit 2; }
done

# ---- file descriptors: 10,000 idle clients need 10,000 on each side -------------------------
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((idle_conns + 200)) ]; then
  idle_conns=$((hard - 500))
  echo "bench/run.sh: ulimit -Hn is $hard; idle connections lowered to $idle_conns" >&2
fi
ulimit -n "$hard"

log() { printf '\033[1m[bench %s]\033[0m %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- build --------------------------------------------------------------------------------------
log "building build/redis-sidecar (scripts/build.sh)"
if ! bash scripts/build.sh >/tmp/redis-sidecar-bench-build.$$.log 2>&1; then
  # The whole tree (tests included) did not build; the binary may still: benchmark that.
  log "scripts/build.sh failed (see below); building only the redis-sidecar target"
  grep -m 5 -E 'error|FAILED' /tmp/redis-sidecar-bench-build.$$.log >&2 || true
  if ! cmake --build build --target redis-sidecar -j 2 >>/tmp/redis-sidecar-bench-build.$$.log 2>&1; then
    # Others are mid-change in src/: benchmark the last binary that did build, and say so.
    [ -x build/redis-sidecar ] || { cat /tmp/redis-sidecar-bench-build.$$.log >&2; rm -f /tmp/redis-sidecar-bench-build.$$.log; exit 1; }
    log "the current tree does not link; using the existing build/redis-sidecar ($(date -r build/redis-sidecar '+%F %T'))"
    stale_binary="existing build/redis-sidecar of $(date -r build/redis-sidecar '+%F %T'), the tree did not build"
  fi
fi
rm -f /tmp/redis-sidecar-bench-build.$$.log
log "building the micro-benchmarks into build-bench/ (-DREDIS_SIDECAR_BENCH=ON)"
# Only the benchmark targets: the micro-benchmarks need rs_resp / rs_config, not the whole app.
{ cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREDIS_SIDECAR_BENCH=ON \
    -DREDIS_SIDECAR_TESTS=OFF && cmake --build build-bench -j 2 --target resp_scanner_bench config_resolve_bench; } \
  >/tmp/redis-sidecar-bench-build.$$.log 2>&1 || { log "micro-benchmarks did not build; skipped"; grep -m 5 -E 'error|FAILED' /tmp/redis-sidecar-bench-build.$$.log >&2 || true; }
rm -f /tmp/redis-sidecar-bench-build.$$.log
mkdir -p build-bench
loadgen=$root/build-bench/rs_loadgen
if [ ! -x "$loadgen" ] || [ bench/tools/rs_loadgen.cpp -nt "$loadgen" ]; then
  log "building build-bench/rs_loadgen"
  g++ -O2 -std=c++20 -Wall -Wextra -Werror -o "$loadgen" bench/tools/rs_loadgen.cpp -lssl -lcrypto -pthread
fi

if [ "$niceness" != 0 ]; then
  renice -n "$niceness" -p $$ >/dev/null || { echo "bench/run.sh: cannot renice to $niceness" >&2; exit 2; }
fi

# ---- processes ---------------------------------------------------------------------------------
work=$(mktemp -d /tmp/redis-sidecar-bench.XXXXXX)
# A private copy: others may relink build/redis-sidecar while this runs; every instance started
# here must be the same binary (and never a half-written one).
cp build/redis-sidecar "$work/redis-sidecar"
bin=$work/redis-sidecar
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  local left=""
  for p in "${pids[@]}"; do if kill -0 "$p" 2>/dev/null; then left="$left $p"; fi; done
  if [ -n "$left" ]; then echo "bench/run.sh: still running:$left" >&2; rc=1; fi
  for p in $(pgrep -P $$ || true); do
    case "$(ps -o comm= -p "$p" 2>/dev/null)" in
      redis-server|stunnel4|haproxy|redis-sidecar|rs_loadgen|redis-benchmark)
        echo "bench/run.sh: child left: $p" >&2; rc=1 ;;
    esac
  done
  if [ "$keep_work" = 1 ]; then echo "bench/run.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768+)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! grep -qx "$p" "$work/ports" 2>/dev/null; then
      echo "$p" >> "$work/ports"; echo "$p"; return
    fi
  done
  echo "no free port" >&2; exit 1
}

wait_for() {  # wait_for SECONDS CMD...: polls CMD every 20 ms
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

log "certificates, TLS redis-server, stunnel, haproxy, redis-sidecar in $work"
bash scripts/make-certs.sh "$work" "redis-sidecar bench CA"
password="bench-auth-token-$(openssl rand -hex 12)"
printf '%s\n' "$password" > "$work/password"
chmod 600 "$work/password"

redis_port=$(free_port)
redis-server --port 0 --tls-port "$redis_port" --bind 127.0.0.1 \
  --tls-cert-file "$work/server.crt" --tls-key-file "$work/server.key" \
  --tls-ca-cert-file "$work/ca.crt" --tls-auth-clients no \
  --requirepass "$password" --save "" --appendonly no --dir "$work" \
  --maxclients $((idle_conns + 1000)) --logfile "$work/redis.log" &
pids+=($!)
redis_pid=$!
wait_for 10 grep -q "Ready to accept" "$work/redis.log" || { cat "$work/redis.log" >&2; exit 1; }

stunnel_port=$(free_port)
cat > "$work/stunnel.conf" <<EOF
foreground = yes
pid =
output = $work/stunnel.log
debug = 3
[redis]
client = yes
accept = 127.0.0.1:$stunnel_port
connect = 127.0.0.1:$redis_port
verify = 2
CAfile = $work/ca.crt
checkHost = localhost
sni = localhost
EOF
stunnel4 "$work/stunnel.conf" 2>>"$work/stunnel.log" &
pids+=($!)
stunnel_pid=$!

haproxy_port=$(free_port)
cat > "$work/haproxy.cfg" <<EOF
global
  maxconn 4000$( [ -n "$haproxy_threads" ] && printf '\n  nbthread %s' "$haproxy_threads")
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend redis_in
  bind 127.0.0.1:$haproxy_port
  default_backend redis_tls
backend redis_tls
  server s1 127.0.0.1:$redis_port ssl verify required ca-file $work/ca.crt verifyhost localhost sni str(localhost)
EOF
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
haproxy_pid=$!

# start_sidecar NAME PORT SOCKET HTTPPORT [ENV=VALUE ...]: sets sidecar_pid and sidecar_start_ns
start_sidecar() {
  local name=$1 port=$2 sock=$3 hport=$4; shift 4
  sidecar_start_ns=$(date +%s%N)
  env REDIS_ADDR="localhost:$redis_port" REDIS_TLS_ENABLED=true REDIS_TLS_CA_FILE="$work/ca.crt" \
    REDIS_PASSWORD_FILE="$work/password" REDIS_SIDECAR_LISTEN="127.0.0.1:$port" \
    REDIS_SIDECAR_SOCKET="$sock" REDIS_SIDECAR_HTTP_ADDR="127.0.0.1:$hport" \
    REDIS_SIDECAR_LOG_FORMAT=text REDIS_SIDECAR_LOG_LEVEL=info "$@" \
    "$bin" run 2>"$work/$name.log" &
  pids+=($!)
  sidecar_pid=$!
}
# sidecar_ready HTTPPORT PORT LOG: prints "readyz", "log" or "ping" (what answered first)
readyz_ok() { [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$1/readyz")" = 200 ]; }
sidecar_ready() {
  local hport=$1 port=$2 logf=$3
  local deadline=$(( $(date +%s%N) + 20000000000 ))
  while [ "$(date +%s%N)" -lt "$deadline" ]; do
    if readyz_ok "$hport"; then echo readyz; return 0; fi
    if grep -q "state changed.*to=ready" "$logf" 2>/dev/null; then echo log; return 0; fi
    sleep 0.005
  done
  if redis-cli -p "$port" PING 2>/dev/null | grep -q PONG; then echo ping; return 0; fi
  return 1
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

sidecar_port=$(free_port)
sidecar_http=$(free_port)
sidecar_sock="$work/sidecar.sock"
start_sidecar sidecar "$sidecar_port" "$sidecar_sock" "$sidecar_http" REDIS_SIDECAR_LOG_LEVEL=warn
main_sidecar_pid=$sidecar_pid
wait_for 20 redis-cli -p "$sidecar_port" PING || { cat "$work/sidecar.log" >&2; exit 1; }
wait_for 10 redis-cli -p "$stunnel_port" -a "$password" --no-auth-warning PING || { cat "$work/stunnel.log" >&2; exit 1; }
wait_for 10 redis-cli -p "$haproxy_port" -a "$password" --no-auth-warning PING || { cat "$work/haproxy.log" >&2; exit 1; }
wait_for 10 redis-cli -p "$redis_port" --tls --cacert "$work/ca.crt" -a "$password" --no-auth-warning PING
[ -S "$sidecar_sock" ] || { echo "no unix socket" >&2; exit 1; }
# the HTTP server may not exist yet in this build: say which readiness signal was used
if readyz_ok "$sidecar_http"; then readiness_method=readyz; else readiness_method="log line (no /readyz yet)"; fi

results=$work/results.jsonl
: > "$results"
record() {  # record SETUP WORKLOAD METRIC VALUE ROUND [UNIT]
  printf '{"setup":"%s","workload":"%s","metric":"%s","value":%s,"round":%s,"unit":"%s"}\n' \
    "$1" "$2" "$3" "$4" "$5" "${6:-}" >> "$results"
}

# ---- machine facts ------------------------------------------------------------------------------
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$python" - "$work/machine.json" <<EOF
import json, sys
json.dump({"nproc": $(nproc), "cpu_model": """$cpu_model""", "kernel": "$(uname -r)",
           "os": "$(. /etc/os-release; echo "$PRETTY_NAME")", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
           "load_before": "$load_before", "rounds": $rounds, "quick": bool($quick),
           "command": "bash bench/run.sh$( [ "$quick" = 1 ] && echo ' --quick')$( [ "$niceness" != 0 ] && echo " --nice $niceness")$( [ -n "$haproxy_threads" ] && echo " --haproxy-threads $haproxy_threads")", "niceness": $niceness,
           "redis_benchmark": "$(redis-benchmark --version | awk '{print $2}')",
           "redis_server": "$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')",
           "stunnel": "$(stunnel4 -version 2>&1 | awk '/^stunnel/ {print $2; exit}')",
           "haproxy": "$(haproxy -v | awk 'NR==1 {print $3}')", "haproxy_threads": "$(ls "/proc/$haproxy_pid/task" 2>/dev/null | wc -l)",
           "openssl": "$(openssl version | awk '{print $2}')",
           "readiness_method": "$readiness_method", "binary_note": "$stale_binary",
           "sidecar_commit": "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- src include 2>/dev/null || echo '+local changes')"},
          open(sys.argv[1], "w"))
EOF
log "machine: $(nproc) cores, $cpu_model, load average $load_before"

# ---- setups -------------------------------------------------------------------------------------
setups=(direct stunnel haproxy sidecar-tcp sidecar-unix)
# conn_args SETUP: redis-benchmark connection arguments
conn_args() {
  case "$1" in
    direct) echo "-h 127.0.0.1 -p $redis_port --tls --cacert $work/ca.crt -a $password" ;;
    stunnel) echo "-h 127.0.0.1 -p $stunnel_port -a $password" ;;
    haproxy) echo "-h 127.0.0.1 -p $haproxy_port -a $password" ;;
    sidecar-tcp) echo "-h 127.0.0.1 -p $sidecar_port" ;;
    sidecar-unix) echo "-s $sidecar_sock" ;;
  esac
}
loadgen_args() {
  case "$1" in
    direct) echo "--port $redis_port --tls --cacert $work/ca.crt --sni localhost --auth $password" ;;
    stunnel) echo "--port $stunnel_port --auth $password" ;;
    haproxy) echo "--port $haproxy_port --auth $password" ;;
    sidecar-tcp) echo "--port $sidecar_port" ;;
    sidecar-unix) echo "--unix $sidecar_sock" ;;
  esac
}
proxy_pid() {
  case "$1" in
    direct) echo "" ;;
    stunnel) echo "$stunnel_pid" ;;
    haproxy) echo "$haproxy_pid" ;;
    sidecar-*) echo "$main_sidecar_pid" ;;
  esac
}

# bench_rb SETUP WORKLOAD ROUND REQUESTS REDIS-BENCHMARK-ARGS...: one redis-benchmark run,
# rps per test recorded, plus the proxy's CPU time per request (µs) when there is a proxy.
bench_rb() {
  local setup=$1 workload=$2 round=$3 requests=$4; shift 4
  local pp; pp=$(proxy_pid "$setup")
  local t0=0; [ -n "$pp" ] && t0=$(cpu_ticks "$pp")
  local s0; s0=$(cpu_ticks "$redis_pid")
  local out
  # shellcheck disable=SC2046
  if ! out=$(timeout "$cmd_timeout" redis-benchmark $(conn_args "$setup") --csv "$@" 2>"$work/rb.err"); then
    log "  $setup $workload: redis-benchmark failed: $(tail -n 2 "$work/rb.err" | tr '\n' ' ')"
    return 0
  fi
  local tests=0
  while IFS=, read -r name rps _avg _min p50 _p95 p99 _max; do
    name=${name//\"/}; rps=${rps//\"/}
    [ "$name" = test ] && continue
    [ -z "$rps" ] && continue
    tests=$((tests + 1))
    record "$setup" "$workload ${name}" rps "$rps" "$round" "req/s"
    record "$setup" "$workload ${name}" p50_ms "${p50//\"/}" "$round" "ms"
    record "$setup" "$workload ${name}" p99_ms "${p99//\"/}" "$round" "ms"
  done <<< "$out"
  local hz; hz=$(getconf CLK_TCK)
  if [ "$tests" -gt 0 ]; then
    local s1; s1=$(cpu_ticks "$redis_pid")
    record "$setup" "$workload" server_cpu_us_per_req \
      "$(awk -v d=$((s1 - s0)) -v hz="$hz" -v n=$((requests * tests)) 'BEGIN {printf "%.2f", d / hz * 1e6 / n}')" "$round" "µs"
  fi
  if [ -n "$pp" ] && [ "$tests" -gt 0 ]; then
    local t1; t1=$(cpu_ticks "$pp")
    record "$setup" "$workload" proxy_cpu_us_per_req \
      "$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n=$((requests * tests)) 'BEGIN {printf "%.2f", d / hz * 1e6 / n}')" "$round" "µs"
  fi
  log "  $setup $workload: $(echo "$out" | grep -v '^"test"' | awk -F'","' '{gsub(/"/,""); printf "%s %s req/s; ", $1, $2}')"
}

bench_latency() {
  local setup=$1 round=$2
  local out
  # shellcheck disable=SC2046
  if ! out=$(timeout $((lat_seconds + 30)) "$loadgen" latency $(loadgen_args "$setup") \
      --conns "$lat_conns" --rate "$lat_rate" --seconds "$lat_seconds" 2>"$work/lg.err"); then
    log "  $setup latency: failed: $out $(cat "$work/lg.err")"
    return 0
  fi
  for m in p50_us p99_us p999_us; do
    record "$setup" "latency @${lat_rate} req/s" "$m" \
      "$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$out" "$m")" "$round" "µs"
  done
  log "  $setup latency: $out"
}

rotate() {  # rotate K: the setups, rotated left K times
  local k=$(( $1 % ${#setups[@]} ))
  echo "${setups[@]:k}" "${setups[@]:0:k}"
}

# Warm-up: every path once (TLS session caches, the sidecar's pool, page cache).
log "warm-up"
for s in "${setups[@]}"; do
  # shellcheck disable=SC2046
  timeout 60 redis-benchmark $(conn_args "$s") -q -c 50 -n 5000 -r 100000 -t set,get >/dev/null 2>&1 || true
  # shellcheck disable=SC2046
  timeout 60 redis-benchmark $(conn_args "$s") -q -c 50 -n 500 -k 0 -r 100000 -t get >/dev/null 2>&1 || true
done

for round in $(seq 1 "$rounds"); do
  log "round $round of $rounds (load average $(cut -d' ' -f1 /proc/loadavg))"
  record machine load load1 "$(cut -d' ' -f1 /proc/loadavg)" "$round"
  order=$(rotate $((round - 1)))
  for s in $order; do bench_rb "$s" "churn c=10" "$round" "$n_churn10" -k 0 -c 10 -n "$n_churn10" -r 100000 -t get; done
  for s in $order; do bench_rb "$s" "churn c=50" "$round" "$n_churn50" -k 0 -c 50 -n "$n_churn50" -r 100000 -t get; done
  for s in $order; do bench_rb "$s" "steady c=50" "$round" "$n_steady" -c 50 -n "$n_steady" -r 100000 -t set,get; done
  for s in $order; do bench_rb "$s" "pipelined c=50 P=16" "$round" "$n_pipe" -c 50 -P 16 -n "$n_pipe" -r 100000 -t set,get; done
  for s in $order; do bench_rb "$s" "1 MB values c=$large_clients" "$round" "$n_large" -c "$large_clients" -n "$n_large" -d 1048576 -t set,get; done
  # The 1 MB workload leaves a 1 MB value under redis-benchmark's fixed key; the other workloads
  # use -r (random keys, 3-byte values), but drop it so nothing later can fetch it by accident.
  timeout 10 redis-cli -p "$redis_port" --tls --cacert "$work/ca.crt" -a "$password" --no-auth-warning DEL key:__rand_int__ >/dev/null
  for s in $order; do bench_latency "$s" "$round"; done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

main_rss_after=$(rss_kb "$main_sidecar_pid")
record sidecar-tcp "sidecar" rss_after_load_kb "$main_rss_after" 1 KB

# ---- the sidecar's own figures, on fresh instances ---------------------------------------------
log "start-up time and idle memory ($startups fresh starts)"
for i in $(seq 1 "$startups"); do
  p=$(free_port); h=$(free_port)
  start_sidecar "start$i" "$p" "" "$h"
  how=$(sidecar_ready "$h" "$p" "$work/start$i.log") || { log "sidecar did not become ready"; cat "$work/start$i.log" >&2; exit 1; }
  ms=$(( ($(date +%s%N) - sidecar_start_ns) / 1000000 ))
  record sidecar "sidecar" start_to_ready_ms "$ms" "$i" ms
  sleep 1
  record sidecar "sidecar" rss_idle_kb "$(rss_kb "$sidecar_pid")" "$i" KB
  record sidecar "sidecar" rss_idle_anon_kb "$(awk '/^RssAnon:/ {print $2}' "/proc/$sidecar_pid/status")" "$i" KB
  record sidecar "sidecar" rss_idle_file_kb "$(awk '/^RssFile:/ {print $2}' "/proc/$sidecar_pid/status")" "$i" KB
  log "  start $i: ready after $ms ms ($how), VmRSS $(rss_kb "$sidecar_pid") kB"
  kill "$sidecar_pid"; wait "$sidecar_pid" 2>/dev/null || true
done

# idle_measure KIND N [--ping]: a fresh sidecar (so memory freed by an earlier test does not
# hide this one's), its VmRSS before and while N connections are held; KB per connection.
idle_measure() {
  local kind=$1 n=$2; shift 2
  local p h before after opened failed anon_before anon_after
  p=$(free_port); h=$(free_port)
  start_sidecar idle "$p" "" "$h" REDIS_SIDECAR_LOG_LEVEL=warn REDIS_SIDECAR_MAX_CLIENTS=$((idle_conns + 100)) \
    REDIS_MAX_CONNECTIONS=$((busy_conns + 50)) REDIS_CONNECTION_TIMEOUT=30s
  local idle_pid=$sidecar_pid
  if ! wait_for 20 redis-cli -p "$p" PING; then
    log "  $kind: the sidecar did not start; skipped"; tail -n 5 "$work/idle.log" >&2; return 0
  fi
  sleep 1
  before=$(rss_kb "$idle_pid"); anon_before=$(anon_kb "$idle_pid")
  mkfifo "$work/hold.fifo"
  timeout 600 "$loadgen" idle --port "$p" --conns "$n" --seconds 500 "$@" <"$work/hold.fifo" >"$work/hold.out" 2>"$work/hold.err" &
  local lg=$!
  pids+=($lg)
  exec {holdin}>"$work/hold.fifo"
  local deadline=$(( $(date +%s) + 300 ))
  until grep -q '^ready' "$work/hold.out" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || break
    kill -0 "$lg" 2>/dev/null || break
    sleep 0.2
  done
  read -r _ opened failed < "$work/hold.out" || { opened=0; failed=$n; }
  sleep 2  # let the sidecar settle (accepts done, buffers allocated)
  after=$(rss_kb "$idle_pid"); anon_after=$(anon_kb "$idle_pid")
  exec {holdin}>&-
  wait "$lg" 2>/dev/null || true
  rm -f "$work/hold.fifo"
  if ! kill "$idle_pid" 2>/dev/null; then
    log "  $kind: the sidecar exited during the test; skipped"; tail -n 5 "$work/idle.log" >&2; return 0
  fi
  wait "$idle_pid" 2>/dev/null || true
  record sidecar "idle connections: $kind" rss_before_kb "$before" 1 KB
  record sidecar "idle connections: $kind" rss_after_kb "$after" 1 KB
  record sidecar "idle connections: $kind" connections "$opened" 1 ""
  if [ "${opened:-0}" -gt 0 ]; then
    record sidecar "idle connections: $kind" kb_per_conn \
      "$(awk -v a="$after" -v b="$before" -v n="$opened" 'BEGIN {printf "%.2f", (a - b) / n}')" 1 KB
    record sidecar "idle connections: $kind" anon_kb_per_conn \
      "$(awk -v a="$anon_after" -v b="$anon_before" -v n="$opened" 'BEGIN {printf "%.2f", (a - b) / n}')" 1 KB
  fi
  log "  $kind: $opened open ($failed failed), VmRSS $before -> $after kB; $(head -1 "$work/hold.err")"
}
log "memory per idle local connection: $idle_conns connected and silent; $busy_conns after one PING each"
idle_measure "connected, silent" "$idle_conns"
idle_measure "after one PING (holds an upstream TLS connection)" "$busy_conns" --ping

# ---- micro-benchmarks ---------------------------------------------------------------------------
log "micro-benchmarks (Google Benchmark)"
for b in resp_scanner_bench config_resolve_bench; do
  if [ -x "build-bench/bench/$b" ]; then
    timeout 300 "build-bench/bench/$b" --benchmark_min_time="$micro_min_time" \
      --benchmark_format=json --benchmark_out="$work/$b.json" --benchmark_out_format=json >/dev/null 2>"$work/$b.err" \
      || log "  $b failed: $(tail -n 2 "$work/$b.err")"
  fi
done

# ---- report -------------------------------------------------------------------------------------
"$python" - "$work/machine.json" "$load_after" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1])); m["load_after"] = sys.argv[2]; json.dump(m, open(sys.argv[1], "w"))
EOF
report_args=("$work/machine.json" "$results" --micro "$work/resp_scanner_bench.json" "$work/config_resolve_bench.json")
[ -n "$json_out" ] && report_args+=(--json "$json_out")
[ -n "$md_out" ] && report_args+=(--markdown "$md_out")
"$python" bench/report.py "${report_args[@]}"
