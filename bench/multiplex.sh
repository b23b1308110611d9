#!/usr/bin/env bash
# Connection multiplexing (issue 16): redis-sidecar with REDIS_SIDECAR_MULTIPLEX off and on,
# against redis-benchmark's own TLS and haproxy, in one run, on this machine.
#
#   bash bench/multiplex.sh [--quick] [--rounds N] [--setups LIST] [--workloads LIST]
#                           [--binary PATH | --commit REV] [--idle N] [--idle-silent]
#                           [--nice N] [--jobs N] [--json FILE] [--markdown FILE] [--keep-work]
#
# --quick        1 round, small counts, 1,000 idle connections (about 2-3 minutes after the build)
# --rounds N     rounds (default 3; 1 with --quick); setups rotate from round to round
# --setups LIST  comma-separated, of direct,haproxy,sidecar-off,sidecar-on (default: all four;
#                sidecar-on is left out, with a note, when the binary has no
#                REDIS_SIDECAR_MULTIPLEX setting; named explicitly, it is an error then)
# --workloads L  comma-separated, of steady,c1000,idle,mixed,pipelined,bigvalue (default: all)
# --binary PATH  benchmark that redis-sidecar, no build
# --commit REV   build that commit (git archive, so nobody's uncommitted edits) into
#                build-bench-mux/<sha>/; default: the working tree into build-bench-mux/tree/
#                (Release, tests off, as deploy/Dockerfile builds it), at nice 10
# --idle N       idle connections in the idle workload (default 9,900, 1,000 with --quick;
#                lowered to fit the file-descriptor hard limit: a proxy holds two fds each)
# --idle-silent  idle connections send nothing (default: each sends one PING after connecting,
#                as an application's pooled connection that has been used once and then waits)
# --nice N       run the measurements at that niceness (the build always runs at nice 10)
# --jobs N       build parallelism (default 2)
#
# One TLS redis-server (requirepass) on loopback; four ways to reach it:
#   direct       redis-benchmark --tls --cacert -a (the client does TLS and AUTH)
#   haproxy      haproxy mode tcp, "ssl verify required ca-file … verifyhost localhost"
#   sidecar-off  redis-sidecar, REDIS_SIDECAR_MULTIPLEX=off (one upstream connection per client)
#   sidecar-on   redis-sidecar, REDIS_SIDECAR_MULTIPLEX=on, REDIS_SIDECAR_SHARED_CONNECTIONS=2
# Each sidecar measurement runs on a fresh sidecar (started after the baseline is read, so the
# upstream connections it opens are all counted and none is left over from another workload),
# with REDIS_MAX_CONNECTIONS = idle + 300 (room for the off case: one upstream connection per
# client that has sent a command), REDIS_SIDECAR_MAX_CLIENTS = idle + 500 and
# REDIS_CONNECTION_TIMEOUT = 30s (the pool opens at most 50 connections a second, so 1,000
# clients arriving at once wait up to 20 s for theirs the first time).
#
# Workloads (redis-benchmark 7.0, random keys -r 100000, 3-byte values; each after a short
# warm-up of the same shape on the same instance):
#   steady     -c 50 -t get,set
#   c1000      -c 1000 -t get,set
#   idle       N idle connections held open (one PING each, unless --idle-silent), then
#              -c 100 -t get,set beside them
#   mixed      -c 200 -t get,set, beside 10 clients doing MULTI/INCR/EXEC (100 a second each,
#              the INCR results checked), 5 clients in BLPOP loops and one pusher (50 LPUSH a
#              second per list); transaction latency and BLPOP delivery latency reported too
#   pipelined  -c 50 -P 16 -t get
#   bigvalue   -c 50 -t get beside one client reading a 50 MB value back to back (GET only: the
#              value is SET by another connection first, so with multiplexing the reader shares
#              a connection instead of pinning for a large command): the small GETs' p99 is the
#              head-of-line cost of a large reply, shared vs dedicated
# Reported (bench/multiplex_report.py): medians over rounds of req/s, p50/p99/p99.9 (from
# redis-benchmark's percentile distribution), the upstream connections the server sees (INFO
# clients every 200 ms during the run: max minus the baseline before the setup started, the
# sampler's own connection excluded), and ratios vs direct and vs haproxy.
# Every load command is bounded in count and by `timeout`; every wait has a deadline.
# Everything started here is stopped on exit (trap) and checked for by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
orig_args="$*"

quick=0
rounds=""
setups_arg=""
workloads_arg=""
binary=""
commit=""
idle_arg=""
idle_ping=1
niceness=0
jobs=2
json_out=""
md_out=""
keep_work=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    --setups) setups_arg=$2; shift ;;
    --workloads) workloads_arg=$2; shift ;;
    --binary) binary=$2; shift ;;
    --commit) commit=$2; shift ;;
    --idle) idle_arg=$2; shift ;;
    --idle-silent) idle_ping=0 ;;
    --nice) niceness=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    --json) json_out=$2; shift ;;
    --markdown) md_out=$2; shift ;;
    --keep-work) keep_work=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "bench/multiplex.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$binary" ] && [ -n "$commit" ] && { echo "bench/multiplex.sh: --binary or --commit, not both" >&2; exit 2; }

# ---- sizes: bounded counts everywhere; --quick is a smoke run ---------------------------------
if [ "$quick" = 1 ]; then
  rounds=${rounds:-1}
  n_steady=20000; n_c1000=20000; n_active=20000; n_mixed=20000; n_pipe=500000; n_big=30000
  n_warm=3000; idle_target=${idle_arg:-1000}
else
  rounds=${rounds:-3}
  n_steady=80000; n_c1000=100000; n_active=60000; n_mixed=60000; n_pipe=1000000; n_big=100000
  n_warm=10000; idle_target=${idle_arg:-9900}
fi
active_clients=100
mixed_clients=200
tx_clients=10; tx_rate=100        # MULTI/INCR/EXEC per second, per client
blpop_clients=5; push_rate=50     # LPUSH per second, per list
big_bytes=$((50 * 1000 * 1000))   # the bigvalue workload's value
keyspace=100000
cmd_timeout=180                   # seconds, any single load command
sample_ms=200
sample_s=$(awk -v m="$sample_ms" 'BEGIN {print m / 1000}')

