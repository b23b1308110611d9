#!/usr/bin/env bash
# Runs Redis's own Tcl test suite (`runtest` from a Redis source tree, external-server mode) three
# ways and compares them test by test:
#   baseline  directly against a plain redis-server on loopback
#   off/on    through redis-sidecar (plain TCP upstream to another such redis-server), with
#             REDIS_SIDECAR_MULTIPLEX=off and/or on
# A test that passes directly but fails (or never reports) through the sidecar is a regression,
# unless tests/redis_suite/expected-differences.txt lists it. Units with a regression are run once
# more through the sidecar (RETRIES); a test that passes on a retry is reported as flaky, not as
# a failure.
#
# usage: tests/redis_suite/run.sh [REDIS_SRC]       (see README.md beside this file)
# env:   REDIS_SRC          Redis source tree with runtest and tests/ (or the first argument)
#        REDIS_SIDECAR_BIN  default: build/redis-sidecar of this repo
#        REDIS_SERVER_BIN   default: redis-server from PATH (must match the source's version)
#        MULTIPLEX          off | on | both            (default: both)
#        UNITS              space-separated units (unit/type/list ...), "all" (every unit of the
#                           source's test_helper.tcl) or "default" (the list below)
#        TAGS               runtest --tags value       (default: "-needs:repl")
#        SUITE_ARGS         more runtest arguments     (default: --singledb)
#        UNIT_TIMEOUT       seconds per unit run (default 600); STALL_TIMEOUT: runtest --timeout (300)
#        RETRIES            re-runs of a unit that shows regressions (default 1)
#        ALLOW_LIST         default: expected-differences.txt beside this script
#        OUT_DIR            logs and result tables (default: a new /tmp/redis-suite-run.XXXXXX)
#        SIDECAR_ENV        extra VAR=value words for the sidecar's environment
#        NICE               nice level for everything started (default 10)
# Exit: 0 no regression outside the allow-list; 1 regressions; 2 usage / setup error.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

src=${1:-${REDIS_SRC:-}}
bin=${REDIS_SIDECAR_BIN:-$repo/build/redis-sidecar}
server_bin=${REDIS_SERVER_BIN:-redis-server}
modes=${MULTIPLEX:-both}
units_spec=${UNITS:-default}
tags=${TAGS:--needs:repl}
suite_args=${SUITE_ARGS:---singledb}
unit_timeout=${UNIT_TIMEOUT:-600}
stall_timeout=${STALL_TIMEOUT:-300}
retries=${RETRIES:-1}
allow=${ALLOW_LIST:-$here/expected-differences.txt}
nice_level=${NICE:-10}

# Units that run most of their tests against an external server, in a few minutes each on two
# cores (the complete external-mode suite also works: UNITS=all).
default_units="unit/printver unit/dump unit/auth unit/protocol unit/keyspace unit/scan unit/info
unit/info-command unit/type/string unit/type/incr unit/type/list unit/type/list-2 unit/type/list-3
unit/type/set unit/type/zset unit/type/hash unit/type/stream unit/type/stream-cgroups unit/sort
unit/expire unit/other unit/multi unit/quit unit/acl unit/acl-v2 unit/latency-monitor
unit/pubsub unit/pubsubshard unit/slowlog unit/scripting unit/functions unit/maxmemory
unit/introspection unit/introspection-2 unit/limits unit/obuf-limits unit/bitops unit/bitfield
unit/geo unit/memefficiency unit/hyperloglog unit/lazyfree unit/wait unit/pause unit/querybuf
unit/tracking unit/networking unit/client-eviction unit/replybufsize"

die() {
  echo "run.sh: $*" >&2
  exit 2
}
[ -n "$src" ] || die "give the Redis source tree as the argument or REDIS_SRC"
src=$(cd "$src" 2>/dev/null && pwd) || die "no such directory: ${1:-$REDIS_SRC}"
if [ ! -f "$src/tests/test_helper.tcl" ] || [ ! -f "$src/runtest" ]; then
  die "$src has no runtest / tests/test_helper.tcl"
fi
[ -x "$bin" ] || die "sidecar binary missing: $bin (build it with scripts/build.sh)"
server_bin=$(command -v "$server_bin") || die "redis-server not found (REDIS_SERVER_BIN)"
command -v redis-cli >/dev/null || die "redis-cli not found"
command -v tclsh8.6 >/dev/null || command -v tclsh8.5 >/dev/null || command -v tclsh8.7 >/dev/null ||
  die "runtest needs tclsh8.5/8.6/8.7 (apt-get install tcl)"
case $modes in
off | on) ;;
both) modes="off on" ;;
*) die "MULTIPLEX must be off, on or both" ;;
esac
for n in "$unit_timeout" "$stall_timeout" "$retries" "$nice_level"; do
  [[ $n =~ ^[0-9]+$ ]] || die "not a number: $n"
