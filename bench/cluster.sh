#!/usr/bin/env bash
# redis-sidecar in cluster mode against a cluster client speaking TLS to the nodes itself.
#
#   bash bench/cluster.sh [--quick] [--rounds N] [--binary PATH] [--nice N] [--json FILE]
#                         [--markdown FILE] [--keep-work]
#
# --binary PATH benchmarks that redis-sidecar; without it the script builds the redis-sidecar
# target into build-bench-cluster/ (Release, tests off) and uses that. --nice N (e.g. -10, needs
# root) runs the measurements at that niceness, as in bench/run.sh.
#
# A TLS Redis Cluster of 3 primaries (redis-server, no replicas) on loopback, every node on its
# own address (127.0.0.131-133, tls-cluster, requirepass/masterauth, nodes announce their IPs);
# redis-benchmark --cluster reaches it two ways:
#   direct    redis-benchmark --cluster --tls --cacert -a, seeded with the first node; it then
#             connects to every node itself (one TLS connection per client per node it owns)
#   sidecar   redis-benchmark --cluster to the sidecar's main port, plain RESP, no password; the
#             sidecar (REDIS_SIDECAR_CLUSTER_PORTS) hands out one local port per node and does
#             TLS + AUTH to each node
# Workloads (bounded counts): SET/GET at -c 50, SET -P 16, SET/GET with 1 KB values; setups
# alternating within each round; medians over rounds, sidecar ÷ direct (bench/cluster_report.py).
# Everything started here is stopped on exit (trap) and checked for by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=0
niceness=0
rounds=""
binary=""
json_out=""
md_out=""
keep_work=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    --binary) binary=$2; shift ;;
    --nice) niceness=$2; shift ;;
    --json) json_out=$2; shift ;;
    --markdown) md_out=$2; shift ;;
    --keep-work) keep_work=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "bench/cluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

# ---- sizes: bounded counts everywhere; --quick is a smoke run ---------------------------------
if [ "$quick" = 1 ]; then
  rounds=${rounds:-1}
  n_steady=30000; n_pipe=200000; n_1k=20000; n_warm=3000
else
  rounds=${rounds:-3}
  n_steady=200000; n_pipe=1000000; n_1k=100000; n_warm=10000
fi
clients=50
keyspace=100000     # -r for 3-byte values
keyspace_1k=10000   # -r for 1 KB values: at most ~10 MB of values per node
cmd_timeout=120     # seconds, any single load command
node_ips=(127.0.0.131 127.0.0.132 127.0.0.133)  # not the 127.0.0.2x the cluster tests use
n_nodes=${#node_ips[@]}

python=/usr/bin/python3
[ -x "$python" ] || python=python3
for tool in redis-server redis-benchmark redis-cli openssl curl cmake "$python"; do
  command -v "$tool" >/dev/null || { echo "bench/cluster.sh: $tool is missing (bash scripts/install-deps.sh)" >&2; exit 2; }
done
rb_version=$(redis-benchmark --version | awk '{print $2}')
case "$rb_version" in
  [0-6].*) echo "bench/cluster.sh: redis-benchmark $rb_version; --cluster with --csv latency columns needs 7.0 or later" >&2; exit 2 ;;
esac

