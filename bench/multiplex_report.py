#!/usr/bin/env python3
"""bench/multiplex.sh's parser and report (standard library only, Debian's python3).

    python3 bench/multiplex_report.py record-rb RAW SETUP WORKLOAD ROUND
        redis-benchmark 7's normal (not --csv, not -q) output in RAW -> one JSON record per test
        and metric on stdout (rps, p50_ms, p99_ms, p999_ms, requests), a summary on stderr.
        p50 and p99 are redis-benchmark's own summary; p99.9 is the smallest latency of its
        percentile and cumulative distributions under which at least 99.9% of the requests
        fall (the histogram's resolution: an upper bound, as its other percentiles are).
    python3 bench/multiplex_report.py report MACHINE.json RESULTS.jsonl [--json F] [--markdown F]
        medians over rounds per workload, test and setup; ratios vs direct and vs haproxy; the
        upstream connections the server saw; the mixed workload's transactions and BLPOPs.
"""
import argparse
import json
import math
import re
import statistics
import sys
from collections import defaultdict

SETUPS = ["direct", "haproxy", "sidecar-off", "sidecar-on"]
PEERS = ["direct", "haproxy"]


# ---- redis-benchmark's output -------------------------------------------------------------------
DIST = re.compile(r"^\s*([\d.]+)% <= ([\d.]+) milliseconds \(cumulative count (\d+)\)")


def parse_rb(text):
    tests = []
    cur = None
    summary_next = False
    for line in re.split(r"[\r\n]+", text):
        m = re.match(r"^====== (.+) ======\s*$", line.strip())
        if m:
            cur = {"test": m.group(1).split()[0], "points": [], "requests": None, "rps": None}
            tests.append(cur)
            summary_next = False
            continue
        if cur is None:
            continue
        m = re.match(r"^\s*(\d+) requests completed in ([\d.]+) seconds", line)
        if m:
            cur["requests"] = int(m.group(1))
            continue
        m = DIST.match(line)
        if m:
            cur["points"].append((float(m.group(2)), int(m.group(3))))
            continue
        m = re.match(r"^\s*throughput summary: ([\d.]+) requests per second", line)
        if m:
            cur["rps"] = float(m.group(1))
            continue
        if re.match(r"^\s*avg\s+min\s+p50\s+p95\s+p99\s+max\s*$", line):
            summary_next = True
            continue
        if summary_next:
            vals = line.split()
            if len(vals) == 6:
                cur["avg_ms"], _, cur["p50_ms"], cur["p95_ms"], cur["p99_ms"], cur["max_ms"] = map(float, vals)
            summary_next = False
    out = []
    for t in tests:
        if t["rps"] is None:
            continue
        total = t["requests"] or max((c for _, c in t["points"]), default=0)
        p999 = None
        if total and t["points"]:
            need = math.ceil(0.999 * total)
            p999 = min((lat for lat, c in t["points"] if c >= need), default=None)
        out.append({"test": t["test"], "rps": t["rps"], "p50_ms": t.get("p50_ms"), "p99_ms": t.get("p99_ms"),
                    "p999_ms": p999, "requests": total})
    return out


def record_rb(a):
    with open(a.raw, errors="replace") as f:
        tests = parse_rb(f.read())
    units = {"rps": "req/s", "p50_ms": "ms", "p99_ms": "ms", "p999_ms": "ms", "requests": ""}
    for t in tests:
        for m, unit in units.items():
            if t.get(m) is not None:
                print(json.dumps({"setup": a.setup, "workload": a.workload, "test": t["test"], "metric": m,
                                  "value": t[m], "round": int(a.round), "unit": unit}))
    print("; ".join("%s %s req/s, p50 %s p99 %s p99.9 %s ms" % (t["test"], fmt(t["rps"], "req/s"), t["p50_ms"],
                                                                t["p99_ms"], t["p999_ms"]) for t in tests),
          file=sys.stderr)
    return 0 if tests else 1


# ---- the report ---------------------------------------------------------------------------------
def fmt(x, unit=""):
    if x is None:
        return "–"
    if unit in ("req/s", "count") or abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}×"


def med(xs):
    return statistics.median(xs) if xs else None


def load(path):
    vals = defaultdict(list)   # (workload, test, setup, metric) -> values over rounds
    order = []                 # workloads, in the order measured
    tests = defaultdict(list)  # workload -> tests
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if r["setup"] == "machine":
                continue
            w, t = r["workload"], r.get("test", "")
            vals[(w, t, r["setup"], r["metric"])].append(float(r["value"]))
            if w not in order:
                order.append(w)
            if t and t not in tests[w]:
                tests[w].append(t)
    return vals, order, tests