all_setups=(direct haproxy sidecar-off sidecar-on)
all_workloads=(steady c1000 idle mixed pipelined bigvalue)
split_list() { tr ',' ' ' <<< "$1"; }
if [ -n "$setups_arg" ]; then read -r -a setups <<< "$(split_list "$setups_arg")"; else setups=("${all_setups[@]}"); fi
if [ -n "$workloads_arg" ]; then read -r -a workloads <<< "$(split_list "$workloads_arg")"; else workloads=("${all_workloads[@]}"); fi
for s in "${setups[@]}"; do
  case " ${all_setups[*]} " in *" $s "*) ;; *) echo "bench/multiplex.sh: unknown setup $s" >&2; exit 2 ;; esac
done
for w in "${workloads[@]}"; do
  case " ${all_workloads[*]} " in *" $w "*) ;; *) echo "bench/multiplex.sh: unknown workload $w" >&2; exit 2 ;; esac
done

python=/usr/bin/python3
[ -x "$python" ] || python=python3
for tool in redis-server redis-benchmark redis-cli haproxy openssl curl cmake git timeout "$python"; do
  command -v "$tool" >/dev/null || { echo "bench/multiplex.sh: $tool is missing (bash scripts/install-deps.sh; apt-get install haproxy)" >&2; exit 2; }
done
rb_version=$(redis-benchmark --version | awk '{print $2}')
case "$rb_version" in
  [0-6].*) echo "bench/multiplex.sh: redis-benchmark $rb_version; the percentile output needs 7.0 or later" >&2; exit 2 ;;
esac

log() { printf '\033[1m[mux-bench %s]\033[0m %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- file descriptors: a proxy holds two per idle connection (client side and upstream) -------
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then hard=1048576; fi
ulimit -n "$hard"
idle_conns=$idle_target
fd_room=$(( (hard - 600) / 2 ))
if [ "$idle_conns" -gt "$fd_room" ]; then
  idle_conns=$fd_room
  log "ulimit -Hn is $hard: idle connections lowered from $idle_target to $idle_conns (a proxy needs 2 fds each)"
fi
[ "$idle_conns" -ge 1 ] || { echo "bench/multiplex.sh: ulimit -Hn $hard leaves no room for idle connections" >&2; exit 2; }
log "nofile: soft limit raised to $(ulimit -Sn) (hard $hard); idle connections: $idle_conns ($( [ "$idle_ping" = 1 ] && echo 'one PING each' || echo silent))"
max_connections=$((idle_conns + active_clients + 200))
# haproxy wants 2 x maxconn + a few fds and refuses to start beyond the hard limit: the idle
# workload's peak (idle + 100 active) and some room, well within (hard - 600) / 2 + 150.
haproxy_maxconn=$((idle_conns + active_clients + 50))
max_clients=$((idle_conns + 500))

# ---- the binary ---------------------------------------------------------------------------------
# As deploy/Dockerfile builds it: Release, tests off. At nice 10: others may be compiling.
binary_note=""
build_one() {  # build_one SOURCE BUILD COMMIT: the redis-sidecar target
  local src=$1 build=$2 sha=$3 blog
  blog=$(mktemp /tmp/redis-sidecar-mux-build.XXXXXX)
  if ! { nice -n 10 cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DREDIS_SIDECAR_TESTS=OFF \
           -DREDIS_SIDECAR_GIT_COMMIT="$sha" \
         && nice -n 10 cmake --build "$build" --target redis-sidecar -j "$jobs"; } >"$blog" 2>&1; then
    grep -m 5 -E 'error|FAILED' "$blog" >&2 || true
    rm -f "$blog"
    return 1
  fi
  rm -f "$blog"
}
if [ -n "$binary" ]; then
  binary_note="given: $binary"
elif [ -n "$commit" ]; then
  sha=$(git rev-parse --verify "$commit^{commit}") || { echo "bench/multiplex.sh: no commit $commit" >&2; exit 2; }
  short=${sha:0:12}
  dir=build-bench-mux/$short
  if [ ! -x "$dir/build/redis-sidecar" ]; then
    log "building commit $short into $dir/build (Release, tests off, nice 10, -j $jobs)"
    rm -rf "$dir/src"; mkdir -p "$dir/src"
    git archive "$sha" | tar -x -C "$dir/src"
    build_one "$dir/src" "$dir/build" "$short" || { echo "bench/multiplex.sh: commit $short does not build" >&2; exit 1; }
  fi
  binary=$dir/build/redis-sidecar
  subject=$(git log -1 --format=%s "$sha")
  [ "${#subject}" -le 60 ] || subject="${subject:0:60}…"
  binary_note="commit $short: $subject"
else
  log "building the working tree into build-bench-mux/tree (Release, tests off, nice 10, -j $jobs)"
  head_short=$(git rev-parse --short=12 HEAD)
  if build_one . build-bench-mux/tree "$head_short"; then
    binary_note="working tree at $head_short$(git diff --quiet HEAD -- src include CMakeLists.txt 2>/dev/null || echo ' + uncommitted changes in src/include')"
  else
    # Others may be mid-change in src/: benchmark the last binary that did build, and say so.
    [ -x build-bench-mux/tree/redis-sidecar ] || { echo "bench/multiplex.sh: the working tree does not build (try --commit HEAD)" >&2; exit 1; }
    log "the working tree does not build; using the existing build-bench-mux/tree/redis-sidecar"
    binary_note="existing build-bench-mux/tree/redis-sidecar of $(date -r build-bench-mux/tree/redis-sidecar '+%F %T'), the tree did not build"
  fi
  binary="build-bench-mux/tree/redis-sidecar"
fi
[ -x "$binary" ] || { echo "bench/multiplex.sh: $binary is not an executable" >&2; exit 2; }

if [ "$niceness" != 0 ]; then
  renice -n "$niceness" -p $$ >/dev/null || { echo "bench/multiplex.sh: cannot renice to $niceness" >&2; exit 2; }
fi

# ---- processes ---------------------------------------------------------------------------------
work=$(mktemp -d /tmp/redis-sidecar-mux-bench.XXXXXX)
# A private copy: others may relink the binary while this runs.
cp "$binary" "$work/redis-sidecar"
bin=$work/redis-sidecar
pids=()
untrack() {  # untrack PID: a process this script has stopped and reaped
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}
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
  if [ -n "$left" ]; then echo "bench/multiplex.sh: still running:$left" >&2; rc=1; fi
  for p in $(pgrep -P $$ || true); do
    case "$(ps -o comm= -p "$p" 2>/dev/null)" in
      redis-server|haproxy|redis-sidecar|redis-benchmark|redis-cli|python3|timeout)
        echo "bench/multiplex.sh: child left: $p" >&2; rc=1 ;;
    esac
  done
  if [ "$keep_work" = 1 ]; then echo "bench/multiplex.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768+)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! grep -qx "$p" "$work/ports" 2>/dev/null; then
      echo "$p" >> "$work/ports"; echo "$p"; return
    fi
  done
  echo "no free port" >&2; exit 1
}
wait_for() {  # wait_for SECONDS CMD...: polls CMD every 20 ms
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# ---- the clients redis-benchmark cannot be: idle holder, mixed-workload clients, sampler ------
cat > "$work/muxload.py" <<'PYEOF'
"""bench/multiplex.sh's own clients (standard library only, blocking sockets, threads).

  muxload.py sample  --out FILE [--interval 0.2] --seconds S   INFO clients, one line per sample
  muxload.py hold    --conns N [--ping] [--parallel 64] --ready FILE --seconds S
  muxload.py mixed   --prefix P --ready FILE --out FILE --seconds S [...]
  muxload.py bigread --prefix P --big-bytes N --ready FILE --out FILE --seconds S
Connection options: --port P [--tls --cacert F --sni NAME] [--auth PASSWORD]. Every socket
operation has a 10 s timeout; every run ends at --seconds or at SIGTERM.
"""
import argparse
import json
import math
import signal
import socket
import ssl
import sys
import threading
import time

TIMEOUT = 10.0
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())


