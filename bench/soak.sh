#!/usr/bin/env bash
# A soak: redis-sidecar in front of a TLS redis-server (ACL user, password in a watched secrets
# directory) under steady load and connection churn, with the password rotated every minute and
# the upstream restarted every 5 minutes.
#
#   bash bench/soak.sh [--minutes 30] [--ci] [--rotate-every S] [--restart-every S]
#                      [--json FILE] [--keep-work]
#
# --ci is the 2-minute mode (rotation every 20 s, a restart every 60 s) that .ci/run runs.
# Every 10 s it samples the sidecar's RSS, its open file descriptors and the upstream connections
# the server sees (INFO clients). It fails (exit 1) when
#   - any command failed outside a restart window (from the kill until /readyz is 200 again,
#     plus 3 s for clients to reconnect),
#   - RSS in the last third of the run exceeds the first third's peak by more than 8 MiB,
#   - open fds in the last third exceed the first third's peak by more than 16,
#   - the server ever saw more upstream connections than REDIS_MAX_CONNECTIONS + 2,
#   - the sidecar exited.
# Everything listens on 127.0.0.1; every loop is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=30
rotate_every=60
restart_every=300
json_out=""
keep_work=0
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift ;;
    --ci) minutes=2; rotate_every=20; restart_every=60 ;;
    --rotate-every) rotate_every=$2; shift ;;
    --restart-every) restart_every=$2; shift ;;
    --json) json_out=$2; shift ;;
    --keep-work) keep_work=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "bench/soak.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
seconds=$((minutes * 60))
sample_every=10
max_connections=16

