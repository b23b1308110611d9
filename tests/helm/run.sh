#!/usr/bin/env bash
# Tests of the Helm chart (helm/redis-sidecar) and the kustomize manifests (deploy/):
#   helm lint --strict + helm template for a matrix of values files; every rendered object validated
#   against the strict Kubernetes 1.32 JSON schemas (tests/helm/schemas, copied from kubeconform-layout schemas generated from the Kubernetes OpenAPI) with ajv; assertions on
#   secrets, probes, REDIS_ADDR, the native sidecar, the security context and cluster mode (env,
#   NetworkPolicy ports, the demo's redis-cli -c); values the schema must
#   refuse; the library-style include from a parent chart; kubectl kustomize base + overlay; and,
#   given the built binary, the rendered sidecar env fed to `redis-sidecar config`.
# usage: tests/helm/run.sh [path/to/redis-sidecar]   (run tests/helm/setup.sh first)
# Prints one line per check and "N passed, M failed"; exits non-zero if anything failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
chart="$repo/helm/redis-sidecar"
helm="$repo/tools/helm"
bin=${1:-}
kube_version=1.32.2
schema_dirs="$here/schemas/v${kube_version}-standalone-strict"

[ -x "$helm" ] && [ -d "$here/node_modules/ajv" ] || {
  echo "run.sh: tools missing: run tests/helm/setup.sh first" >&2
  exit 2
}
[ -d "$schema_dirs" ] || {
  echo "run.sh: no schemas at $schema_dirs" >&2
  exit 2
}
command -v kubectl >/dev/null || {
  echo "run.sh: kubectl is missing" >&2
  exit 2
}
if [ -n "$bin" ] && [ ! -x "$bin" ]; then
  echo "run.sh: $bin is not an executable" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HELM_CACHE_HOME="$tmp/helm/cache" HELM_CONFIG_HOME="$tmp/helm/config" HELM_DATA_HOME="$tmp/helm/data"

# shellcheck source=../lib/check.sh
source "$here/../lib/check.sh"
skipped=0
skip() {
  echo "skip $1"
  skipped=$((skipped + 1))
}
node_() { node "$here/$1" "${@:2}"; }
validate() { node_ validate.mjs "$schema_dirs" "$@"; }
# refused FILE: helm template must fail, and its message contain the file's "# expect:" text.
refused() {
  local want
  want=$(sed -n 's/^# expect: //p' "$1")
  if "$helm" template t "$chart" -f "$1" --kube-version "$kube_version" >/dev/null 2>"$tmp/err"; then
    echo "rendered, but must be refused"
    return 1
  fi
  grep -qF -- "$want" "$tmp/err" || {
    echo "refused without the message \"$want\":"
    cat "$tmp/err"
    return 1
  }
}
not_() { ! "$@"; }

# config_check RENDERED HOST PORT TLS DB AUTH: the rendered sidecar env, with its secret files
# materialized in a temp dir, resolves with the real binary, to the expected upstream.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 1 \
  -subj /CN=redis-sidecar-test-ca >/dev/null 2>&1
