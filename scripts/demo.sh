#!/usr/bin/env bash
# The sidecar's main job, locally: a TLS redis-server with a password stands in for ElastiCache;
# redis-sidecar resolves its settings from the environment (password from a mounted-secret-style
# file), keeps a warm TLS pool to it, and serves plain Redis on 127.0.0.1:6379.
#
#   bash scripts/demo.sh          # set up, run the demo, stop everything
#   bash scripts/demo.sh --keep   # ... and leave both running until Ctrl-C
#
# DEMO_LISTEN (default 127.0.0.1:6379) and DEMO_HTTP (default 127.0.0.1:9090) move the sidecar.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(bash scripts/build.sh | tail -n 1)
bin="$PWD/$build/redis-sidecar"
listen=${DEMO_LISTEN:-127.0.0.1:6379}
http=${DEMO_HTTP:-127.0.0.1:9090}
lport=${listen##*:}

work=$(mktemp -d /tmp/redis-sidecar-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "a private CA and a server certificate for 'localhost' (as ElastiCache has for its endpoint)"
bash scripts/make-certs.sh "$work" "redis-sidecar demo CA"
echo "$work/ca.crt"

say "a TLS-only redis-server with an AUTH token (the stand-in for ElastiCache)"
password="demo-auth-token-$(openssl rand -hex 8)"
mkdir -p "$work/secrets"
printf '%s\n' "$password" > "$work/secrets/password"   # trailing newline, like kubectl's
cp "$work/ca.crt" "$work/secrets/ca.crt"
upstream_port=0
for _ in $(seq 50); do  # a free port: nothing answers a connect there
  p=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then upstream_port=$p; break; fi
done
redis-server --port 0 --tls-port "$upstream_port" --bind 127.0.0.1 \
  --tls-cert-file "$work/server.crt" --tls-key-file "$work/server.key" \
  --tls-ca-cert-file "$work/ca.crt" --tls-auth-clients no \
  --requirepass "$password" --save "" --appendonly no --dir "$work" \
  --logfile "$work/redis.log" &
pids+=($!)
for _ in $(seq 100); do
  grep -q "Ready to accept" "$work/redis.log" 2>/dev/null && break; sleep 0.05
done
echo "redis-server: TLS on 127.0.0.1:$upstream_port, requirepass set"

export REDIS_ADDR="localhost:$upstream_port"
export REDIS_TLS_ENABLED=true
export REDIS_SIDECAR_SECRETS_DIR="$work/secrets"
export REDIS_SIDECAR_LISTEN="$listen"
export REDIS_SIDECAR_HTTP_ADDR="$http"
export REDIS_SIDECAR_LOG_FORMAT=text

say "redis-sidecar config (what it resolved, and from where)"
"$bin" config

say "redis-sidecar check (DNS → TCP → TLS → AUTH → PING → ROLE)"
"$bin" check

say "redis-sidecar run: plain Redis on $listen, pooled TLS upstream"
"$bin" run 2> "$work/sidecar.log" &
pids+=($!)
for _ in $(seq 100); do
  redis-cli -h "${listen%:*}" -p "$lport" PING >/dev/null 2>&1 && break; sleep 0.05
done
sed 's/^/  sidecar log: /' "$work/sidecar.log"

say "an application talks plain Redis to localhost: no TLS, no password"
set -x
redis-cli -h "${listen%:*}" -p "$lport" PING
redis-cli -h "${listen%:*}" -p "$lport" SET greeting "hello through the sidecar"
redis-cli -h "${listen%:*}" -p "$lport" GET greeting
redis-cli -h "${listen%:*}" -p "$lport" ACL WHOAMI
set +x
if command -v curl >/dev/null 2>&1; then
  if curl -fsS "http://$http/readyz" >/dev/null 2>&1; then
    say "probes"
    for p in livez startupz readyz; do printf '/%s: ' "$p"; curl -s "http://$http/$p"; echo; done
  fi
fi

say "a short benchmark through the sidecar (redis-benchmark, 50 clients)"
redis-benchmark -h "${listen%:*}" -p "$lport" -n 20000 -c 50 -t set,get -q

if [ "${1:-}" = "--keep" ]; then
  say "running; try: redis-cli -p $lport   (Ctrl-C stops everything)"
  wait
fi
say "done"