class RespError(Exception):
    pass


def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, o, ctx):
        s = socket.create_connection(("127.0.0.1", o.port), timeout=TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx is not None:
            s = ctx.wrap_socket(s, server_hostname=o.sni)
        self.sock = s
        self.buf = b""
        if o.auth:
            r = self.call("AUTH", o.auth)
            if isinstance(r, RespError):
                raise r

    def _more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._more()

    def reply(self):
        """One RESP2 reply; an error reply is returned as a RespError, not raised."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return rest
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._more()
            value, self.buf = self.buf[:n], self.buf[n + 2:]
            return value
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ConnectionError("unexpected reply type %r" % kind)

    def call(self, *args):
        self.sock.sendall(command(*args))
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def tls_context(o):
    if not o.tls:
        return None
    ctx = ssl.create_default_context(cafile=o.cacert)
    ctx.check_hostname = True
    return ctx


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, math.ceil(q * len(xs)) - 1))]


def sample(o):
    """connected_clients minus this connection, every --interval, until the deadline or SIGTERM."""
    ctx = tls_context(o)
    end = time.monotonic() + o.seconds
    conn = None
    with open(o.out, "a", buffering=1) as out:
        nxt = time.monotonic()
        while not stop.is_set() and time.monotonic() < end:
            try:
                if conn is None:
                    conn = Conn(o, ctx)
                info = conn.call("INFO", "clients")
                if isinstance(info, RespError):
                    raise info
                for line in info.decode().splitlines():
                    if line.startswith("connected_clients:"):
                        out.write("%d %d\n" % (time.time() * 1000, int(line.split(":")[1]) - 1))
            except (OSError, ConnectionError, RespError, ValueError) as e:
                print("sampler: %s" % e, file=sys.stderr)
                if conn is not None:
                    conn.close()
                conn = None
            nxt += o.interval
            stop.wait(max(0.0, nxt - time.monotonic()))


def hold(o):
    """Opens --conns connections (--parallel at a time), one PING each with --ping, then holds them."""
    ctx = tls_context(o)
    t0 = time.monotonic()
    end = t0 + o.seconds
    conns, errors = [], []
    lock = threading.Lock()
    todo = iter(range(o.conns))

    def opener():
        while not stop.is_set() and time.monotonic() < end:
            with lock:
                if next(todo, None) is None:
                    return
            try:
                c = Conn(o, ctx)
                if o.ping:
                    r = c.call("PING")
                    if r != b"PONG":
                        c.close()
                        raise ConnectionError("PING: %r" % (r,))
                with lock:
                    conns.append(c)
            except (OSError, ConnectionError, RespError) as e:
                with lock:
                    errors.append(str(e)[:200])

    threads = [threading.Thread(target=opener, daemon=True) for _ in range(max(1, min(o.parallel, o.conns)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    with open(o.ready, "w") as f:
        f.write("ready %d %d %.2f %s\n" % (len(conns), len(errors), time.monotonic() - t0,
                                            errors[0] if errors else ""))
    while not stop.is_set() and time.monotonic() < end:
        stop.wait(0.2)
    for c in conns:
        c.close()


def mixed(o):
    """MULTI/INCR/EXEC clients, BLPOP clients and one pusher, until SIGTERM or the deadline."""
    ctx = tls_context(o)
    end = time.monotonic() + o.seconds
    tx_keys = ["%s:tx:%d" % (o.prefix, i) for i in range(o.tx_clients)]
    bl_keys = ["%s:bl:%d" % (o.prefix, i) for i in range(o.blpop_clients)]
    admin = Conn(o, ctx)
    admin.call("DEL", *(tx_keys + bl_keys))
    tx_conns = [Conn(o, ctx) for _ in tx_keys]
    bl_conns = [Conn(o, ctx) for _ in bl_keys]
    pusher = Conn(o, ctx)
    lock = threading.Lock()
    st = {"tx_ok": 0, "tx_errors": 0, "tx_wrong": 0, "tx_lat": [], "tx_sched": [], "pushes": 0, "pops": 0,
          "pop_lat": [], "blpop_timeouts": 0, "errors": []}
    finish = threading.Event()   # pusher and transactions stop; BLPOP clients drain then stop

    def err(e):
        with lock:
            if len(st["errors"]) < 5:
                st["errors"].append(str(e)[:200])

    def tx_loop(i):
        c, key, expect = tx_conns[i], tx_keys[i], 1
        period = 1.0 / o.tx_rate
        start = time.monotonic() + i * period / o.tx_clients
        k = 0
        lat, sched = [], []
        while not finish.is_set() and time.monotonic() < end:
            due = start + k * period
            k += 1
            d = due - time.monotonic()
            if d > 0 and finish.wait(d):
                break
            try:
                sent = time.monotonic()
                c.sock.sendall(command("MULTI") + command("INCR", key) + command("EXEC"))
                r = [c.reply(), c.reply(), c.reply()]
                done = time.monotonic()
                lat.append((done - sent) * 1000)
                sched.append((done - due) * 1000)
                if r[0] != b"OK" or r[1] != b"QUEUED" or not isinstance(r[2], list):
                    with lock:
                        st["tx_errors"] += 1
                    err("transaction: %r" % (r,))
                    continue
                if r[2] != [str(expect).encode()]:
                    with lock:
                        st["tx_wrong"] += 1
                    err("INCR %s: %r, expected %d" % (key, r[2], expect))
                expect += 1
                with lock:
                    st["tx_ok"] += 1
            except (OSError, ConnectionError, ValueError) as e:
                with lock:
                    st["tx_errors"] += 1
                err(e)
                return
        with lock:
            st["tx_lat"] += lat
            st["tx_sched"] += sched

    def bl_loop(i):
        c, key = bl_conns[i], bl_keys[i]
        lat = []
        while time.monotonic() < end:
            try:
                r = c.call("BLPOP", key, "1")
            except (OSError, ConnectionError) as e:
                err(e)
                break
            if isinstance(r, RespError):
                err(r)
                break
            if r is None:
                with lock:
                    st["blpop_timeouts"] += 1
                if finish.is_set():
                    break  # the pusher has stopped and this list is empty
                continue
            lat.append((time.monotonic_ns() - int(r[1])) / 1e6)
            with lock:
                st["pops"] += 1
        with lock:
            st["pop_lat"] += lat

    def push_loop():
        period = 1.0 / (o.push_rate * len(bl_keys))
        start = time.monotonic()
        k = 0
        while not finish.is_set() and time.monotonic() < end:
            d = start + k * period - time.monotonic()
            if d > 0 and finish.wait(d):
                break
            key = bl_keys[k % len(bl_keys)]
            k += 1
            try:
                r = pusher.call("LPUSH", key, str(time.monotonic_ns()))
            except (OSError, ConnectionError) as e:
                err(e)
                return
            if isinstance(r, RespError):
                err(r)
                continue
            with lock:
                st["pushes"] += 1

    threads = [threading.Thread(target=tx_loop, args=(i,), daemon=True) for i in range(len(tx_keys))]
    threads += [threading.Thread(target=bl_loop, args=(i,), daemon=True) for i in range(len(bl_keys))]
    threads += [threading.Thread(target=push_loop, daemon=True)]
    with open(o.ready, "w") as f:
        f.write("ready\n")
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while not stop.is_set() and time.monotonic() < end:
        stop.wait(0.1)
    finish.set()
    elapsed = time.monotonic() - t0
    for t in threads:
        t.join(max(0.0, min(5.0, end + 5 - time.monotonic())))
    # Consistency: every INCR counted once, every pushed item popped or still in its list.
    left = 0
    counters_ok = True
    try:
        for key in bl_keys:
            left += int(admin.call("LLEN", key))
        total = sum(int(admin.call("GET", k) or 0) for k in tx_keys)
        counters_ok = total == st["tx_ok"]
        admin.call("DEL", *(tx_keys + bl_keys))
    except (OSError, ConnectionError, ValueError, TypeError) as e:
        err(e)
        counters_ok = False
    lat, pl = st["tx_lat"], st["pop_lat"]
    res = {"seconds": round(elapsed, 3), "tx_ok": st["tx_ok"], "tx_errors": st["tx_errors"],
           "tx_wrong": st["tx_wrong"], "tx_per_s": round(st["tx_ok"] / elapsed, 1) if elapsed else 0,
           "tx_p50_ms": pct(lat, 0.5), "tx_p99_ms": pct(lat, 0.99), "tx_p999_ms": pct(lat, 0.999),
           "tx_sched_p50_ms": pct(st["tx_sched"], 0.5), "tx_sched_p99_ms": pct(st["tx_sched"], 0.99),
           "pushes": st["pushes"], "pops": st["pops"], "left_in_lists": left,
           "pops_consistent": st["pushes"] == st["pops"] + left, "counters_consistent": counters_ok,
           "pop_p50_ms": pct(pl, 0.5), "pop_p99_ms": pct(pl, 0.99), "pop_p999_ms": pct(pl, 0.999),
           "blpop_timeouts": st["blpop_timeouts"], "errors": st["errors"]}
    for c in tx_conns + bl_conns + [pusher, admin]:
        c.close()
    with open(o.out, "w") as f:
        json.dump(res, f)


def bigread(o):
    """One connection SETs a --big-bytes value; another GETs it back to back (only GETs, so a
    multiplexing proxy shares its connection) until SIGTERM or the deadline."""
    ctx = tls_context(o)
    end = time.monotonic() + o.seconds
    key = "%s:big" % o.prefix
    setter = Conn(o, ctx)
    r = setter.call("SET", key, b"v" * o.big_bytes)
    setter.close()
    if r != b"OK":
        raise SystemExit("bigread: SET: %r" % (r,))
    c = Conn(o, ctx)
    request = command("GET", key)
    buf = bytearray(o.big_bytes + 2)
    view = memoryview(buf)
    lat, errors = [], []
    with open(o.ready, "w") as f:
        f.write("ready\n")
    while not stop.is_set() and time.monotonic() < end:
        t = time.monotonic()
        try:
            c.sock.sendall(request)
            header = c._line()
            if header[:1] != b"$" or int(header[1:]) != o.big_bytes:
                raise ConnectionError("GET %s: %r" % (key, header[:100]))
            have = min(len(c.buf), len(buf))  # one request in flight: nothing follows the reply
            view[:have] = c.buf[:have]
            c.buf = b""
            while have < len(buf):
                n = c.sock.recv_into(view[have:])
                if n == 0:
                    raise ConnectionError("connection closed")
                have += n
        except (OSError, ConnectionError, ValueError) as e:
            errors.append(str(e)[:200])
            break
        lat.append((time.monotonic() - t) * 1000)
    c.close()
    total_s = sum(lat) / 1000
    with open(o.out, "w") as f:
        json.dump({"big_gets": len(lat), "big_get_p50_ms": pct(lat, 0.5), "big_get_max_ms": max(lat) if lat else None,
                   "big_mb_per_s": (len(lat) * o.big_bytes / 1e6 / total_s) if total_s > 0 else None,
                   "big_errors": len(errors), "big_error": errors[0] if errors else ""}, f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["sample", "hold", "mixed", "bigread"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--cacert")
    p.add_argument("--sni", default="localhost")
    p.add_argument("--auth", default="")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--out")
    p.add_argument("--ready")
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--conns", type=int, default=0)
    p.add_argument("--parallel", type=int, default=64)
    p.add_argument("--ping", action="store_true")
    p.add_argument("--prefix", default="mux")
    p.add_argument("--tx-clients", type=int, default=10)
    p.add_argument("--tx-rate", type=float, default=100)
    p.add_argument("--blpop-clients", type=int, default=5)
    p.add_argument("--push-rate", type=float, default=50)
    p.add_argument("--big-bytes", type=int, default=50 * 1000 * 1000)
    o = p.parse_args()
    {"sample": sample, "hold": hold, "mixed": mixed, "bigread": bigread}[o.mode](o)


if __name__ == "__main__":
    main()
PYEOF
muxload=$work/muxload.py

# ---- the server, haproxy, the sampler -----------------------------------------------------------
log "certificates, TLS redis-server, haproxy in $work"
bash scripts/make-certs.sh "$work" "redis-sidecar bench CA"
password="bench-auth-token-$(openssl rand -hex 12)"
printf '%s\n' "$password" > "$work/password"
chmod 600 "$work/password"

redis_port=$(free_port)
redis-server --port 0 --tls-port "$redis_port" --bind 127.0.0.1 \
  --tls-cert-file "$work/server.crt" --tls-key-file "$work/server.key" \
  --tls-ca-cert-file "$work/ca.crt" --tls-auth-clients no \
  --requirepass "$password" --save "" --appendonly no --dir "$work" \
  --maxclients $((idle_conns + 1000)) --logfile "$work/redis.log" &
pids+=($!)
redis_pid=$!
wait_for 10 grep -q "Ready to accept" "$work/redis.log" || { cat "$work/redis.log" >&2; exit 1; }
rcli() { timeout 10 redis-cli -p "$redis_port" --tls --cacert "$work/ca.crt" -a "$password" --no-auth-warning "$@"; }
wait_for 10 rcli PING

haproxy_port=$(free_port)
cat > "$work/haproxy.cfg" <<EOF
global
  maxconn $haproxy_maxconn
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend redis_in
  bind 127.0.0.1:$haproxy_port
  default_backend redis_tls
backend redis_tls
  server s1 127.0.0.1:$redis_port ssl verify required ca-file $work/ca.crt verifyhost localhost sni str(localhost)
EOF
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
haproxy_pid=$!
wait_for 10 redis-cli -p "$haproxy_port" -a "$password" --no-auth-warning PING || { cat "$work/haproxy.log" >&2; exit 1; }

samples=$work/samples.txt
: > "$samples"
timeout 7200 "$python" "$muxload" sample --port "$redis_port" --tls --cacert "$work/ca.crt" --auth "$password" \
  --interval "$sample_s" --seconds 7000 --out "$samples" 2>"$work/sampler.err" &
pids+=($!)
wait_for 10 test -s "$samples" || { cat "$work/sampler.err" >&2; exit 1; }

# ---- the sidecar: does this binary know REDIS_SIDECAR_MULTIPLEX? -------------------------------
sidecar_env() {  # the settings every sidecar instance gets
  echo "REDIS_ADDR=localhost:$redis_port REDIS_TLS_ENABLED=true REDIS_TLS_CA_FILE=$work/ca.crt" \
       "REDIS_PASSWORD_FILE=$work/password REDIS_SIDECAR_LOG_FORMAT=text REDIS_SIDECAR_LOG_LEVEL=warn" \
       "REDIS_MAX_CONNECTIONS=$max_connections REDIS_SIDECAR_MAX_CLIENTS=$max_clients REDIS_CONNECTION_TIMEOUT=30s"
}
mode_env() {  # mode_env SETUP: the multiplexing settings of a sidecar setup
  case "$1" in
    sidecar-off) if [ "$mux_known" = 1 ]; then echo "REDIS_SIDECAR_MULTIPLEX=off"; fi ;;
    sidecar-on) echo "REDIS_SIDECAR_MULTIPLEX=on REDIS_SIDECAR_SHARED_CONNECTIONS=2" ;;
  esac
}
# shellcheck disable=SC2046
probe() { env $(sidecar_env) REDIS_SIDECAR_LISTEN=127.0.0.1:1 REDIS_SIDECAR_HTTP_ADDR=127.0.0.1:1 "$@" "$bin" config; }
mux_known=0
mux_note=""
if probe REDIS_SIDECAR_MULTIPLEX=on REDIS_SIDECAR_SHARED_CONNECTIONS=2 >"$work/probe.json" 2>"$work/probe.err" \
   && grep -qi multiplex "$work/probe.json"; then
  mux_known=1
elif probe >/dev/null 2>&1; then
  if [ -s "$work/probe.err" ] && ! grep -qi multiplex "$work/probe.json"; then
    mux_note="this binary refuses REDIS_SIDECAR_MULTIPLEX ($(head -c 160 "$work/probe.err" | tr '\n' ' ')): sidecar-off runs without the variable (its only behaviour); sidecar-on is left out"
  else
    mux_note="this binary has no REDIS_SIDECAR_MULTIPLEX setting (config does not show it): sidecar-off runs without the variable (its only behaviour); sidecar-on is left out"
  fi
else
  echo "bench/multiplex.sh: the sidecar refuses its settings:" >&2; cat "$work/probe.err" >&2; exit 1
fi
if [ "$mux_known" = 0 ]; then
  case ",$setups_arg," in
    *,sidecar-on,*) echo "bench/multiplex.sh: sidecar-on asked for, but $mux_note" >&2; exit 2 ;;
  esac
  keep=()
  for s in "${setups[@]}"; do [ "$s" = sidecar-on ] || keep+=("$s"); done
  setups=("${keep[@]}")
  log "$mux_note"
fi
[ "${#setups[@]}" -gt 0 ] || { echo "bench/multiplex.sh: no setup left to run" >&2; exit 2; }

sidecar_pid=""
sidecar_port=""
start_sidecar() {  # start_sidecar SETUP: a fresh instance; sets sidecar_pid, sidecar_port
  local setup=$1 hport
  sidecar_port=$(free_port); hport=$(free_port)
  # shellcheck disable=SC2046
  env $(sidecar_env) $(mode_env "$setup") REDIS_SIDECAR_LISTEN="127.0.0.1:$sidecar_port" \
    REDIS_SIDECAR_HTTP_ADDR="127.0.0.1:$hport" "$bin" run 2>>"$work/$setup.log" &
  sidecar_pid=$!
  pids+=("$sidecar_pid")
  local deadline=$(( $(date +%s) + 20 ))
  until [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$hport/readyz")" = 200 ]; do
    if ! kill -0 "$sidecar_pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
      log "  $setup: the sidecar did not become ready: $(tail -n 3 "$work/$setup.log" | tr '\n' ' ')"
      stop_sidecar
      return 1
    fi
    sleep 0.02
  done
  wait_for 10 redis-cli -p "$sidecar_port" PING
}
stop_sidecar() {
  [ -n "$sidecar_pid" ] || return 0
  kill "$sidecar_pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$sidecar_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$sidecar_pid" 2>/dev/null || true
  wait "$sidecar_pid" 2>/dev/null || true
  untrack "$sidecar_pid"
  sidecar_pid=""
}

# ---- setups -------------------------------------------------------------------------------------
conn_args() {  # conn_args SETUP: redis-benchmark connection arguments
  case "$1" in
    direct) echo "-h 127.0.0.1 -p $redis_port --tls --cacert $work/ca.crt -a $password" ;;
    haproxy) echo "-h 127.0.0.1 -p $haproxy_port -a $password" ;;
    sidecar-*) echo "-h 127.0.0.1 -p $sidecar_port" ;;
  esac
}
client_args() {  # client_args SETUP: muxload.py connection arguments
  case "$1" in
    direct) echo "--port $redis_port --tls --cacert $work/ca.crt --sni localhost --auth $password" ;;
    haproxy) echo "--port $haproxy_port --auth $password" ;;
    sidecar-*) echo "--port $sidecar_port" ;;
  esac
}
proxy_pid() {
  case "$1" in
    direct) echo "" ;;
    haproxy) echo "$haproxy_pid" ;;
    sidecar-*) echo "$sidecar_pid" ;;
  esac
}

results=$work/results.jsonl
: > "$results"
record() {  # record SETUP WORKLOAD METRIC VALUE ROUND [UNIT]
  printf '{"setup":"%s","workload":"%s","metric":"%s","value":%s,"round":%s,"unit":"%s"}\n' \
    "$1" "$2" "$3" "$4" "$5" "${6:-}" >> "$results"
}

# settle: wait (at most 20 s) until four samples taken after the call agree (0.6 s apart at
# least): a stopped setup's connections are gone; prints that count, the next baseline.
settle() {
  local since deadline last
  since=$(now_ms); deadline=$(( $(date +%s) + 20 ))
  while :; do
    last=$(awk -v t="$since" '$1 > t {print $2}' "$samples" | tail -n 4)
    if [ "$(wc -l <<< "$last")" -ge 4 ] && [ "$(sort -u <<< "$last" | wc -l)" = 1 ]; then break; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then log "  the server's connection count did not settle: $(tr '\n' ' ' <<< "$last")"; break; fi
    sleep 0.1
  done
  tail -n 1 "$samples" | awk '{print $2}'
}
# window_max T0 T1: the largest sample taken between T0 and T1 (ms), or the first one after T0.
window_max() {
  awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b { if ($2 > m || !seen) m = $2; seen = 1 }
       $1 > b && !seen { m = $2; seen = 1; exit } END { if (seen) print m; else print "" }' "$samples"
}

workload_name() {
  case "$1" in
    steady) echo "steady c=50" ;;
    c1000) echo "1000 clients" ;;
    idle) echo "$((idle_conns + active_clients)) connected, $active_clients active" ;;
    mixed) echo "mixed c=$mixed_clients + MULTI + BLPOP" ;;
    pipelined) echo "pipelined P=16 c=50" ;;
    bigvalue) echo "c=50 GET beside a $((big_bytes / 1000000)) MB reader" ;;
  esac
}
rb_args() {  # rb_args WORKLOAD: clients, requests, tests (the measured run)
  case "$1" in
    steady) echo "-c 50 -n $n_steady -t set,get" ;;
    c1000) echo "-c 1000 -n $n_c1000 -t set,get" ;;
    idle) echo "-c $active_clients -n $n_active -t set,get" ;;
    mixed) echo "-c $mixed_clients -n $n_mixed -t set,get" ;;
    pipelined) echo "-c 50 -P 16 -n $n_pipe -t get" ;;
    bigvalue) echo "-c 50 -n $n_big -t get" ;;
  esac
}
warm_args() {  # the warm-up: the same clients, fewer requests
  case "$1" in
    steady) echo "-c 50 -n $n_warm -t set,get" ;;
    c1000) echo "-c 1000 -n $((n_warm > 2000 ? n_warm : 2000)) -t set,get" ;;
    idle) echo "-c $active_clients -n $n_warm -t set,get" ;;
    mixed) echo "-c $mixed_clients -n $n_warm -t set,get" ;;
    pipelined) echo "-c 50 -P 16 -n $((n_warm * 10)) -t get" ;;
    bigvalue) echo "-c 50 -n $n_warm -t get" ;;
  esac
}
requests_of() { case "$1" in steady) echo "$n_steady" ;; c1000) echo "$n_c1000" ;; idle) echo "$n_active" ;; mixed) echo "$n_mixed" ;; pipelined) echo "$n_pipe" ;; bigvalue) echo "$n_big" ;; esac; }

# helper_start NAME ARGS...: a muxload.py process in the background; sets helper_pid
helper_pid=""
helper_start() {
  local name=$1; shift
  rm -f "$work/$name.ready" "$work/$name.out"
  timeout $((cmd_timeout * 3)) "$python" "$muxload" "$@" --ready "$work/$name.ready" --seconds $((cmd_timeout * 2)) \
    2>"$work/$name.err" &
  helper_pid=$!
  pids+=("$helper_pid")
}
helper_wait_ready() {  # helper_wait_ready NAME SECONDS
  local deadline=$(( $(date +%s) + $2 ))
  until [ -s "$work/$1.ready" ]; do
    kill -0 "$helper_pid" 2>/dev/null || return 1
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
helper_stop() {
  [ -n "$helper_pid" ] || return 0
  kill "$helper_pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$helper_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$helper_pid" 2>/dev/null || true
  wait "$helper_pid" 2>/dev/null || true
  untrack "$helper_pid"
  helper_pid=""
}

# measure SETUP WORKLOAD ROUND: one workload on one setup, from the baseline to the report lines.
measure() {
  local setup=$1 wl=$2 round=$3 name base t0 t1 top pp s0 p0 rc=0
  name=$(workload_name "$wl")
  base=$(settle)
  if [[ $setup == sidecar-* ]]; then
    start_sidecar "$setup" || return 0
  fi
  case "$wl" in
    idle)
      # shellcheck disable=SC2046
      helper_start hold hold $(client_args "$setup") --conns "$idle_conns" $( [ "$idle_ping" = 1 ] && echo --ping)
      if ! helper_wait_ready hold $((cmd_timeout * 2)); then
        log "  $setup $wl: the idle connections were not opened: $(tail -n 2 "$work/hold.err" | tr '\n' ' ')"
        helper_stop; stop_sidecar; return 0
      fi
      local opened failed secs first
      read -r _ opened failed secs first < "$work/hold.ready"
      record "$setup" "$name" idle_opened "$opened" "$round" conns
      record "$setup" "$name" idle_failed "$failed" "$round" conns
      record "$setup" "$name" idle_open_s "$secs" "$round" s
      log "  $setup $wl: $opened idle connections open ($failed failed) in $secs s${first:+; first failure: $first}"
      ;;
  esac
  # warm-up: the same shape, on the same instance (a sidecar's pool fills here); in the idle
  # workload after the idle connections are open, so the active clients find the pool warm
  # shellcheck disable=SC2046
  timeout "$cmd_timeout" redis-benchmark $(conn_args "$setup") -r "$keyspace" $(warm_args "$wl") -q \
    >/dev/null 2>"$work/warm.err" || log "  $setup $wl: warm-up failed: $(tail -n 2 "$work/warm.err" | tr '\n' ' ')"
  case "$wl" in
    mixed)
      # shellcheck disable=SC2046
      helper_start mixed mixed $(client_args "$setup") --prefix "mux:$setup:$round" --out "$work/mixed.out" \
        --tx-clients "$tx_clients" --tx-rate "$tx_rate" --blpop-clients "$blpop_clients" --push-rate "$push_rate"
      if ! helper_wait_ready mixed 60; then
        log "  $setup $wl: the MULTI/BLPOP clients did not start: $(tail -n 2 "$work/mixed.err" | tr '\n' ' ')"
        helper_stop; stop_sidecar; return 0
      fi
      ;;
    bigvalue)
      # shellcheck disable=SC2046
      helper_start bigvalue bigread $(client_args "$setup") --prefix "mux:$setup:$round" --out "$work/bigvalue.out" \
        --big-bytes "$big_bytes"
      if ! helper_wait_ready bigvalue 60; then
        log "  $setup $wl: the big-value reader did not start: $(tail -n 2 "$work/bigvalue.err" | tr '\n' ' ')"
        helper_stop; stop_sidecar; return 0
      fi
      ;;
  esac
  pp=$(proxy_pid "$setup")
  p0=0; [ -n "$pp" ] && p0=$(cpu_ticks "$pp")
  s0=$(cpu_ticks "$redis_pid")
  t0=$(now_ms)
  # shellcheck disable=SC2046
  timeout "$cmd_timeout" redis-benchmark $(conn_args "$setup") -r "$keyspace" $(rb_args "$wl") \
    >"$work/rb.out" 2>"$work/rb.err" || rc=$?
  t1=$(now_ms)
  local s1 p1 hz; s1=$(cpu_ticks "$redis_pid"); p1=0; [ -n "$pp" ] && p1=$(cpu_ticks "$pp"); hz=$(getconf CLK_TCK)
  sleep "$sample_s"; sleep 0.05   # the sample in flight at t1
  top=$(window_max "$t0" "$t1")
  helper_stop
  if { [ "$wl" = mixed ] || [ "$wl" = bigvalue ]; } && [ -s "$work/$wl.out" ]; then
    "$python" - "$work/$wl.out" "$setup" "$name" "$round" >> "$results" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for k, v in r.items():
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, (int, float)):
        print(json.dumps({"setup": sys.argv[2], "workload": sys.argv[3], "metric": k, "value": v,
                          "round": int(sys.argv[4]), "unit": ""}))
EOF
    log "  $setup $wl: its own clients: $(cat "$work/$wl.out")"
  fi
  stop_sidecar
  if [ "$rc" != 0 ]; then
    log "  $setup $wl: redis-benchmark failed (exit $rc): $(tail -n 2 "$work/rb.err" | tr '\n' ' ')"
    return 0
  fi
  local summary tests
  if ! "$python" bench/multiplex_report.py record-rb "$work/rb.out" "$setup" "$name" "$round" >>"$results" 2>"$work/rb.summary"; then
    log "  $setup $wl: no results in redis-benchmark's output: $(tail -n 2 "$work/rb.summary" | tr '\n' ' ')"
    return 0
  fi
  summary=$(cat "$work/rb.summary")
  tests=$(grep -o 'req/s' <<< "$summary" | wc -l)
  if grep -qi "error" "$work/rb.err"; then log "  $setup $wl: redis-benchmark said: $(grep -i -m 2 error "$work/rb.err" | tr '\n' ' ')"; fi
  local nreq; nreq=$(( $(requests_of "$wl") * tests ))
  if [ -n "$top" ]; then
    record "$setup" "$name" upstream_conns $((top - base)) "$round" conns
    record "$setup" "$name" upstream_baseline "$base" "$round" conns
  fi
  record "$setup" "$name" server_cpu_us_per_req "$(awk -v d=$((s1 - s0)) -v hz="$hz" -v n="$nreq" 'BEGIN {printf "%.2f", d / hz * 1e6 / n}')" "$round" "µs"
  [ -n "$pp" ] && record "$setup" "$name" proxy_cpu_us_per_req "$(awk -v d=$((p1 - p0)) -v hz="$hz" -v n="$nreq" 'BEGIN {printf "%.2f", d / hz * 1e6 / n}')" "$round" "µs"
  log "  $setup $wl: $summary; upstream connections ${top:-?} - $base (baseline)"
}

# ---- machine facts ------------------------------------------------------------------------------
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$python" - "$work/machine.json" \
  nproc="$(nproc)" cpu_model="$cpu_model" kernel="$(uname -r)" os="$(awk -F= '/^PRETTY_NAME=/ {gsub(/"/, "", $2); print $2}' /etc/os-release)" \
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" load_before="$load_before" rounds="$rounds" quick="$quick" niceness="$niceness" \
  command="bash bench/multiplex.sh${orig_args:+ $orig_args}" redis_benchmark="$rb_version" \
  redis_server="$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')" haproxy="$(haproxy -v | awk 'NR==1 {print $3}')" \
  haproxy_threads="$(find "/proc/$haproxy_pid/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" \
  openssl="$(openssl version | awk '{print $2}')" binary="$binary_note" sidecar_version="$("$bin" version 2>/dev/null | head -1)" \
  multiplex_setting="$mux_known" multiplex_note="$mux_note" setups="${setups[*]}" workloads="${workloads[*]}" \
  nofile_hard="$hard" nofile_soft="$(ulimit -Sn)" idle_conns="$idle_conns" idle_target="$idle_target" idle_ping="$idle_ping" \
  sidecar_settings="REDIS_MAX_CONNECTIONS=$max_connections REDIS_SIDECAR_MAX_CLIENTS=$max_clients REDIS_CONNECTION_TIMEOUT=30s (both); sidecar-on: REDIS_SIDECAR_MULTIPLEX=on REDIS_SIDECAR_SHARED_CONNECTIONS=2; sidecar-off: $( [ "$mux_known" = 1 ] && echo REDIS_SIDECAR_MULTIPLEX=off || echo 'no multiplex variable')" \
  haproxy_maxconn="$haproxy_maxconn" redis_maxclients="$((idle_conns + 1000))" \
  mixed="$tx_clients x MULTI/INCR/EXEC at $tx_rate/s each, $blpop_clients x BLPOP (1 s timeout), LPUSH $push_rate/s per list" \
  sample_ms="$sample_ms" <<'EOF'
import json, sys
m = dict(a.split("=", 1) for a in sys.argv[2:])
for k in ("nproc", "rounds", "niceness", "nofile_hard", "nofile_soft", "idle_conns", "idle_target",
          "haproxy_maxconn", "redis_maxclients", "sample_ms"):
    m[k] = int(m[k])
for k in ("quick", "multiplex_setting", "idle_ping"):
    m[k] = m[k] == "1"
json.dump(m, open(sys.argv[1], "w"))
EOF
log "machine: $(nproc) cores, $cpu_model, load average $load_before; binary: $binary_note"
log "setups: ${setups[*]}; workloads: ${workloads[*]}; $rounds round(s)"

rotate() {  # rotate K: the setups, rotated left K times
  local k=$(( $1 % ${#setups[@]} ))
  echo "${setups[@]:k}" "${setups[@]:0:k}"
}

for round in $(seq 1 "$rounds"); do
  log "round $round of $rounds (load average $(cut -d' ' -f1 /proc/loadavg))"
  record machine load load1 "$(cut -d' ' -f1 /proc/loadavg)" "$round"
  order=$(rotate $((round - 1)))
  for wl in "${workloads[@]}"; do
    for s in $order; do measure "$s" "$wl" "$round"; done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report -------------------------------------------------------------------------------------
"$python" - "$work/machine.json" "$load_after" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1])); m["load_after"] = sys.argv[2]; json.dump(m, open(sys.argv[1], "w"))
EOF
report_args=(report "$work/machine.json" "$results")
[ -n "$json_out" ] && report_args+=(--json "$json_out")
[ -n "$md_out" ] && report_args+=(--markdown "$md_out")
"$python" bench/multiplex_report.py "${report_args[@]}"