log() { printf '\033[1m[cluster-bench %s]\033[0m %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- the binary ---------------------------------------------------------------------------------
binary_note=""
if [ -z "$binary" ]; then
  log "building build-bench-cluster/redis-sidecar (Release)"
  blog=$(mktemp /tmp/redis-sidecar-cluster-build.XXXXXX)
  if ! { cmake -S . -B build-bench-cluster -G Ninja -DCMAKE_BUILD_TYPE=Release -DREDIS_SIDECAR_TESTS=OFF \
         && cmake --build build-bench-cluster --target redis-sidecar -j 2; } >"$blog" 2>&1; then
    grep -m 5 -E 'error|FAILED' "$blog" >&2 || true
    # Others may be mid-change in src/: benchmark the last binary that did build, and say so.
    [ -x build-bench-cluster/redis-sidecar ] || { cat "$blog" >&2; rm -f "$blog"; exit 1; }
    log "the current tree does not build; using the existing build-bench-cluster/redis-sidecar"
    binary_note="existing build-bench-cluster/redis-sidecar of $(date -r build-bench-cluster/redis-sidecar '+%F %T'), the tree did not build"
  fi
  rm -f "$blog"
  binary=build-bench-cluster/redis-sidecar
fi
[ -x "$binary" ] || { echo "bench/cluster.sh: $binary is not an executable" >&2; exit 2; }

if [ "$niceness" != 0 ]; then
  renice -n "$niceness" -p $$ >/dev/null || { echo "bench/cluster.sh: cannot renice to $niceness" >&2; exit 2; }
fi

# ---- processes ---------------------------------------------------------------------------------
work=$(mktemp -d /tmp/redis-sidecar-cluster-bench.XXXXXX)
# A private copy: others may relink the binary while this runs.
cp "$binary" "$work/redis-sidecar"
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
  if [ -n "$left" ]; then echo "bench/cluster.sh: still running:$left" >&2; rc=1; fi
  for p in $(pgrep -P $$ || true); do
    case "$(ps -o comm= -p "$p" 2>/dev/null)" in
      redis-server|redis-sidecar|redis-benchmark|redis-cli)
        echo "bench/cluster.sh: child left: $p" >&2; rc=1 ;;
    esac
  done
  if [ "$keep_work" = 1 ]; then echo "bench/cluster.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_taken() {  # port_taken IP PORT: something listens there, or this run already took it
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null || grep -qx "$2" "$work/ports" 2>/dev/null
}
free_port() {  # free_port [IP]: a port below the ephemeral range (32768+) nobody listens on
  local ip=${1:-127.0.0.1} p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000))
    if ! port_taken "$ip" "$p"; then echo "$p" >> "$work/ports"; echo "$p"; return; fi
  done
  echo "no free port" >&2; exit 1
}
free_range() {  # free_range N: the first of N consecutive free ports on 127.0.0.1
  local n=$1 base i ok
  for _ in $(seq 100); do
    base=$((20000 + RANDOM % (12000 - n)))
    ok=1
    for i in $(seq 0 $((n - 1))); do
      if port_taken 127.0.0.1 $((base + i)); then ok=0; break; fi
    done
    if [ "$ok" = 1 ]; then
      for i in $(seq 0 $((n - 1))); do echo $((base + i)) >> "$work/ports"; done
      echo "$base"; return
    fi
  done
  echo "no free port range" >&2; exit 1
}
wait_for() {  # wait_for SECONDS CMD...: polls CMD every 50 ms
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# ---- certificates: a CA and one certificate for every node (IP SANs; server and client auth,
# the cluster bus authenticates both ends) -------------------------------------------------------
log "certificates and a TLS cluster of $n_nodes primaries in $work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=redis-sidecar cluster bench CA" -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=redis-cluster-bench" \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
{
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1'
  for ip in "${node_ips[@]}"; do printf ',IP:%s' "$ip"; done
  printf '\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n'
} > "$work/san.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -extfile "$work/san.cnf" -out "$work/server.crt" 2>/dev/null
password="bench-auth-token-$(openssl rand -hex 12)"
printf '%s\n' "$password" > "$work/password"
chmod 600 "$work/password"

# ---- the cluster --------------------------------------------------------------------------------
node_ports=(); node_pids=()
for i in $(seq 0 $((n_nodes - 1))); do
  ip=${node_ips[$i]}
  port=$(free_port "$ip"); bus=$(free_port "$ip")
  mkdir -p "$work/node$i"
  # bind-source-addr: the cluster bus must connect from the node's own address, or peers learn
  # 127.0.0.1 for it (nothing listens there) and the cluster never forms.
  redis-server --port 0 --tls-port "$port" --bind "$ip" --bind-source-addr "$ip" \
    --tls-cert-file "$work/server.crt" --tls-key-file "$work/server.key" \
    --tls-ca-cert-file "$work/ca.crt" --tls-auth-clients no \
    --tls-cluster yes --tls-replication yes \
    --cluster-enabled yes --cluster-config-file "$work/node$i/nodes.conf" --cluster-port "$bus" \
    --requirepass "$password" --masterauth "$password" \
    --save "" --appendonly no --dir "$work/node$i" --logfile "$work/node$i/redis.log" &
  pids+=($!); node_pids+=($!); node_ports+=("$port")
done
for i in $(seq 0 $((n_nodes - 1))); do
  wait_for 10 grep -q "Ready to accept" "$work/node$i/redis.log" || { cat "$work/node$i/redis.log" >&2; exit 1; }
done
node_cli() {  # node_cli I ARGS...: redis-cli to node I, TLS + password
  local i=$1; shift
  timeout 10 redis-cli -h "${node_ips[$i]}" -p "${node_ports[$i]}" --tls --cacert "$work/ca.crt" \
    -a "$password" --no-auth-warning "$@"
}
create_args=()
for i in $(seq 0 $((n_nodes - 1))); do create_args+=("${node_ips[$i]}:${node_ports[$i]}"); done
timeout 60 redis-cli --cluster create "${create_args[@]}" --cluster-replicas 0 \
  --tls --cacert "$work/ca.crt" -a "$password" --no-auth-warning --cluster-yes \
  >"$work/cluster-create.log" 2>&1 || { cat "$work/cluster-create.log" >&2; exit 1; }
cluster_ok() {
  local i
  for i in $(seq 0 $((n_nodes - 1))); do
    node_cli "$i" CLUSTER INFO | grep -q '^cluster_state:ok' || return 1
    [ "$(node_cli "$i" CLUSTER NODES | grep -c master)" = "$n_nodes" ] || return 1
  done
}
wait_for 30 cluster_ok || { log "the cluster did not reach cluster_state:ok"; cat "$work/cluster-create.log" >&2; exit 1; }

# ---- the sidecar ----------------------------------------------------------------------------------
sidecar_port=$(free_port)
sidecar_http=$(free_port)
range_len=8
range_first=$(free_range "$range_len")
range="$range_first-$((range_first + range_len - 1))"
env REDIS_ADDR="${node_ips[0]}:${node_ports[0]}" REDIS_TLS_ENABLED=true REDIS_TLS_CA_FILE="$work/ca.crt" \
  REDIS_PASSWORD_FILE="$work/password" REDIS_SIDECAR_LISTEN="127.0.0.1:$sidecar_port" \
  REDIS_SIDECAR_HTTP_ADDR="127.0.0.1:$sidecar_http" REDIS_SIDECAR_CLUSTER=on \
  REDIS_SIDECAR_CLUSTER_PORTS="$range" REDIS_SIDECAR_LOG_FORMAT=text REDIS_SIDECAR_LOG_LEVEL=warn \
  "$bin" run 2>"$work/sidecar.log" &
pids+=($!)
sidecar_pid=$!
readyz_ok() { [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$sidecar_http/readyz")" = 200 ]; }
wait_for 30 readyz_ok || { log "the sidecar's /readyz did not answer 200"; cat "$work/sidecar.log" >&2; exit 1; }
# The sidecar must hand out local addresses only: every node of CLUSTER NODES on 127.0.0.1 in range.
nodes_via_sidecar=$(timeout 10 redis-cli -p "$sidecar_port" CLUSTER NODES)
local_nodes=$(awk -v lo="$range_first" -v hi=$((range_first + range_len - 1)) '
  { split($2, a, "[:@]"); if (a[1] == "127.0.0.1" && a[2] >= lo && a[2] <= hi) n++ } END { print n + 0 }' \
  <<< "$nodes_via_sidecar")
if [ "$local_nodes" != "$n_nodes" ]; then
  log "CLUSTER NODES through the sidecar is not rewritten to its ports ($range):"
  echo "$nodes_via_sidecar" >&2; exit 1
fi
log "cluster: ${create_args[*]}; sidecar 127.0.0.1:$sidecar_port, node ports $range"

results=$work/results.jsonl
: > "$results"
record() {  # record SETUP WORKLOAD METRIC VALUE ROUND [UNIT]
  printf '{"setup":"%s","workload":"%s","metric":"%s","value":%s,"round":%s,"unit":"%s"}\n' \
    "$1" "$2" "$3" "$4" "$5" "${6:-}" >> "$results"
}

# ---- machine facts ------------------------------------------------------------------------------
command_line="bash bench/cluster.sh"
if [ "$quick" = 1 ]; then command_line+=" --quick"; fi
if [ "$rounds" != 3 ] && [ "$quick" = 0 ]; then command_line+=" --rounds $rounds"; fi
if [ "$binary" != build-bench-cluster/redis-sidecar ]; then command_line+=" --binary $binary"; fi
if [ "$niceness" != 0 ]; then command_line+=" --nice $niceness"; fi
"$python" - "$work/machine.json" <<EOF
import json, sys
json.dump({"nproc": $(nproc), "cpu_model": """$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)""",
           "kernel": "$(uname -r)", "os": "$(. /etc/os-release; echo "$PRETTY_NAME")",
           "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "load_before": "$(cut -d' ' -f1-3 /proc/loadavg)",
           "rounds": $rounds, "quick": bool($quick), "niceness": $niceness, "command": "$command_line",
           "nodes": $n_nodes, "clients": $clients,
           "redis_benchmark": "$rb_version",
           "redis_server": "$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')",
           "openssl": "$(openssl version | awk '{print $2}')", "binary_note": "$binary_note",
           "sidecar_commit": "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- src include 2>/dev/null || echo '+local changes')"},
          open(sys.argv[1], "w"))
EOF
log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- setups -------------------------------------------------------------------------------------
setups=(direct sidecar)
conn_args() {
  case "$1" in
    direct) echo "-h ${node_ips[0]} -p ${node_ports[0]} --tls --cacert $work/ca.crt -a $password" ;;
    sidecar) echo "-h 127.0.0.1 -p $sidecar_port" ;;
  esac
}
servers_ticks() { local t=0 p; for p in "${node_pids[@]}"; do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }
# client CPU: the subshell's `times` (second line: its children, i.e. timeout + redis-benchmark)
client_ticks() {  # client_ticks FILE: "1m2.345s 0m0.120s" -> ticks (1/100 s)
  awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%d", t * 100 + 0.5 }' "$1"
}

