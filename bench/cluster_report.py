#!/usr/bin/env python3
"""Turns bench/cluster.sh's raw results into one table: medians over rounds for `direct`
(redis-benchmark --cluster speaking TLS to the nodes) and `sidecar` (redis-benchmark --cluster
through redis-sidecar's cluster mode), the ratio sidecar ÷ direct, what the sidecar adds to the
latency, CPU per request; optional JSON and Markdown files.

    python3 bench/cluster_report.py MACHINE.json RESULTS.jsonl [--json F] [--markdown F]

Standard library only (Debian's python3).
"""
import argparse
import json
import statistics
from collections import defaultdict

SETUPS = ["direct", "sidecar"]
METRICS = [("rps", "req/s", "higher"), ("p50_ms", "p50 ms", "lower"), ("p99_ms", "p99 ms", "lower")]
CPU = [("client_cpu_us_per_req", "redis-benchmark"), ("servers_cpu_us_per_req", "3 redis-servers"),
       ("sidecar_cpu_us_per_req", "sidecar")]


def load(path):
    values = defaultdict(list)  # (setup, workload, metric) -> [values]
    rounds = defaultdict(dict)  # (setup, workload, metric) -> {round: value}
    order = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            key = (r["setup"], r["workload"], r["metric"])
            values[key].append(float(r["value"]))
            rounds[key][r["round"]] = float(r["value"])
            if r["setup"] in SETUPS and r["workload"] not in order:
                order.append(r["workload"])
    return values, rounds, order


def med(xs):
    return statistics.median(xs) if xs else None


def spread(xs):
    if not xs or len(xs) < 2:
        return None
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m if m else None


def fmt(x, unit=""):
    if x is None:
        return "–"
    if unit == "req/s" or abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def build(machine, values, rounds, order):
    rows = []
    for w in order:
        for m, label, better in METRICS:
            if not any((s, w, m) in values for s in SETUPS):
                continue
            meds = {s: med(values.get((s, w, m), [])) for s in SETUPS}
            d, s = meds["direct"], meds["sidecar"]
            row = {"workload": w, "metric": label, "better": better, "medians": meds,
                   "spread": {x: spread(values.get((x, w, m), [])) for x in SETUPS},
                   "ratio": (s / d) if d and s is not None else None}
            if m != "rps":  # what the sidecar adds: the difference per round, then the median
                dr, sr = rounds.get(("direct", w, m), {}), rounds.get(("sidecar", w, m), {})
                row["added"] = med([sr[r] - dr[r] for r in sr if r in dr])
            rows.append(row)
    cpu = []
    for w in order:
        entry = {"workload": w, "by_setup": {}}
        for s in SETUPS:
            parts = {label: med(values.get((s, w, m), [])) for m, label in CPU}
            if all(v is None for v in parts.values()):
                continue
            parts["total"] = sum(v for v in parts.values() if v is not None)
            entry["by_setup"][s] = parts
        if entry["by_setup"]:
            cpu.append(entry)
    sidecar = {m: {"median": med(xs), "values": xs} for (s, w, m), xs in values.items()
               if s == "sidecar" and w == "sidecar"}
    round_load = [v for _, v in sorted(rounds.get(("machine", "load", "load1"), {}).items())]
    return {"machine": dict(machine, round_load=round_load), "rows": rows, "cpu": cpu,
            "sidecar": sidecar,
            "raw": {f"{s}|{w}|{m}": xs for (s, w, m), xs in values.items()}}