done

if [ "$units_spec" = all ]; then
  units=$(cd "$src" && TERM=dumb tclsh tests/test_helper.tcl --list-tests) || die "runtest --list-tests failed"
elif [ "$units_spec" = default ]; then
  units=$default_units
else
  units=$units_spec
fi
units=$(echo "$units" | tr -s ' \n' '\n' | sed '/^$/d')
for u in $units; do
  [ -f "$src/tests/$u.tcl" ] || die "no such unit: $u ($src/tests/$u.tcl)"
done

# A few units exec src/redis-server, src/redis-cli ... of the source tree (normally built there);
# link the installed binaries of the same version when the tree was not built.
for b in redis-server redis-cli redis-benchmark redis-check-aof redis-check-rdb; do
  if [ ! -e "$src/src/$b" ]; then
    p=$(command -v "$b") && ln -s "$p" "$src/src/$b"
  fi
done

out=${OUT_DIR:-$(mktemp -d /tmp/redis-suite-run.XXXXXX)}
mkdir -p "$out" || die "cannot create $out"
out=$(cd "$out" && pwd)

# ---------------------------------------------------------------- processes, cleaned up on exit
pids=()
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
  done
  sleep 0.3
  for p in "${pids[@]}"; do
    kill -KILL "$p" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM
forget_pid() {
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}
stop_pid() {
  local _
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 50); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  forget_pid "$1"
}

taken_ports=" "
# free_port: a loopback port nothing listens on, not handed out before by this script.
free_port() {
  local _ p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 30000))
    case $taken_ports in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      taken_ports="$taken_ports$p "
      echo "$p"
      return 0
    fi
  done
  return 1
}