config_check() {
  local rendered=$1 root
  root=$(mktemp -d "$tmp/root.XXXX")
  local vars=()
  mapfile -d '' vars < <(node_ podenv.mjs "$rendered" "$root" "$tmp/ca.pem") || return 1
  [ ${#vars[@]} -gt 0 ] || { echo "no env from podenv.mjs"; return 1; }
  env -i "${vars[@]}" "$bin" config >"$root.json" 2>"$root.err" || {
    echo "redis-sidecar config exited $?:"
    cat "$root.err"
    return 1
  }
  # The cluster settings resolve to what the env says (the binary's defaults where it says nothing).
  local v mode=auto ports=7000-7099
  for v in "${vars[@]}"; do
    case $v in
      REDIS_SIDECAR_CLUSTER=*) mode=${v#*=} ;;
      REDIS_SIDECAR_CLUSTER_PORTS=*) ports=${v#*=} ;;
    esac
  done
  node -e '
    const [file, host, port, tls, db, auth, mode, ports] = process.argv.slice(1);
    const j = JSON.parse(require("fs").readFileSync(file, "utf8"));
    const u = j.upstream;
    const want = { host, port: Number(port), tls: tls === "true", db: Number(db), auth: auth === "yes", cluster: { mode, ports } };
    const got = { host: u.host, port: u.port, tls: u.tls.enabled, db: u.db, auth: u.password === "<redacted>",
      cluster: { mode: j.cluster?.mode, ports: j.cluster?.ports } };
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      console.error(`config resolved ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      process.exit(1);
    }' "$root.json" "$2" "$3" "$4" "$5" "$6" "$mode" "$ports"
}

# ---- the validator and the assertions can fail
check "validator: a kind without a schema fails" not_ validate "$here/fixtures/unknown-kind.yaml"
check "validator: an unknown container field fails" not_ validate "$here/fixtures/invalid-deployment.yaml"

# ---- chart: the values matrix. ci/NAME is the chart's own helm/redis-sidecar/ci/NAME-values.yaml
#      (chart-testing's layout: the setups users have); other names are tests/helm/values/NAME.yaml.
# values_file NAME: the file a matrix name stands for.
values_file() {
  case $1 in
    ci/*) echo "$chart/ci/${1#ci/}-values.yaml" ;;
    *) echo "$here/values/$1.yaml" ;;
  esac
}
#      values file             | REDIS_ADDR                                              | native | tls  | db | auth | more env
cases=(
  "ci/in-cluster           |redis.default.svc.cluster.local:6379                    |true |false|0|no |REDIS_TLS_ENABLED=false,REDIS_SIDECAR_CLIENT_AUTH=local,REDIS_SIDECAR_CLUSTER=auto,REDIS_SIDECAR_CLUSTER_PORTS=7000-7099"
  "ci/elasticache-tls-auth |master.my-cache.abc123.use1.cache.amazonaws.com:6379    |true |true |0|yes|REDIS_TLS_ENABLED=true,REDIS_TLS_SKIP_VERIFY=false"
  "ci/url                  |clustercfg.my-cache.abc123.use1.cache.amazonaws.com:6380|true |true |2|yes|REDIS_USERNAME=app,REDIS_DB=2,REDIS_TLS_ENABLED=true"
  "ci/irsa                 |master.my-cache.abc123.use1.cache.amazonaws.com:6379    |true |true |0|yes|REDIS_SIDECAR_CLIENT_AUTH=passthrough"
  "ci/serverless           |my-cache-abc123.serverless.use1.cache.amazonaws.com:6379|true |true |0|yes|REDIS_SIDECAR_CLUSTER=on,REDIS_SIDECAR_CLUSTER_PORTS=7000-7199,REDIS_TLS_ENABLED=true"
  "elasticache-tls-auth    |master.my-cache.abc123.use1.cache.amazonaws.com:6379    |true |true |0|yes|REDIS_USERNAME=app,REDIS_TLS_SKIP_VERIFY=false"
  "existing-secret         |cache.internal.example.com:6380                         |true |true |0|yes|REDIS_TLS_SERVER_NAME=cache.internal.example.com"
  "native-false            |10.0.12.34:6379                                         |false|false|0|yes|REDIS_SIDECAR_SECRETS_DIR=/var/run/secrets/redis-sidecar,REDIS_SIDECAR_CLUSTER=off"
  "native-false-hold       |redis.default.svc.cluster.local:6379                    |false|false|0|no |REDIS_SIDECAR_HTTP_ADDR=0.0.0.0:9090"
  "iam                     |clustercfg.orders.abc123.euc1.cache.amazonaws.com:6379  |true |true |0|no |REDIS_IAM_AUTH=true,REDIS_USERNAME=app-iam,REDIS_IAM_SERVERLESS=false"
  "all-on                  |master.my-cache.abc123.use1.cache.amazonaws.com:6379    |true |true |3|yes|REDIS_SIDECAR_SOCKET=/var/run/redis-sidecar/redis.sock"
)
for f in "$chart"/ci/*-values.yaml; do
  ci_name="ci/$(basename "$f" -values.yaml)"
  check "chart: $ci_name is in the values matrix" sh -c 'printf "%s\n" "$@" | grep -q "^$0 "' "$ci_name" "${cases[@]}"
done
for row in "${cases[@]}"; do
  IFS='|' read -r name addr native tls db auth env <<<"$row"
  name=${name// /} addr=${addr// /} native=${native// /} tls=${tls// /} auth=${auth// /}
  values=$(values_file "$name")
  out="$tmp/${name//\//-}.yaml"
  check "chart[$name]: helm lint --strict" "$helm" lint --strict "$chart" -f "$values" --kube-version "$kube_version"
  check "chart[$name]: helm template" \
    sh -c '"$0" template demo "$1" -n demo -f "$2" --kube-version "$3" >"$4"' "$helm" "$chart" "$values" "$kube_version" "$out"
  check "chart[$name]: objects valid against the k8s $kube_version schemas" validate "$out"
  check "chart[$name]: assertions (secrets, probes, REDIS_ADDR, sidecar kind, security)" \
    node_ assert.mjs "$out" --addr "$addr" --native "$native" --env "$env" --values "$values" --chart
  if [ -n "$bin" ]; then
    check "chart[$name]: rendered env resolves with redis-sidecar config" config_check "$out" "${addr%:*}" "${addr##*:}" "$tls" "$db" "$auth"
  else
    skip "chart[$name]: rendered env resolves with redis-sidecar config (no binary given)"
  fi
done
check "chart: the url form puts its password into the Secret" \
  grep -qF "$(printf %s 'url-secret-password-01' | base64)" "$tmp/ci-url.yaml"
check "chart: changing the password rolls the pod (checksum annotation)" sh -c '
  a=$("$0" template demo "$1" -f "$2" | grep checksum/redis-sidecar-secret)
  b=$("$0" template demo "$1" -f "$2" --set externalRedis.password=another-token-0123 | grep checksum/redis-sidecar-secret)
  [ -n "$a" ] && [ "$a" != "$b" ]' "$helm" "$chart" "$here/values/elasticache-tls-auth.yaml"
# sidecar_first_and_waits FILE: the regular sidecar is the pod's first container and its postStart
# runs `redis-sidecar wait` for the startup probe's whole budget (2s x 90); without the option it
# is neither.
sidecar_first_and_waits() {
  node --input-type=module -e '
    import { loadObjects, podSpec } from "'"$here"'/lib.mjs";
    const [file, hold] = process.argv.slice(1);
    const spec = podSpec(loadObjects(file).find((o) => o.kind === "Deployment"));
    const names = spec.containers.map((c) => c.name);
    const sc = spec.containers.find((c) => c.name === "redis-sidecar");
    const cmd = JSON.stringify(sc.lifecycle?.postStart?.exec?.command ?? null);
    const want = hold === "true"
      ? { first: "redis-sidecar", cmd: JSON.stringify(["redis-sidecar", "wait", "--timeout", "180s"]) }
      : { first: "demo", cmd: "null" };
    if (names[0] !== want.first || cmd !== want.cmd) {
      console.log(`containers ${names}, postStart ${cmd}; want first ${want.first}, postStart ${want.cmd}`);
      process.exit(1);
    }' "$1" "$2"
}
check "chart: holdApplicationUntilStarted lists the sidecar first, its postStart waits for /startupz" \
  sidecar_first_and_waits "$tmp/native-false-hold.yaml" true
check "chart: without it (native=false) the app comes first and nothing waits" \
  sidecar_first_and_waits "$tmp/native-false.yaml" false
check "chart: native sidecar refused on Kubernetes 1.28 with a message" sh -c '
  ! "$0" template demo "$1" -f "$2" --kube-version 1.28.0 2>&1 >/dev/null | grep -q . && exit 1
  "$0" template demo "$1" -f "$2" --kube-version 1.28.0 2>&1 | grep -q "sidecar.native=true needs Kubernetes >= 1.29"' \
  "$helm" "$chart" "$(values_file ci/in-cluster)"
check "chart: native=false renders on Kubernetes 1.28 (no preStop sleep there) and validates" sh -c '
  "$0" template demo "$1" -f "$2" --kube-version 1.28.0 >"$3" && ! grep -q "sleep:" "$3"' \
  "$helm" "$chart" "$here/values/native-false.yaml" "$tmp/k128.yaml"
check "chart: the Kubernetes 1.28 rendering is schema-valid" validate "$tmp/k128.yaml"
# cache_ports FILE WANT: the one NetworkPolicy's egress rule to the cache (the first, with the
# cache's CIDRs) allows exactly the TCP ports WANT ("6379,6380").
cache_ports() {
  node --input-type=module -e '
    import { loadObjects } from "'"$here"'/lib.mjs";
    const [file, want] = process.argv.slice(1);
    const np = loadObjects(file).filter((o) => o.kind === "NetworkPolicy");
    if (np.length !== 1) { console.log(`${np.length} NetworkPolicies rendered, want 1`); process.exit(1); }
    const rule = np[0].spec.egress[0];
    const got = rule.ports.map((p) => `${p.protocol}/${p.port}`).sort().join(",");
    const exp = want.split(",").map((p) => `TCP/${p}`).sort().join(",");
    if (got !== exp) { console.log(`the cache rule allows ${got}, want ${exp}`); process.exit(1); }' "$1" "$2"
}
check "chart: the NetworkPolicy allows the cache's port and extraCachePorts (Serverless: 6379, 6380)" \
  cache_ports "$tmp/ci-serverless.yaml" 6379,6380
check "chart: without extraCachePorts it allows only the cache's port" cache_ports "$tmp/all-on.yaml" 6379
check "chart: an extraCachePorts entry equal to the cache's port is not listed twice" sh -c '
  "$0" template demo "$1" -f "$2" --set "networkPolicy.extraCachePorts={6380,6379}" >"$3"' \
  "$helm" "$chart" "$(values_file ci/serverless)" "$tmp/np-dup.yaml"
check "chart: ... (6379, 6380)" cache_ports "$tmp/np-dup.yaml" 6379,6380
# demo_cli FILE WANT: the demo app's redis-cli line is WANT (cluster mode: -c follows MOVED/ASK).
demo_cli() {
  grep -qF -- "$2" "$1" || { echo "no \"$2\" in the demo:"; grep -F 'cli="' "$1"; return 1; }
}
check "chart: in cluster mode the demo follows redirects (redis-cli -c)" \
  demo_cli "$tmp/ci-serverless.yaml" 'cli="redis-cli -c -h 127.0.0.1 -p 6379"'
check "chart: with cluster mode off it does not" demo_cli "$tmp/native-false.yaml" 'cli="redis-cli -h 127.0.0.1 -p 6379"'
# same_env FILE: the helm test pod (`redis-sidecar check`) has the sidecar container's env.
same_env() {
  node --input-type=module -e '
    import { loadObjects, podSpec, findSidecar } from "'"$here"'/lib.mjs";
    const objects = loadObjects(process.argv[1]);
    const env = (c) => JSON.stringify(c.env);
    const pod = objects.find((o) => o.kind === "Pod");
    const sidecar = findSidecar(podSpec(objects.find((o) => o.kind === "Deployment"))).container;
    if (env(pod.spec.containers[0]) !== env(sidecar)) {
      console.log(`test pod env ${env(pod.spec.containers[0])}\nsidecar env ${env(sidecar)}`);
      process.exit(1);
    }' "$1"
}
check "chart: the helm test pod runs check with the sidecar's env (cluster settings included)" \
  same_env "$tmp/ci-serverless.yaml"

# NOTES.txt is rendered only by install/upgrade, which need a cluster: render it in a copy of the
# chart as a manifest (defined as a template, printed through --show-only).
notes_chart="$tmp/notes-chart"
cp -r "$chart" "$notes_chart"
{ echo '{{- define "test.notes" }}'; cat "$chart/templates/NOTES.txt"; echo '{{- end }}'; } >"$notes_chart/templates/_notes.tpl"
echo 'notes: {{ include "test.notes" . | toJson }}' >"$notes_chart/templates/notes.yaml"
check "chart: NOTES.txt tells how to run redis-sidecar check" sh -c '
  "$0" template demo "$1" -n demo -f "$2" --show-only templates/notes.yaml >"$3" &&
  grep -qF "exec deploy/demo-redis-sidecar -c redis-sidecar -- redis-sidecar check" "$3"' \
  "$helm" "$notes_chart" "$(values_file ci/in-cluster)" "$tmp/notes.txt"
check "chart: NOTES.txt tells to use a cluster client in cluster mode" sh -c '
  "$0" template demo "$1" -n demo -f "$2" --show-only templates/notes.yaml >"$3" &&
  grep -qF "Cluster mode is on: use a\ncluster client with 127.0.0.1:6379 as its seed" "$3" && grep -qF "local ports 7000-7199" "$3"' \
  "$helm" "$notes_chart" "$(values_file ci/serverless)" "$tmp/notes-serverless.txt"

# ---- chart: no upstream given (the chart's own values.yaml): lint and install fail, and every line
#      naming externalRedis.host is the one message (helm lint prints the schema's errors twice, once
#      for values.yaml and once for templates/; Helm's validator adds its generic if/then line).
no_host_message="- externalRedis: externalRedis.host (or externalRedis.url) is required"
# one_message FILE: the lines of FILE that name externalRedis.host are all exactly no_host_message.
one_message() {
  local lines
  lines=$(grep -F externalRedis.host "$1" | sed 's/^\[ERROR\] [^:]*: //' | sort -u)
  [ "$lines" = "$no_host_message" ] || { echo "lines naming externalRedis.host:"; echo "$lines"; echo "--- output:"; cat "$1"; return 1; }
}
check "chart: helm lint --strict without a host fails with one message naming externalRedis.host" sh -c '
  ! "$0" lint --strict "$1" --kube-version "$2" >"$3" 2>&1' "$helm" "$chart" "$kube_version" "$tmp/lint-no-host.txt"
check "chart: ... and that message is the only line naming it" one_message "$tmp/lint-no-host.txt"
# (helm install needs a cluster even with --dry-run=client; helm template renders and validates the
# values the same way install does.)
check "chart: helm template (what install renders) without a host fails" sh -c '
  ! "$0" template demo "$1" --kube-version "$2" >/dev/null 2>"$3"' "$helm" "$chart" "$kube_version" "$tmp/install-no-host.txt"
check "chart: ... with one line naming externalRedis.host" one_message "$tmp/install-no-host.txt"

# ---- chart: the packaged chart is the chart
pkg_dir="$tmp/package"
check "chart: helm package" sh -c '"$0" package "$1" -d "$2" >/dev/null' "$helm" "$chart" "$pkg_dir"
for f in "$chart"/ci/*-values.yaml; do
  check "chart: the package renders as the folder with ci/$(basename "$f")" sh -c '
    "$0" template demo "$1" -n demo -f "$3" --kube-version "$4" >"$5.dir" &&
    "$0" template demo "$2"/redis-sidecar-*.tgz -n demo -f "$3" --kube-version "$4" >"$5.pkg" &&
    diff -u "$5.dir" "$5.pkg"' "$helm" "$chart" "$pkg_dir" "$f" "$kube_version" "$tmp/pkg-$(basename "$f")"
done
# The image tag defaults to appVersion, so appVersion must be the version the binary reports.
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$chart/Chart.yaml")
if [ -n "$bin" ]; then
  check "chart: appVersion ($app_version) is the binary's version" sh -c '
    v=$("$0" version --output json | node -e "process.stdout.write(JSON.parse(require(\"fs\").readFileSync(0)).version)")
    [ "$v" = "$1" ] || { echo "redis-sidecar version: $v, Chart.yaml appVersion: $1"; exit 1; }' "$bin" "$app_version"
else
  skip "chart: appVersion is the binary's version (no binary given)"
fi
check "chart: the image tag defaults to appVersion" sh -c '
  "$0" template demo "$1" -f "$2" | grep -qF "image: \"redis-sidecar:$3\""' "$helm" "$chart" "$(values_file ci/in-cluster)" "$app_version"

# ---- chart: values the schema must refuse
for f in "$here"/refused/*.yaml; do
  check "chart refuses $(basename "$f" .yaml): $(sed -n 's/^# expect: //p' "$f")" refused "$f"
done

# ---- chart: the library-style include from a parent chart
parent="$tmp/library-parent"
cp -r "$here/library-parent" "$parent"
mkdir -p "$parent/charts"
cp -r "$chart" "$parent/charts/redis-sidecar"
check "library include: helm template of a parent chart" \
  sh -c '"$0" template rel "$1" --kube-version "$2" >"$3"' "$helm" "$parent" "$kube_version" "$tmp/library.yaml"
check "library include: objects valid against the schemas" validate "$tmp/library.yaml"
check "library include: assertions" node_ assert.mjs "$tmp/library.yaml" \
  --addr master.my-cache.abc123.use1.cache.amazonaws.com:6379 --native true --values "$parent/charts/redis-sidecar/values.yaml"
check "library include: the parent's pod mounts the sidecar's rendered Secret" sh -c '
  grep -q "name: rel-redis-sidecar-auth" "$0" && grep -q "^kind: Secret" "$0"' "$tmp/library.yaml"

# ---- deploy/: kustomize base and the ElastiCache overlay
for k in base:redis:6379 overlays/elasticache:master.my-cache.abc123.use1.cache.amazonaws.com:6379; do
  dir=${k%%:*} addr=${k#*:}
  out="$tmp/kustomize-${dir//\//-}.yaml"
  check "kustomize[$dir]: kubectl kustomize" sh -c 'kubectl kustomize "$0" >"$1"' "$repo/deploy/$dir" "$out"
  check "kustomize[$dir]: objects valid against the schemas" validate "$out"
  check "kustomize[$dir]: assertions" node_ assert.mjs "$out" --addr "$addr" --native true
done
check "kustomize[base]: the NetworkPolicy allows the cache's port" cache_ports "$tmp/kustomize-base.yaml" 6379
if [ -n "$bin" ]; then
  check "kustomize[overlays/elasticache]: env resolves with redis-sidecar config" \
    config_check "$tmp/kustomize-overlays-elasticache.yaml" master.my-cache.abc123.use1.cache.amazonaws.com 6379 true 0 yes
else
  skip "kustomize[overlays/elasticache]: env resolves with redis-sidecar config (no binary given)"
fi

[ "$skipped" -eq 0 ] || echo "($skipped skipped: not counted as passed)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