log() { printf '[soak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
for tool in redis-server redis-cli openssl curl python3; do
  command -v "$tool" >/dev/null || { echo "bench/soak.sh: $tool is missing (bash scripts/install-deps.sh)" >&2; exit 2; }
done

if [ ! -x build/redis-sidecar ] || [ -z "${CI:-}" ]; then
  log "building build/redis-sidecar (scripts/build.sh)"
  bash scripts/build.sh >/dev/null
fi

work=$(mktemp -d /tmp/redis-sidecar-soak.XXXXXX)
cp build/redis-sidecar "$work/redis-sidecar"
redis_pid=""
sidecar_pid=""
load_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in $load_pid $sidecar_pid $redis_pid; do kill "$p" 2>/dev/null || true; done
  for p in $load_pid $sidecar_pid $redis_pid; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "$keep_work" = 1 ] || [ "$rc" != 0 ]; then echo "bench/soak.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! grep -qx "$p" "$work/ports" 2>/dev/null; then
      echo "$p" >> "$work/ports"; echo "$p"; return
    fi
  done
  echo "no free port" >&2; exit 1
}
wait_for() {  # wait_for SECONDS CMD...: polls CMD every 50 ms
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

bash scripts/make-certs.sh "$work" "redis-sidecar soak CA"
admin_password="soak-admin-$(openssl rand -hex 12)"
password="soak-app-$(openssl rand -hex 12)"
mkdir -p "$work/secrets"
printf 'app' > "$work/secrets/username"
printf '%s' "$password" > "$work/secrets/password"
printf 'user default on >%s ~* &* +@all\nuser app on >%s ~* &* +@all\n' "$admin_password" "$password" > "$work/users.acl"

redis_port=$(free_port)
start_redis() {
  redis-server --port 0 --tls-port "$redis_port" --bind 127.0.0.1 \
    --tls-cert-file "$work/server.crt" --tls-key-file "$work/server.key" \
    --tls-ca-cert-file "$work/ca.crt" --tls-auth-clients no \
    --aclfile "$work/users.acl" --save "" --appendonly no --dir "$work" \
    --logfile "$work/redis.log" &
  redis_pid=$!
  wait_for 10 admin PING || { tail -20 "$work/redis.log" >&2; exit 1; }
}
admin() {
  redis-cli -p "$redis_port" --tls --cacert "$work/ca.crt" --user default --pass "$admin_password" \
    --no-auth-warning "$@"
}
start_redis

port=$(free_port)
http=$(free_port)
REDIS_ADDR="localhost:$redis_port" REDIS_TLS_ENABLED=true REDIS_TLS_CA_FILE="$work/ca.crt" \
  REDIS_SIDECAR_SECRETS_DIR="$work/secrets" REDIS_SIDECAR_LISTEN="127.0.0.1:$port" \
  REDIS_SIDECAR_HTTP_ADDR="127.0.0.1:$http" REDIS_MAX_CONNECTIONS=$max_connections \
  REDIS_SIDECAR_LOG_FORMAT=text REDIS_SIDECAR_LOG_LEVEL=info \
  "$work/redis-sidecar" run 2>"$work/sidecar.log" &
sidecar_pid=$!
set_through_sidecar() { [ "$(redis-cli -p "$port" SET soak:restarted 1 2>/dev/null)" = OK ]; }
readyz() { [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$http/readyz")" = 200 ]; }
wait_for 20 readyz || { cat "$work/sidecar.log" >&2; exit 1; }

log "load: 8 steady clients + 4 churning clients for ${minutes} min; rotation every ${rotate_every} s, restart every ${restart_every} s"
python3 bench/tools/soak_load.py --port "$port" --seconds "$seconds" --steady 8 --churn 4 \
  --rate 100 --out "$work/load.json" &
load_pid=$!

: > "$work/samples"
: > "$work/windows"
rotations=0
restarts=0
start=$(date +%s)
next_sample=$start
next_rotation=$((start + rotate_every))
next_restart=$((start + restart_every))
while [ "$(date +%s)" -lt $((start + seconds)) ]; do
  now=$(date +%s)
  kill -0 "$sidecar_pid" 2>/dev/null || { log "the sidecar exited"; cat "$work/sidecar.log" >&2; exit 1; }
  if [ "$now" -ge "$next_sample" ]; then
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$sidecar_pid/status")
    fds=$(find "/proc/$sidecar_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
    clients=$(admin INFO clients 2>/dev/null | tr -d '\r' | awk -F: '/^connected_clients:/ {print $2 - 1}')
    echo "$((now - start)) $rss $fds ${clients:--1}" >> "$work/samples"
    next_sample=$((next_sample + sample_every))
  fi
  if [ "$now" -ge "$next_restart" ] && [ "$now" -lt $((start + seconds - 20)) ]; then
    log "restarting the upstream"
    from=$(date +%s.%N)
    kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
    start_redis
    wait_for 60 readyz || { log "/readyz not 200 60 s after the restart"; exit 1; }
    wait_for 60 set_through_sidecar || { log "no SET through the sidecar 60 s after the restart"; exit 1; }
    echo "$from $(date +%s.%N)" >> "$work/windows"
    restarts=$((restarts + 1))
    next_restart=$((next_restart + restart_every))
  elif [ "$now" -ge "$next_rotation" ]; then
    # As ElastiCache rotates an AUTH token: both passwords valid, the Secret swapped (a rename,
    # as the kubelet does), the sidecar takes the new one, then the old one is removed.
    new="soak-app-$(openssl rand -hex 12)"
    before=$(curl -s "http://127.0.0.1:$http/metrics" | awk '/^redis_sidecar_credential_rotations_total/ {print $2}')
    admin ACL SETUSER app ">$new" >/dev/null
    printf '%s' "$new" > "$work/secrets/.password.new"
    mv "$work/secrets/.password.new" "$work/secrets/password"
    rotated() { [ "$(curl -s "http://127.0.0.1:$http/metrics" | awk '/^redis_sidecar_credential_rotations_total/ {print $2}')" != "$before" ]; }
    wait_for 10 rotated || { log "the sidecar did not take the rotated password within 10 s"; exit 1; }
    admin ACL SETUSER app "<$password" >/dev/null
    admin ACL SAVE >/dev/null
    password=$new
    rotations=$((rotations + 1))
    next_rotation=$((next_rotation + rotate_every))
  fi
  sleep 0.5
done
wait "$load_pid"
load_pid=""
kill -0 "$sidecar_pid" 2>/dev/null || { log "the sidecar exited"; exit 1; }

python3 - "$work" "$minutes" "$rotations" "$restarts" "$max_connections" "${json_out:-}" <<'EOF'
import json, sys
work, minutes, rotations, restarts, max_conns, json_out = sys.argv[1:7]
load = json.load(open(f"{work}/load.json"))
samples = [list(map(int, l.split())) for l in open(f"{work}/samples") if l.strip()]
windows = [tuple(map(float, l.split())) for l in open(f"{work}/windows") if l.strip()]
grace = 3.0
def in_window(t):
    return any(a <= t <= b + grace for a, b in windows)
outside = [f for f in load["failures"] if not in_window(f["time"])]
during = len(load["failures"]) - len(outside)
third = max(1, len(samples) // 3)
first, last = samples[:third], samples[-third:]
rss_growth = max(s[1] for s in last) - max(s[1] for s in first)
fd_growth = max(s[2] for s in last) - max(s[2] for s in first)
peak_upstream = max(s[3] for s in samples)
print("   t(s)  RSS(KiB)  fds  upstream connections")
for t, rss, fds, up in samples:
    print(f"{t:7d} {rss:9d} {fds:4d} {up:6d}")
report = {
    "minutes": int(minutes), "rotations": int(rotations), "restarts": int(restarts),
    "commands_ok": load["ok"], "churn_connects": load["connects"],
    "failed_during_restarts": during, "failed_outside_restarts": len(outside),
    "rss_kib_first_third_peak": max(s[1] for s in first), "rss_kib_growth": rss_growth,
    "fds_growth": fd_growth, "peak_upstream_connections": peak_upstream,
}
print(json.dumps(report, indent=2))
for f in outside[:10]:
    print("failed outside a restart:", f)
if json_out:
    json.dump(report, open(json_out, "w"), indent=2)
ok = (not outside and rss_growth <= 8 * 1024 and fd_growth <= 16
      and peak_upstream <= int(max_conns) + 2 and load["ok"] > 0)
print("soak:", "PASS" if ok else "FAIL",
      "(bounds: 0 failures outside restarts, RSS growth <= 8 MiB, fd growth <= 16, "
      f"upstream connections <= {int(max_conns) + 2})")
sys.exit(0 if ok else 1)
EOF