# bench_rb SETUP WORKLOAD ROUND REQUESTS ARGS...: one redis-benchmark --cluster run; per test
# rps, p50, p99; and per request the CPU of the sidecar, of the three redis-servers and of
# redis-benchmark.
bench_rb() {
  local setup=$1 workload=$2 round=$3 requests=$4; shift 4
  local t0=0 s0 s1 t1 c hz out tests=0
  if [ "$setup" = sidecar ]; then t0=$(cpu_ticks "$sidecar_pid"); fi
  s0=$(servers_ticks)
  # shellcheck disable=SC2046
  if ! ( timeout "$cmd_timeout" redis-benchmark --cluster $(conn_args "$setup") --csv "$@" \
         >"$work/rb.out" 2>"$work/rb.err"; rc=$?; times > "$work/rb.times"; exit $rc ); then
    log "  $setup $workload: redis-benchmark failed: $(tail -n 2 "$work/rb.err" | tr '\n' ' ')"
    return 0
  fi
  s1=$(servers_ticks)
  if [ "$setup" = sidecar ]; then t1=$(cpu_ticks "$sidecar_pid"); fi
  c=$(client_ticks "$work/rb.times")
  # --cluster prints the masters it found first; the CSV lines start with a quote.
  out=$(grep '^"' "$work/rb.out" || true)
  while IFS=, read -r name rps _avg _min p50 _p95 p99 _max; do
    name=${name//\"/}; rps=${rps//\"/}
    [ "$name" = test ] && continue
    [ -z "$rps" ] && continue
    tests=$((tests + 1))
    record "$setup" "$workload ${name}" rps "$rps" "$round" "req/s"
    record "$setup" "$workload ${name}" p50_ms "${p50//\"/}" "$round" "ms"
    record "$setup" "$workload ${name}" p99_ms "${p99//\"/}" "$round" "ms"
  done <<< "$out"
  if [ "$tests" = 0 ]; then
    log "  $setup $workload: no CSV from redis-benchmark: $(head -c 300 "$work/rb.out" | tr '\n' ' ')"
    return 0
  fi
  hz=$(getconf CLK_TCK)
  per_req() { awk -v d="$1" -v hz="$hz" -v n=$((requests * tests)) 'BEGIN {printf "%.2f", d / hz * 1e6 / n}'; }
  record "$setup" "$workload" servers_cpu_us_per_req "$(per_req $((s1 - s0)))" "$round" "µs"
  record "$setup" "$workload" client_cpu_us_per_req "$(per_req "$c")" "$round" "µs"
  if [ "$setup" = sidecar ]; then
    record "$setup" "$workload" sidecar_cpu_us_per_req "$(per_req $((t1 - t0)))" "$round" "µs"
  fi
  log "  $setup $workload: $(echo "$out" | grep -v '^"test"' | awk -F, '{gsub(/"/,""); printf "%s %.0f req/s p50 %s ms; ", $1, $2, $5}')"
}