def header(m):
    return (f"Run {m['date']} on {m['nproc']} cores, {m['cpu_model']}, Linux {m['kernel']} "
            f"({m.get('os', '')}); load average before {m.get('load_before')}, after "
            f"{m.get('load_after')}. {m['rounds']} round(s), setups alternated within each round. "
            f"A TLS Redis Cluster of {m.get('nodes')} primaries (redis-server {m.get('redis_server')}), "
            f"redis-benchmark {m.get('redis_benchmark')} --cluster, {m.get('clients')} clients, "
            f"OpenSSL {m.get('openssl')}; redis-sidecar {m.get('sidecar_commit')}." +
            (f" 1-minute load average at the start of each round: "
             f"{', '.join(f'{x:.2f}' for x in m['round_load'])}." if m.get("round_load") else "") +
            (f" Niceness {m['niceness']}." if m.get("niceness") else "") +
            (f" Note: {m['binary_note']}." if m.get("binary_note") else ""))


def table_cells(r):
    unit = "req/s" if r["metric"] == "req/s" else ""
    ratio = "–" if r["ratio"] is None else f"{r['ratio']:.2f}×"
    added = fmt(r.get("added")) if "added" in r else ""
    if added and r.get("added") is not None and r["added"] >= 0:
        added = "+" + added
    sp = " / ".join("–" if r["spread"][s] is None else f"{r['spread'][s] * 100:.0f}%" for s in SETUPS)
    return [r["workload"], r["metric"]] + [fmt(r["medians"][s], unit) for s in SETUPS] + [ratio, added, sp]


HEAD = ["workload", "metric", "direct", "sidecar", "sidecar ÷ direct", "sidecar − direct",
        "spread d / s"]


def text_table(rep):
    m = rep["machine"]
    out = [f"redis-sidecar cluster benchmark — {m['date']} — {m['nproc']} cores, {m['cpu_model']}, "
           f"load {m.get('load_before')} → {m.get('load_after')}, {m['rounds']} round(s)", ""]
    rows = [HEAD] + [table_cells(r) for r in rep["rows"]]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(HEAD))]
    for row in rows:
        out.append("  ".join(str(c).rjust(widths[i]) if i >= 2 else str(c).ljust(widths[i])
                             for i, c in enumerate(row)))
    out.append("")
    out.append("CPU µs per request (median): redis-benchmark + 3 redis-servers + sidecar = total")
    for e in rep["cpu"]:
        for s, p in e["by_setup"].items():
            out.append(f"  {e['workload']:<14} {s:<8} " + " + ".join(
                fmt(p[label]) for _, label in CPU if p.get(label) is not None) + f" = {fmt(p['total'])}")
    for k, v in sorted(rep["sidecar"].items()):
        out.append(f"  sidecar {k}: {fmt(v['median'])}")
    return "\n".join(out) + "\n"


def markdown(rep):
    m = rep["machine"]
    L = [header(m), "", f"Command: `{m['command']}`", ""]
    L.append("| " + " | ".join(HEAD) + " |")
    L.append("|---|---|" + "---:|" * (len(HEAD) - 2))
    for r in rep["rows"]:
        L.append("| " + " | ".join(table_cells(r)) + " |")
    L.append("")
    L.append("Ratio above 1 is better for req/s, below 1 for latency; sidecar − direct is the "
             "median over rounds of the per-round difference; spread is (max − min) ÷ median over "
             "rounds, direct / sidecar.")
    if rep["cpu"]:
        L.append("")
        L.append("CPU time per request (µs, median; all of it shares the same cores):")
        L.append("")
        L.append("| workload | setup | " + " | ".join(label for _, label in CPU) + " | total |")
        L.append("|---|---|" + "---:|" * (len(CPU) + 1))
        for e in rep["cpu"]:
            for s, p in e["by_setup"].items():
                L.append(f"| {e['workload']} | {s} | " +
                         " | ".join(fmt(p.get(label)) for _, label in CPU) + f" | {fmt(p['total'])} |")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("machine")
    ap.add_argument("results")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    a = ap.parse_args()
    values, rounds, order = load(a.results)
    rep = build(json.load(open(a.machine)), values, rounds, order)
    print(text_table(rep))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rep, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(markdown(rep))


if __name__ == "__main__":
    main()