def report(a):
    machine = json.load(open(a.machine))
    vals, order, tests = load(a.results)
    setups = [s for s in SETUPS if any(k[2] == s for k in vals)]

    def m(w, t, s, metric):
        return med(vals.get((w, t, s, metric), []))

    def span(w, t, s, metric):
        xs = vals.get((w, t, s, metric), [])
        return (min(xs), max(xs)) if len(xs) > 1 else None

    out = []
    out.append("## redis-sidecar multiplexing benchmark (issue 16)\n")
    out.append(f"- machine: {machine['nproc']} cores, {machine['cpu_model']}, {machine['os']}, kernel {machine['kernel']}; "
               f"load average {machine['load_before']} before, {machine.get('load_after', '?')} after")
    out.append(f"- {machine['date']}: `{machine['command']}`; {machine['rounds']} round(s), medians over rounds"
               + (" (a smoke run: --quick)" if machine["quick"] else ""))
    out.append(f"- redis-server {machine['redis_server']}, redis-benchmark {machine['redis_benchmark']}, haproxy "
               f"{machine['haproxy']} ({machine['haproxy_threads']} threads, maxconn {machine['haproxy_maxconn']}), "
               f"OpenSSL {machine['openssl']}")
    out.append(f"- sidecar: {machine['binary']} ({machine['sidecar_version']}); {machine['sidecar_settings']}")
    if machine.get("multiplex_note"):
        out.append(f"- **{machine['multiplex_note']}**")
    out.append(f"- idle workload: {machine['idle_conns']} idle connections "
               f"({'one PING each' if machine['idle_ping'] else 'silent'}; nofile soft/hard {machine['nofile_soft']}/"
               f"{machine['nofile_hard']}"
               + (f", lowered from {machine['idle_target']}" if machine['idle_conns'] != machine['idle_target'] else "")
               + f"); mixed: {machine['mixed']}")
    out.append("- upstream conns: the most connections redis-server reported (INFO clients every "
               f"{machine['sample_ms']} ms during the measured run, the sampler excluded) minus those before the "
               "setup started; a sidecar is started fresh for each measurement, so its pool's idle connections count")
    out.append("")
    out.append("| workload | setup | req/s | p50 ms | p99 ms | p99.9 ms | upstream conns | req/s ÷ direct | "
               "req/s ÷ haproxy | p99 ÷ direct | p99 ÷ haproxy |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = {"machine": machine, "workloads": []}
    for w in order:
        if not tests.get(w):
            continue
        for t in tests[w]:
            entry = {"workload": w, "test": t, "setups": {}}
            for s in setups:
                rps, p50, p99, p999 = (m(w, t, s, x) for x in ("rps", "p50_ms", "p99_ms", "p999_ms"))
                conns = m(w, "", s, "upstream_conns")
                cs = span(w, "", s, "upstream_conns")
                if rps is None and conns is None:
                    continue
                ratios = {}
                for p in PEERS:
                    ratios[f"rps_vs_{p}"] = None if s == p else ratio(rps, m(w, t, p, "rps"))
                    ratios[f"p99_vs_{p}"] = None if s == p else ratio(p99, m(w, t, p, "p99_ms"))
                conns_txt = fmt(conns, "count") + (f" ({fmt(cs[0], 'count')}–{fmt(cs[1], 'count')})" if cs and cs[0] != cs[1] else "")
                out.append(f"| {w} {t} | {s} | {fmt(rps, 'req/s')} | {fmt(p50)} | {fmt(p99)} | {fmt(p999)} | "
                           f"{conns_txt} | {fmt_ratio(ratios['rps_vs_direct'])} | {fmt_ratio(ratios['rps_vs_haproxy'])} | "
                           f"{fmt_ratio(ratios['p99_vs_direct'])} | {fmt_ratio(ratios['p99_vs_haproxy'])} |")
                entry["setups"][s] = {"rps": rps, "p50_ms": p50, "p99_ms": p99, "p999_ms": p999,
                                      "upstream_conns": conns, "rounds": {
                                          x: vals.get((w, t, s, x), []) for x in ("rps", "p50_ms", "p99_ms", "p999_ms")},
                                      "upstream_conns_rounds": vals.get((w, "", s, "upstream_conns"), []), **ratios}
            summary["workloads"].append(entry)

    # CPU and the idle workload's opening time
    rows = []
    for w in order:
        for s in setups:
            cpu_p, cpu_s = m(w, "", s, "proxy_cpu_us_per_req"), m(w, "", s, "server_cpu_us_per_req")
            opened, failed, open_s = (m(w, "", s, x) for x in ("idle_opened", "idle_failed", "idle_open_s"))
            if cpu_p is None and cpu_s is None and opened is None:
                continue
            idle = "–" if opened is None else f"{fmt(opened, 'count')} open, {fmt(failed, 'count')} failed, {fmt(open_s)} s"
            rows.append(f"| {w} | {s} | {fmt(cpu_p)} | {fmt(cpu_s)} | {idle} |")
    if rows:
        out.append("")
        out.append("| workload | setup | proxy CPU µs/req | redis-server CPU µs/req | idle connections: opened in |")
        out.append("|---|---|---:|---:|---|")
        out += rows

    # The mixed workload's own clients
    rows = []
    for w in order:
        for s in setups:
            if m(w, "", s, "tx_ok") is None:
                continue
            ok = all(v == 1 for v in vals.get((w, "", s, "pops_consistent"), []) + vals.get((w, "", s, "counters_consistent"), []))
            rows.append(f"| {w} | {s} | {fmt(m(w, '', s, 'tx_per_s'), 'count')} | {fmt(m(w, '', s, 'tx_p50_ms'))} | "
                        f"{fmt(m(w, '', s, 'tx_p99_ms'))} | {fmt(m(w, '', s, 'tx_p999_ms'))} | "
                        f"{fmt(m(w, '', s, 'tx_sched_p99_ms'))} | "
                        f"{fmt(m(w, '', s, 'tx_errors'), 'count')} / {fmt(m(w, '', s, 'tx_wrong'), 'count')} | "
                        f"{fmt(m(w, '', s, 'pops'), 'count')} of {fmt(m(w, '', s, 'pushes'), 'count')} | "
                        f"{fmt(m(w, '', s, 'pop_p50_ms'))} | "
                        f"{fmt(m(w, '', s, 'pop_p99_ms'))} | {'yes' if ok else '**no**'} |")
            summary.setdefault("mixed", {})[s] = {x: m(w, "", s, x) for x in (
                "tx_per_s", "tx_p50_ms", "tx_p99_ms", "tx_p999_ms", "tx_sched_p50_ms", "tx_sched_p99_ms", "tx_errors", "tx_wrong", "pops", "pushes",
                "pop_p50_ms", "pop_p99_ms", "pop_p999_ms")}
            summary["mixed"][s]["consistent"] = ok
    if rows:
        out.append("")
        out.append("Mixed workload, beside redis-benchmark: MULTI/INCR/EXEC clients (latency from the send of the "
                   "three commands to EXEC's reply; \"late\": from the time it was due, so a client that could not "
                   "keep its schedule shows) and BLPOP clients (latency from the LPUSH to the pop); consistent: "
                   "every INCR counted once and every pushed item popped or still listed.")
        out.append("")
        out.append("| workload | setup | tx/s | tx p50 ms | tx p99 ms | tx p99.9 ms | tx p99 late ms | tx errors / wrong | "
                   "BLPOP pops | pop p50 ms | pop p99 ms | consistent |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        out += rows

    # The bigvalue workload's reader
    rows = []
    for w in order:
        for s in setups:
            if m(w, "", s, "big_gets") is None:
                continue
            rows.append(f"| {w} | {s} | {fmt(m(w, '', s, 'big_gets'), 'count')} | {fmt(m(w, '', s, 'big_mb_per_s'))} | "
                        f"{fmt(m(w, '', s, 'big_get_p50_ms'))} | {fmt(m(w, '', s, 'big_errors'), 'count')} |")
            summary.setdefault("bigvalue", {})[s] = {x: m(w, "", s, x) for x in (
                "big_gets", "big_mb_per_s", "big_get_p50_ms", "big_get_max_ms", "big_errors")}
    if rows:
        out.append("")
        out.append("Big-value workload: the reader beside redis-benchmark (GETs of the large value done while "
                   "redis-benchmark ran, its throughput, a GET's median time).")
        out.append("")
        out.append("| workload | setup | large GETs | MB/s | GET p50 ms | errors |")
        out.append("|---|---|---:|---:|---:|---:|")
        out += rows

    text = "\n".join(out) + "\n"
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record-rb")
    r.add_argument("raw")
    r.add_argument("setup")
    r.add_argument("workload")
    r.add_argument("round")
    q = sub.add_parser("report")
    q.add_argument("machine")
    q.add_argument("results")
    q.add_argument("--json")
    q.add_argument("--markdown")
    a = p.parse_args()
    return record_rb(a) if a.cmd == "record-rb" else report(a)


if __name__ == "__main__":
    sys.exit(main())
