#!/bin/sh
# Installs the pinned packages of a test folder (its package-lock.json) into its node_modules:
#   sh tests/support/npm-ci.sh DIR "WHO NEEDS THEM" MODULE...
# Idempotent: does nothing when node_modules matches the lock file and holds every MODULE.
# Serialized with a lock so two test runs (two build dirs, ctest -j) never run npm ci in DIR at
# the same time. Fails loudly (exit 1, a message naming the cause) when npm or the registry is
# unreachable: the tests that need the packages must fail then, not skip.
set -eu
here=$(cd "$1" && pwd)
who=$2
shift 2
cd "$here"

if ! command -v npm >/dev/null 2>&1; then
    echo "setup.sh: npm is not installed; $who cannot run" >&2
    exit 1
fi

exec 9>"$here/.setup.lock"
flock -w 300 9 || { echo "setup.sh: timed out waiting for another setup.sh" >&2; exit 1; }

stamp="$here/node_modules/.lock-sha256"
want=$(sha256sum package-lock.json | cut -d' ' -f1)
installed=yes
for module in "$@"; do
    [ -d "node_modules/$module" ] || installed=no
done
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ "$installed" = yes ]; then
    exit 0
fi

if ! timeout 240 npm ci --silent --no-audit --no-fund >npm-ci.log 2>&1; then
    echo "setup.sh: 'npm ci' failed (is the npm registry reachable?); its output:" >&2
    cat npm-ci.log >&2
    exit 1
fi
rm -f npm-ci.log
echo "$want" >"$stamp"
