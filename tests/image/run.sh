#!/usr/bin/env bash
# The container image, built and run the way users build and run it:
#   1. scripts/image.sh builds localhost/redis-sidecar:<version> from deploy/Dockerfile with podman
#      (runc), the debian:12 base made with debootstrap and imported (no registry is reachable);
#   2. the image: its size (target <= 20 MB), what is in it (no shell, no package manager), its user;
#      `version` inside it names the commit and the statically linked OpenSSL;
#   3. run as Kubernetes runs it (--read-only, --user 65532, no capabilities, host network) against a
#      TLS redis-server on loopback whose password is a mounted secret file: /readyz 200, redis-cli
#      PING through it, nothing written to the root filesystem, SIGTERM -> exit 0 within the drain;
#   4. the chart's pod (helm template) run with `podman kube play` in a pod network namespace of its
#      own, the upstream a TLS redis-server inside it: the app container gets PONG from
#      127.0.0.1:6379; `redis-sidecar wait` and `shutdown` inside the image. What podman 4.3 cannot
#      run as rendered is adapted by kube-play-adapt.mjs, which prints each change and why.
# usage: tests/image/run.sh BUILD_DIR   (root; podman, runc, catatonit, debootstrap installed by
#        scripts/install-deps.sh; helm and js-yaml by tests/helm/setup.sh)
# Podman's configuration and storage are the test's own, under BUILD_DIR/image-test (kept between
# runs: the base image and the build's layers are reused); the debootstrapped base is cached by
# scripts/image.sh. Prints one line per check, [figure] lines, and "N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
helm="$repo/tools/helm"
kube_version=1.32.2

for tool in podman runc catatonit debootstrap redis-server redis-cli curl openssl nsenter node; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (scripts/install-deps.sh)" >&2; exit 2; }
done
[ -x "$helm" ] || { echo "run.sh: $helm is missing (tests/helm/setup.sh)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root (debootstrap, podman with runc)" >&2; exit 2; }

# ---- podman, configured for this machine by files the test owns
state="$build/image-test"
mkdir -p "$state"
# runc, not crun: crun fails on hybrid cgroups ("cgroups in hybrid mode not supported").
# default_ulimits: podman's defaults exceed this machine's hard limits (setrlimit: Operation not
# permitted). Host network for builds (apt-get inside the Dockerfile reaches Debian's mirror).
cat >"$state/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$state/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$state/run"
graphroot = "$state/storage"
EOF
export CONTAINERS_CONF="$state/containers.conf" CONTAINERS_STORAGE_CONF="$state/storage.conf"

tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
containers=()
kube_yaml=""
cleanup() {
  [ -n "$kube_yaml" ] && podman kube down "$kube_yaml" >/dev/null 2>&1
  for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source=../lib/check.sh
source "$here/../lib/check.sh"
figure() { echo "[figure] $1: $2"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# until_ok SECONDS CMD…: runs CMD until it succeeds, at most SECONDS (bounded, 0.2 s apart).
until_ok() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

version=$(sed -n 's/^project(redis_sidecar VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
image="localhost/redis-sidecar:$version"
password="image-test-password-0123456789"

# ---- 1. build
start=$SECONDS
check "scripts/image.sh builds $image (base image from debootstrap)" sh -c '
  out=$(bash "$0/scripts/image.sh" --base debootstrap 2>"$1") || { tail -30 "$1"; exit 1; }
  [ "$(echo "$out" | tail -n 1)" = "$2" ] || { echo "printed $out, want $2"; exit 1; }' \
  "$repo" "$tmp/image-build.log" "$image"
figure "image build (scripts/image.sh, base cached or not)" "$((SECONDS - start)) s"
# Build-stage layers are kept as untagged images, the cache of the next run; those of builds more
# than a day old go, so the storage does not grow with every commit.
podman image prune -f --filter until=24h >/dev/null 2>&1
podman image exists "$image" || finish
[ "$failed" -eq 0 ] || finish

# ---- 2. the image
size=$(podman image inspect --format '{{.Size}}' "$image")
figure "image size (podman image inspect .Size, uncompressed)" "$size bytes ($((size / 1000)) kB)"
check "image is at most 20 MB uncompressed ($size bytes)" test "$size" -le 20000000
check "image runs as 65532:65532, entrypoint redis-sidecar, cmd run" sh -c '
  got=$(podman image inspect --format "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}" "$0")
  [ "$got" = "65532:65532 [\"/usr/local/bin/redis-sidecar\"] [\"run\"]" ] || { echo "$got"; exit 1; }' "$image"
podman rm -f image-test-files >/dev/null 2>&1
podman create --name image-test-files "$image" >/dev/null && containers+=(image-test-files)
podman export image-test-files | tar -t | sed 's|^\./||; s|/$||' | sort >"$tmp/files.txt"
figure "files in the image" "$(grep -vc '/$' "$tmp/files.txt") entries"
check "image holds the binary, the CA store, glibc" sh -c '
  for f in usr/local/bin/redis-sidecar etc/ssl/certs/ca-certificates.crt etc/passwd lib64/ld-linux-x86-64.so.2; do
    grep -qx "$f" "$0" || { echo "missing $f"; exit 1; }
  done
  grep -q "libc.so.6$" "$0" || { echo "missing libc.so.6"; exit 1; }' "$tmp/files.txt"
check "image has no shell and no package manager" sh -c '
  ! grep -E "^(usr/)?bin/(sh|bash|dash|apt|apt-get|dpkg)$" "$0"' "$tmp/files.txt"
# version_in_image: what `version` says inside the image is this build: the version, the commit
# scripts/image.sh passed in (its log names it), Release, OpenSSL 3 linked statically.
version_in_image() {
  local j commit
  j=$(podman run --rm "$image" version --output json) || return 1
  echo "$j"
  commit=$(sed -n 's/^image.sh: .* (commit \(.*\))$/\1/p' "$tmp/image-build.log")
  [ -n "$commit" ] || { echo "no commit in the image.sh log"; return 1; }
  echo "$j" | node -e '
    const j = JSON.parse(require("fs").readFileSync(0));
    const [version, commit] = process.argv.slice(1);
    const fail = (m) => { console.log(m); process.exit(1); };
    if (j.version !== version) fail(`version ${j.version}, want ${version}`);
    if (j.commit !== commit) fail(`commit ${j.commit}, want ${commit}`);
    if (j.openssl.linkage !== "static" || !/^OpenSSL 3\./.test(j.openssl.text)) fail(`openssl ${JSON.stringify(j.openssl)}`);
    if (j.build_type !== "Release") fail(`build type ${j.build_type}`);' "$version" "$commit"
}
check "image: redis-sidecar version names the commit and the statically linked OpenSSL" version_in_image

# ---- a TLS redis-server with a password, and what a cluster would mount
pki="$tmp/pki"
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=image-test-ca \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$pki/server.key" -out "$pki/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$pki/ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
  -extfile "$pki/ext" -out "$pki/server.crt" 2>/dev/null
chmod 644 "$pki"/*
# redis_conf PORT LOG: a TLS-only server with the password, no persistence.
redis_conf() {
  printf 'port 0\ntls-port %s\nbind 127.0.0.1\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients no\nrequirepass %s\nsave ""\nappendonly no\ndaemonize no\nlogfile %s\ndir %s\n' \
    "$1" "$pki/server.crt" "$pki/server.key" "$pki/ca.crt" "$password" "$2" "$tmp"
}
upstream_port=$(free_port)
redis_conf "$upstream_port" "$tmp/redis.log" >"$tmp/redis.conf"
redis-server "$tmp/redis.conf" &
pids+=($!)
redis_ping() { [ "$(redis-cli --tls --cacert "$pki/ca.crt" -p "$1" -a "$password" --no-auth-warning PING 2>/dev/null)" = PONG ]; }
until_ok 10 redis_ping "$upstream_port" || { echo "redis-server did not start"; cat "$tmp/redis.log"; finish; }
secrets="$tmp/secrets"
mkdir -p "$secrets"
printf '%s\n' "$password" >"$secrets/password" # as kubectl create secret --from-file leaves it
cp "$pki/ca.crt" "$secrets/ca.crt"
chmod 755 "$secrets"
chmod 644 "$secrets"/*

# ---- 3. the image run as Kubernetes runs it
ctr="redis-sidecar-image-test-$$"
listen=$(free_port)
admin=$(free_port)
containers+=("$ctr")
check "podman run --read-only --user 65532 --cap-drop ALL --network host" \
  podman run -d --name "$ctr" --read-only --read-only-tmpfs=false --user 65532:65532 --cap-drop ALL \
  --security-opt no-new-privileges --network host \
  -v "$secrets:/var/run/secrets/redis-sidecar:ro" \
  -e REDIS_ADDR="localhost:$upstream_port" -e REDIS_TLS_ENABLED=true \
  -e REDIS_SIDECAR_SECRETS_DIR=/var/run/secrets/redis-sidecar \
  -e REDIS_SIDECAR_LISTEN="127.0.0.1:$listen" -e REDIS_SIDECAR_HTTP_ADDR="127.0.0.1:$admin" \
  -e REDIS_SIDECAR_MAX_DRAIN=5s "$image"
readyz() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$admin/readyz")" = 200 ]; }
start=$SECONDS
check "/readyz answers 200 (within 30 s)" until_ok 30 readyz
figure "container start to /readyz 200" "$((SECONDS - start)) s (whole seconds)"
check "redis-cli PING through the sidecar: PONG" sh -c '[ "$(redis-cli -p "$0" PING)" = PONG ]' "$listen"
check "SET and GET through the sidecar reach the TLS upstream" sh -c '
  [ "$(redis-cli -p "$0" SET image-test ok)" = OK ] &&
  [ "$(redis-cli --tls --cacert "$1" -p "$2" -a "$3" --no-auth-warning GET image-test)" = ok ]' \
  "$listen" "$pki/ca.crt" "$upstream_port" "$password"
check "the process runs as uid 65532 with no capabilities" sh -c '
  pid=$(podman inspect --format "{{.State.Pid}}" "$0")
  grep -E "^(Uid|CapEff|CapPrm|NoNewPrivs)" /proc/$pid/status
  grep -qE "^Uid:\s+65532\s" /proc/$pid/status && grep -qE "^CapEff:\s+0+$" /proc/$pid/status &&
  grep -qE "^CapPrm:\s+0+$" /proc/$pid/status && grep -qE "^NoNewPrivs:\s+1$" /proc/$pid/status' "$ctr"
# podman diff lists the mount points podman itself made for the secret volume and for /etc/hosts
# and /etc/resolv.conf; anything else would be the process writing.
root_fs_unchanged() {
  local d
  d=$(podman diff "$ctr") || return 1
  echo "$d"
  ! echo "$d" | grep -vxE '(C /etc|A /var|A /var/run|A /var/run/secrets|A /var/run/secrets/redis-sidecar)'
}
check "nothing written to the root filesystem (podman diff: only podman's mount points)" root_fs_unchanged
check "the password is in no log line" sh -c '
  podman logs "$0" >"$1" 2>&1 && ! grep -qF "$2" "$1" && grep -q "upstream connected" "$1" || { cat "$1"; exit 1; }' \
  "$ctr" "$tmp/container.log" "$password"
start=$SECONDS
podman kill --signal TERM "$ctr" >/dev/null
check "SIGTERM: exit 0 within the drain bound (5 s)" sh -c '
  code=$(timeout 20 podman wait "$0") || { echo "did not exit within 20 s"; exit 1; }
  [ "$code" = 0 ] || { echo "exit $code"; podman logs --tail 5 "$0"; exit 1; }' "$ctr"
figure "SIGTERM to container exit" "$((SECONDS - start)) s (whole seconds)"

# ---- 4. the chart's pod with podman kube play
check "tools image for the app container and the upstream (Debian's redis-tools, redis-server)" sh -c '
  podman build --pull=never -q -f "$0/tools.Containerfile" -t localhost/redis-sidecar-test-tools:1 "$0" >"$1" 2>&1 ||
  { cat "$1"; exit 1; }' "$here" "$tmp/tools-build.log"
check "helm template: the chart's Deployment and Secret, the upstream's CA as a Secret" sh -c '
  "$0" template imgtest "$1" --kube-version "$2" --show-only templates/deployment.yaml --show-only templates/secret.yaml \
    --set externalRedis.host=localhost --set externalRedis.port=6380 --set externalRedis.tls.enabled=true \
    --set externalRedis.tls.caSecret=upstream-ca --set externalRedis.password="$3" \
    --set image.repository=localhost/redis-sidecar --set image.pullPolicy=Never \
    --set demo.image.repository=localhost/redis-sidecar-test-tools --set-string demo.image.tag=1 \
    --set demo.image.pullPolicy=Never --set demo.intervalSeconds=1 >"$5" &&
  printf -- "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: upstream-ca\ntype: Opaque\ndata:\n  ca.crt: %s\n" \
    "$(base64 -w0 "$4")" >>"$5"' "$helm" "$repo/helm/redis-sidecar" "$kube_version" "$password" "$pki/ca.crt" "$tmp/rendered.yaml"
check "adapt the rendered pod to podman 4.3 (each change printed)" sh -c '
  node "$0/kube-play-adapt.mjs" "$1" "$2" "$3" 2>&1' "$here" "$tmp/rendered.yaml" "$tmp/kube.yaml" "$tmp/kube-secrets"
cat "$tmp/out" | sed 's/^/     /'
kube_yaml="$tmp/kube.yaml"
# A pod network namespace of its own, as Kubernetes gives: only loopback, so 127.0.0.1:6379 is the
# pod's. Created stopped, so that the upstream is up inside it before the containers start.
check "podman kube play --network none --start=false" sh -c '
  podman kube play --network none --start=false "$0" >"$1" 2>&1 || { cat "$1"; exit 1; }' "$kube_yaml" "$tmp/play.log"
pod=$(podman pod ps --format '{{.Name}}' | grep '^imgtest-redis-sidecar-pod' | head -n 1)
[ -n "$pod" ] || finish
sidecar="$pod-redis-sidecar"
app="$pod-demo"
infra=$(podman pod inspect "$pod" --format '{{.InfraContainerID}}' 2>/dev/null)
podman start "$infra" >/dev/null 2>&1
netns_pid=$(podman inspect "$infra" --format '{{.State.Pid}}' 2>/dev/null)
# The upstream: Debian's redis-server on the host, inside the pod's network namespace.
redis_conf 6380 "$tmp/pod-redis.log" >"$tmp/pod-redis.conf"
nsenter -t "$netns_pid" -n redis-server "$tmp/pod-redis.conf" &
pids+=($!)
check "the upstream answers inside the pod's network namespace" until_ok 10 nsenter -t "$netns_pid" -n \
  sh -c '[ "$(redis-cli --tls --cacert "$0" -p 6380 -a "$1" --no-auth-warning PING 2>/dev/null)" = PONG ]' "$pki/ca.crt" "$password"
check "podman pod start" sh -c 'podman pod start "$0" >"$1" 2>&1 || { cat "$1"; exit 1; }' "$pod" "$tmp/pod-start.log"
check "redis-sidecar wait (inside the image) returns once the sidecar started" \
  podman exec "$sidecar" redis-sidecar wait --timeout 30s
check "the pod's /readyz answers 200" nsenter -t "$netns_pid" -n \
  sh -c '[ "$(curl -s -o /dev/null -w "%{http_code}" --max-time 2 http://127.0.0.1:9090/readyz)" = 200 ]'
check "the app container gets PONG from 127.0.0.1:6379" sh -c '
  r=$(podman exec "$0" redis-cli -h 127.0.0.1 -p 6379 PING) && [ "$r" = PONG ] || { echo "$r"; exit 1; }' "$app"
# (Output goes through files: with pipefail, grep -q closing the pipe early would fail the pipeline.)
app_round() { podman logs "$app" >"$tmp/app.log" 2>&1; grep -qE '^round [0-9]+: GET -> [0-9]+$' "$tmp/app.log"; }
check "the chart's demo app does SET/GET rounds through the sidecar" until_ok 15 app_round
check "the password is in no log line of the pod" sh -c '
  ! { podman logs "$0"; podman logs "$1"; } 2>&1 | grep -qF "$2"' "$sidecar" "$app" "$password"
start=$SECONDS
shutdown_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
check "redis-sidecar shutdown (inside the image, as a preStop hook would)" podman exec "$sidecar" redis-sidecar shutdown
# The Deployment's pod has restartPolicy Always, so podman starts the sidecar again after it exits:
# its exit is read from podman's "died" event.
sidecar_died() {
  podman events --stream=false --since "$shutdown_at" --filter "container=$sidecar" --filter event=died \
    --format '{{.ContainerExitCode}}' >"$tmp/died" 2>/dev/null
  [ -s "$tmp/died" ]
}
sidecar_exits_0() {
  until_ok 30 sidecar_died || { echo "no exit within 30 s"; podman logs --tail 5 "$sidecar"; return 1; }
  local code
  code=$(head -n 1 "$tmp/died")
  [ "$code" = 0 ] || { echo "exit $code"; podman logs --tail 5 "$sidecar"; return 1; }
  podman logs "$sidecar" >"$tmp/sidecar.log" 2>&1
  grep -q '"reason":"POST /quitquitquit"' "$tmp/sidecar.log" || { echo "no drain for POST /quitquitquit in the log"; tail -5 "$tmp/sidecar.log"; return 1; }
}
check "the sidecar drains and exits 0 (drain: min 2s, max 20s)" sidecar_exits_0
figure "kube play: shutdown to sidecar exit" "$((SECONDS - start)) s (whole seconds)"
finish
