# Sourced by the shell test runners (tests/helm/run.sh, tests/image/run.sh): one way to run a
# named check and count it. The caller sets $tmp (a scratch folder) before calling check.
passed=0
failed=0
# check NAME CMD…: runs CMD, prints "ok NAME", or "FAIL NAME" followed by the last 40 lines of
# its output.
check() {
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    sed 's/^/     | /' "$tmp/out" | tail -40
    failed=$((failed + 1))
  fi
}
