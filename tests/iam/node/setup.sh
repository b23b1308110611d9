#!/bin/sh
# Installs the pinned packages (package-lock.json) that fake_aws.mjs and its self-test import
# into this folder's node_modules.
# Idempotent: does nothing when node_modules already matches the lock file. Serialized with a
# lock so two test runs (two build dirs, ctest -j) never run npm ci here at the same time.
# Fails loudly (exit 1, a message naming the cause) when npm or the registry is unreachable:
# the IAM integration tests must fail then, not skip.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

if ! command -v npm >/dev/null 2>&1; then
    echo "setup.sh: npm is not installed; fake_aws.mjs (the IAM tests' AWS stand-in) cannot run" >&2
    exit 1
fi

exec 9>"$here/.setup.lock"
flock -w 300 9 || { echo "setup.sh: timed out waiting for another setup.sh" >&2; exit 1; }

stamp="$here/node_modules/.lock-sha256"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && [ -d node_modules/@smithy/signature-v4 ] && [ -d node_modules/@aws-crypto/sha256-js ] \
    && [ -d node_modules/@aws-sdk/client-sts ]; then
    exit 0
fi

if ! timeout 240 npm ci --silent --no-audit --no-fund >npm-ci.log 2>&1; then
    echo "setup.sh: 'npm ci' failed (is the npm registry reachable?); its output:" >&2
    cat npm-ci.log >&2
    exit 1
fi
rm -f npm-ci.log
echo "$want" >"$stamp"