rotate() {  # rotate K: the setups, rotated left K times
  local k=$(( $1 % ${#setups[@]} ))
  echo "${setups[@]:k}" "${setups[@]:0:k}"
}

# Warm-up: every path once (the sidecar's pools, TLS session caches, the keys GET reads).
log "warm-up"
for s in "${setups[@]}"; do
  # shellcheck disable=SC2046
  timeout 60 redis-benchmark --cluster $(conn_args "$s") -q -c "$clients" -n "$n_warm" -r "$keyspace" -t set,get >/dev/null 2>&1 || true
done

for round in $(seq 1 "$rounds"); do
  log "round $round of $rounds (load average $(cut -d' ' -f1 /proc/loadavg))"
  record machine load load1 "$(cut -d' ' -f1 /proc/loadavg)" "$round"
  order=$(rotate $((round - 1)))
  for s in $order; do bench_rb "$s" "c=$clients" "$round" "$n_steady" -c "$clients" -n "$n_steady" -r "$keyspace" -t set,get; done
  for s in $order; do bench_rb "$s" "c=$clients P=16" "$round" "$n_pipe" -c "$clients" -P 16 -n "$n_pipe" -r "$keyspace" -t set; done
  for s in $order; do bench_rb "$s" "c=$clients 1 KB" "$round" "$n_1k" -c "$clients" -d 1024 -n "$n_1k" -r "$keyspace_1k" -t set,get; done
done

# The sidecar must still be the one started (no restart hid a crash), and ready.
kill -0 "$sidecar_pid" 2>/dev/null || { log "the sidecar exited during the run"; tail -n 20 "$work/sidecar.log" >&2; exit 1; }
readyz_ok || log "warning: the sidecar's /readyz is no longer 200 after the run"
record sidecar sidecar rss_after_load_kb "$(awk '/^VmRSS:/ {print $2}' "/proc/$sidecar_pid/status")" 1 KB
# Expected once: the upstream is an IP (verified against the certificate's IP SANs).
grep -E ' (warn|error) ' "$work/sidecar.log" | grep -v 'is an IP address and REDIS_TLS_SERVER_NAME is not set' \
  > "$work/sidecar.warnings" || true
if [ -s "$work/sidecar.warnings" ]; then
  log "the sidecar logged $(wc -l < "$work/sidecar.warnings") warning/error line(s); first: $(head -n 1 "$work/sidecar.warnings")"
fi

# ---- report -------------------------------------------------------------------------------------
"$python" - "$work/machine.json" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1])); m["load_after"] = sys.argv[2]; json.dump(m, open(sys.argv[1], "w"))
EOF
report_args=("$work/machine.json" "$results")
[ -n "$json_out" ] && report_args+=(--json "$json_out")
[ -n "$md_out" ] && report_args+=(--markdown "$md_out")
"$python" bench/cluster_report.py "${report_args[@]}"