# wait_ping PORT [TRIES]: PONG within TRIES (default 50) attempts of at most 2 s each.
wait_ping() {
  local _
  for _ in $(seq "${2:-50}"); do
    [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  return 1
}

server_pid=
server_port=
# start_server DIR: a fresh plain redis-server on a free loopback port (sets server_pid/port).
start_server() {
  local dir=$1 _
  mkdir -p "$dir"
  for _ in 1 2 3; do
    server_port=$(free_port) || return 1
    (cd "$dir" && exec nice -n "$nice_level" "$server_bin" --port "$server_port" --bind 127.0.0.1 \
      --save '' --appendonly no --dir "$dir" --enable-debug-command yes \
      --enable-protected-configs yes --enable-module-command yes --daemonize no) \
      >>"$dir/redis.log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    wait_ping "$server_port" && return 0
    stop_pid "$server_pid"
  done
  return 1
}

sidecar_pid=
sidecar_port=
# start_sidecar DIR MODE: the sidecar in front of server_port (sets sidecar_pid/port).
start_sidecar() {
  local dir=$1 mode=$2 _ http extra=()
  mkdir -p "$dir"
  # shellcheck disable=SC2206
  [ -n "${SIDECAR_ENV:-}" ] && extra=(${SIDECAR_ENV})
  for _ in 1 2 3; do
    sidecar_port=$(free_port) || return 1
    http=$(free_port) || return 1
    env REDIS_ADDR="127.0.0.1:$server_port" REDIS_SIDECAR_LISTEN="127.0.0.1:$sidecar_port" \
      REDIS_SIDECAR_HTTP_ADDR="127.0.0.1:$http" REDIS_SIDECAR_LOG_FORMAT=text \
      REDIS_SIDECAR_MULTIPLEX="$mode" REDIS_SIDECAR_CLUSTER=off "${extra[@]}" \
      nice -n "$nice_level" "$bin" run >>"$dir/sidecar.log" 2>&1 &
    sidecar_pid=$!
    pids+=("$sidecar_pid")
    wait_ping "$sidecar_port" && return 0
    stop_pid "$sidecar_pid"
  done
  return 1
}

# ------------------------------------------------------------------------- one unit, parsed
# run_unit TARGET_PORT UNIT LOG: runs one unit in external mode against TARGET_PORT.
run_unit() {
  local port=$1 unit=$2 log=$3 rc rpid
  local args=(--host 127.0.0.1 --port "$port" --clients 1 --durable --timeout "$stall_timeout"
    --single "$unit")
  [ -n "$tags" ] && args+=(--tags "$tags")
  # shellcheck disable=SC2206
  args+=($suite_args)
  (cd "$src" && TERM=dumb exec nice -n "$nice_level" timeout -k 10 "$unit_timeout" ./runtest "${args[@]}") \
    >"$log" 2>&1 </dev/null &
  rpid=$!
  pids+=("$rpid")
  wait "$rpid"
  rc=$?
  forget_pid "$rpid"
  echo "### runtest exit $rc" >>"$log"
}

# parse LOG UNIT: prints "UNIT<TAB>status<TAB>test name" per test line (ok / err), plus a
# status "aborted" line when the unit did not end normally (exception, stall, timeout).
parse() {
  awk -v unit="$2" '
    BEGIN { OFS = "\t"; ended = 0 }
    /^\[ok\]: / { n = substr($0, 7); sub(/ \([0-9]+ ms\)$/, "", n); print unit, "ok", n; next }
    /^\[err\]: / {
      n = substr($0, 8)
      if (!sub(/ in tests\/[^ ]*\.tcl$/, "", n)) n = "<error outside a test> " n
      print unit, "err", n; next
    }
    /^\[exception\]: / { print unit, "aborted", "exception: " substr($0, 14); next }
    /^\[TIMEOUT\]/ { print unit, "aborted", "runtest stall timeout"; next }
    /^### runtest exit / { rc = $4 }
    /All tests passed without errors|The following tests failed/ { ended = 1 }
    END { if (!ended) print unit, "aborted", "runtest exit " rc " before the end" }
  ' "$1"
}

# ----------------------------------------------------------------------------- the runs
declare -A secs
# run_target NAME MODE(direct|off|on) UNITS...: one pass over the units; results in
# $out/NAME/results.tsv. Every unit gets a fresh redis-server (and sidecar): a test that fails
# half-way in external mode can leave a setting behind (unit/type/set leaves rdb-key-save-delay
# at 2^31, and the next DEBUG RELOAD would sleep for ever).
run_target() {
  local name=$1 mode=$2 dir=$out/$1 u log t0 t1 start port
  shift 2
  mkdir -p "$dir/logs"
  : >"$dir/results.tsv"
  start=$SECONDS
  for u in "$@"; do
    log=$dir/logs/${u//\//_}.log
    start_server "$dir/server" || die "$name: redis-server did not start (see $dir/server/redis.log)"
    port=$server_port
    if [ "$mode" != direct ]; then
      start_sidecar "$dir/sidecar" "$mode" ||
        die "$name: redis-sidecar did not start (see $dir/sidecar/sidecar.log)"
      port=$sidecar_port
    fi
    echo "=== $u: redis-server :$server_port, target :$port" >>"$dir/server/redis.log"
    [ "$mode" != direct ] && echo "=== $u: sidecar :$sidecar_port -> :$server_port" >>"$dir/sidecar/sidecar.log"
    t0=$SECONDS
    run_unit "$port" "$u" "$log"
    t1=$SECONDS
    parse "$log" "$u" >>"$dir/results.tsv"
    # A crash of the upstream or the sidecar (or one that stopped answering) is recorded.
    if ! kill -0 "$server_pid" 2>/dev/null || ! wait_ping "$server_port" 30; then
      printf '%s\taborted\tredis-server died or stopped answering during this unit\n' "$u" >>"$dir/results.tsv"
    elif [ "$mode" != direct ] && { ! kill -0 "$sidecar_pid" 2>/dev/null || ! wait_ping "$sidecar_port" 30; }; then
      printf '%s\taborted\tredis-sidecar died or stopped answering during this unit\n' "$u" >>"$dir/results.tsv"
    fi
    printf '%-14s %-28s %4ss  %s\n' "$name" "$u" $((t1 - t0)) \
      "$(awk -F'\t' -v u="$u" '$1==u && $2=="ok"{o++} $1==u && $2=="err"{f++} $1==u && $2=="aborted"{a=a "; " $3}
          END{printf "%d ok, %d failed%s", o, f, a}' "$dir/results.tsv")"
    [ "$mode" != direct ] && stop_pid "$sidecar_pid"
    stop_pid "$server_pid"
  done
  secs[$name]=$((SECONDS - start))
}

# aggregate TSV: "unit<TAB>name<TAB>ok|err" per distinct test (err if any occurrence failed).
aggregate() {
  awk -F'\t' 'BEGIN{OFS="\t"} $2=="ok"||$2=="err" { k=$1 "\t" $3; if (!(k in s) || $2=="err") s[k]=$2 }
    END { for (k in s) print k, s[k] }' "$1" | sort
}

# allowed MODE NAME: the allow-list names the test (for this mode or for both).
# Line format: "[on] name # reason", "[off] name # reason" or "name # reason" (the last " # "
# starts the reason; blank lines and lines starting with # are ignored).
allowed() {
  [ -f "$allow" ] || return 1
  awk -v mode="$1" -v name="$2" '
    /^[ \t]*(#|$)/ { next }
    {
      line = $0; m = "both"
      if (match(line, /^\[(on|off)\] /)) { m = substr(line, 2, RLENGTH - 3); line = substr(line, RLENGTH + 1) }
      cut = 0
      for (i = length(line) - 2; i >= 1; i--) if (substr(line, i, 3) == " # ") { cut = i; break }
      if (cut) line = substr(line, 1, cut - 1)
      gsub(/^[ \t]+|[ \t]+$/, "", line)
      if (line == name && (m == "both" || m == mode)) { found = 1; exit }
    }
    END { exit found ? 0 : 1 }' "$allow"
}

# regressions BASE.agg OTHER.agg: "unit<TAB>name<TAB>status" for tests ok in BASE, not ok in
# OTHER (status err, or missing: the test never reported).
regressions() {
  awk -F'\t' 'BEGIN{OFS="\t"} NR==FNR { o[$1 "\t" $2] = $3; next }
    $3=="ok" { k = $1 "\t" $2; print $1, $2, (k in o) ? o[k] : "missing" }' "$2" "$1" |
    awk -F'\t' 'BEGIN{OFS="\t"} $3!="ok"'
}

counts() { # counts TSV: "N passed, N failed"
  awk -F'\t' '$2=="ok"{o++} $2=="err"||$2=="aborted"{f++} END{printf "%d passed, %d failed", o, f}' "$1"
}

echo "Redis suite: $src"
echo "sidecar:     $bin"
echo "server:      $server_bin ($("$server_bin" --version | awk '{print $3}'))"
echo "modes:       $modes; tags: ${tags:-none}; args: $suite_args; units: $(echo "$units" | wc -l)"
echo "output:      $out"
echo

# shellcheck disable=SC2086
run_target baseline direct $units
aggregate "$out/baseline/results.tsv" >"$out/baseline/agg.tsv"

status=0
summary=()
for mode in $modes; do
  name=mux-$mode
  # shellcheck disable=SC2086
  run_target "$name" "$mode" $units
  aggregate "$out/$name/results.tsv" >"$out/$name/agg.tsv"
  regressions "$out/baseline/agg.tsv" "$out/$name/agg.tsv" >"$out/$name/regressions.tsv"
  : >"$out/$name/flaky.tsv"

  # Retry the units with regressions, in both places, to tell flaky tests from real failures.
  for r in $(seq "$retries"); do
    [ -s "$out/$name/regressions.tsv" ] || break
    retry_units=$(cut -f1 "$out/$name/regressions.tsv" | sort -u)
    echo "retry $r of: $(echo "$retry_units" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    run_target "$name-retry$r" "$mode" $retry_units
    aggregate "$out/$name-retry$r/results.tsv" >"$out/$name-retry$r/agg.tsv"
    : >"$out/$name/flaky.tsv.new"
    : >"$out/$name/regressions.tsv.new"
    while IFS=$'\t' read -r u t st; do
      again=$(awk -F'\t' -v u="$u" -v t="$t" '$1==u && $2==t {print $3}' "$out/$name-retry$r/agg.tsv")
      if [ "$again" = ok ]; then
        printf '%s\t%s\t%s\n' "$u" "$t" "$st" >>"$out/$name/flaky.tsv.new"
      else
        printf '%s\t%s\t%s\n' "$u" "$t" "$st" >>"$out/$name/regressions.tsv.new"
      fi
    done <"$out/$name/regressions.tsv"
    cat "$out/$name/flaky.tsv.new" >>"$out/$name/flaky.tsv"
    mv "$out/$name/regressions.tsv.new" "$out/$name/regressions.tsv"
    rm -f "$out/$name/flaky.tsv.new"
  done

  echo
  echo "== multiplex $mode: $(counts "$out/$name/results.tsv") (baseline: $(counts "$out/baseline/results.tsv"))"
  n_reg=0
  n_allowed=0
  while IFS=$'\t' read -r u t st; do
    if allowed "$mode" "$t"; then
      n_allowed=$((n_allowed + 1))
      echo "   expected  [$st] $u: $t"
    else
      n_reg=$((n_reg + 1))
      echo "   FAIL      [$st] $u: $t"
    fi
  done <"$out/$name/regressions.tsv"
  if [ -s "$out/$name/flaky.tsv" ]; then
    while IFS=$'\t' read -r u t st; do
      echo "   flaky     [$st, passed on retry] $u: $t"
    done <"$out/$name/flaky.tsv"
  fi
  # Aborted units (a crash, a stall) are listed too: their missing tests count above.
  awk -F'\t' '$2=="aborted"{print "   aborted   " $1 ": " $3}' "$out/$name/results.tsv"
  summary+=("multiplex $mode: $n_reg regressions, $n_allowed expected differences, $(wc -l <"$out/$name/flaky.tsv") flaky (${secs[$name]}s)")
  [ "$n_reg" -gt 0 ] && status=1
done

echo
echo "baseline (direct): $(counts "$out/baseline/results.tsv") (${secs[baseline]}s)"
for s in "${summary[@]}"; do echo "$s"; done
echo "logs: $out"
exit $status
