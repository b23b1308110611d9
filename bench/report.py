#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into one table (medians, ratios to each peer), the targets
of the benchmark issue marked met / missed, and optional JSON and Markdown files.

    python3 bench/report.py MACHINE.json RESULTS.jsonl [--micro A.json ...] [--json F] [--markdown F]

Standard library only (Debian's python3).
"""
import argparse
import json
import statistics
from collections import defaultdict

SETUPS = ["direct", "stunnel", "haproxy", "sidecar-tcp", "sidecar-unix"]
PEERS = ["direct", "stunnel", "haproxy"]
OURS = ["sidecar-tcp", "sidecar-unix"]


def load(results_path):
    values = defaultdict(list)  # (setup, workload, metric) -> [values by round]
    rounds = defaultdict(dict)  # (setup, workload, metric) -> {round: value}
    units = {}
    with open(results_path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            key = (r["setup"], r["workload"], r["metric"])
            values[key].append(float(r["value"]))
            rounds[key][r["round"]] = float(r["value"])
            units[key] = r.get("unit", "")
    return values, rounds, units


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, unit=""):
    if x is None:
        return "–"
    if unit == "req/s":
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}×"


def spread(xs):
    """(max - min) / median, the rounds' disagreement."""
    if not xs or len(xs) < 2:
        return None
    m = statistics.median(xs)
    return (max(xs) - min(xs)) / m if m else None


def build(machine, values, rounds, units, micro_files):
    workloads = []
    for (_, w, m) in values:
        if (w, m) not in workloads:
            workloads.append((w, m))

    def wl_order(wm):
        w, m = wm
        order = ["churn c=10", "churn c=50", "steady", "pipelined", "1 MB", "latency"]
        for i, p in enumerate(order):
            if w.startswith(p):
                return (i, w, m)
        return (99, w, m)

    rows = []
    # Throughput rows: req/s, higher is better; ratio = ours / peer.
    for w, m in sorted(workloads, key=wl_order):
        if m != "rps":
            continue
        med_by = {s: med(values.get((s, w, m), [])) for s in SETUPS}
        row = {"workload": w, "metric": "req/s (median)", "better": "higher", "medians": med_by,
               "spread": {s: spread(values.get((s, w, m), [])) for s in SETUPS},
               "ratios": {o: {p: ratio(med_by[o], med_by[p]) for p in PEERS} for o in OURS}}
        rows.append(row)
    # Latency rows: absolute percentiles, and the latency each setup adds over direct
    # (computed per round, then the median); ratio = ours / peer, lower is better.
    lat = [wm for wm in workloads if wm[0].startswith("latency")]
    for w, m in sorted(lat, key=lambda wm: ["p50_us", "p99_us", "p999_us"].index(wm[1])
                       if wm[1] in ("p50_us", "p99_us", "p999_us") else 9):
        label = {"p50_us": "p50", "p99_us": "p99", "p999_us": "p99.9"}.get(m, m)
        med_by = {s: med(values.get((s, w, m), [])) for s in SETUPS}
        rows.append({"workload": w, "metric": f"{label} µs", "better": "lower", "medians": med_by,
                     "spread": {s: spread(values.get((s, w, m), [])) for s in SETUPS},
                     "ratios": {o: {p: ratio(med_by[o], med_by[p]) for p in PEERS} for o in OURS}})
        direct = rounds.get(("direct", w, m), {})
        added = {}
        for s in SETUPS:
            if s == "direct":
                continue
            per_round = [v - direct[r] for r, v in rounds.get((s, w, m), {}).items() if r in direct]
            added[s] = med(per_round)
        added["direct"] = 0.0 if direct else None
        rows.append({"workload": w, "metric": f"{label} added over direct, µs", "better": "lower",
                     "medians": added, "spread": {},
                     "ratios": {o: {p: (ratio(added[o], added[p]) if p != "direct" else None)
                                    for p in PEERS} for o in OURS}})

    # CPU per request of the proxy process (µs), a diagnostic.
    cpu_rows = []
    for w, m in sorted(workloads, key=wl_order):
        if m not in ("proxy_cpu_us_per_req", "server_cpu_us_per_req"):
            continue
        med_by = {s: med(values.get((s, w, m), [])) for s in SETUPS}
        cpu_rows.append({"workload": w, "metric": m, "medians": med_by})

    sidecar = {}
    for (s, w, m), xs in values.items():
        if s == "machine":
            continue
        if s == "sidecar" or w == "sidecar" or w.startswith("idle connections"):
            sidecar[f"{w}: {m}" if w != "sidecar" else m] = {"median": med(xs), "values": xs,
                                                             "unit": units[(s, w, m)]}

    micro = []
    for path in micro_files or []:
        try:
            data = json.load(open(path))
        except (OSError, ValueError):
            continue
        for b in data.get("benchmarks", []):
            entry = {"name": b["name"], "real_time_ns": b.get("real_time"),
                     "cpu_time_ns": b.get("cpu_time"), "time_unit": b.get("time_unit")}
            if "bytes_per_second" in b:
                entry["GB_per_s"] = b["bytes_per_second"] / 1e9
            for k in ("frames/s", "resolves/s"):
                if k in b:
                    entry[k] = b[k]
            micro.append(entry)

    round_load = [v for _, v in sorted(rounds.get(("machine", "load", "load1"), {}).items())]
    machine = dict(machine, round_load=round_load)
    targets = evaluate(rows, sidecar)
    return {"machine": machine, "rows": rows, "cpu": cpu_rows, "sidecar": sidecar,
            "micro": micro, "targets": targets,
            "raw": {f"{s}|{w}|{m}": xs for (s, w, m), xs in values.items()}}


def evaluate(rows, sidecar):
    out = []

    def find(prefix, metric_prefix):
        return [r for r in rows if r["workload"].startswith(prefix)
                and r["metric"].startswith(metric_prefix)]

    def check(name, r, ours, peer, want, higher=True):
        got = r["ratios"][ours][peer] if r else None
        if got is None:
            out.append({"target": name, "setup": ours, "figure": None, "met": None})
            return
        met = got >= want if higher else got <= want
        out.append({"target": name, "setup": ours,
                    "figure": f"{got:.2f}× (want {'≥' if higher else '≤'} {want}×)", "met": met})

    for r in find("churn", "req/s"):
        for o in OURS:
            check(f"{r['workload']}: ≥ 10× stunnel", r, o, "stunnel", 10)
            check(f"{r['workload']}: ≥ 5× direct TLS", r, o, "direct", 5)
    for r in find("steady", "req/s") + find("pipelined", "req/s"):
        for o in OURS:
            check(f"{r['workload']}: ≥ 1.0× haproxy", r, o, "haproxy", 1.0)
            check(f"{r['workload']}: ≥ 1.2× stunnel", r, o, "stunnel", 1.2)
            check(f"{r['workload']}: ≥ 0.85× direct", r, o, "direct", 0.85)
    for r in find("latency", "p99 added"):
        for o in OURS:
            a, h = r["medians"].get(o), r["medians"].get("haproxy")
            if a is None or h is None:
                out.append({"target": "added p99 ≤ haproxy's", "setup": o, "figure": None, "met": None})
            else:
                out.append({"target": "added p99 at moderate load ≤ haproxy's", "setup": o,
                            "figure": f"{a:.1f} µs vs haproxy {h:.1f} µs", "met": a <= h})
    idle = sidecar.get("rss_idle_kb")
    if idle:
        out.append({"target": "idle resident memory ≤ 8 MB", "setup": "sidecar",
                    "figure": f"{idle['median'] / 1024:.1f} MB", "met": idle["median"] <= 8 * 1024})
    for k, v in sidecar.items():
        if k.endswith(": kb_per_conn") and "silent" in k:
            out.append({"target": "≤ 16 KB per idle local connection (connected, silent)",
                        "setup": "sidecar", "figure": f"{v['median']:.1f} KB",
                        "met": v["median"] <= 16})
        elif k.endswith(": kb_per_conn"):
            # Not the target's case (the client holds an upstream TLS connection): context only.
            out.append({"target": "(context) KB per local connection after one command, "
                                  "upstream TLS connection included",
                        "setup": "sidecar", "figure": f"{v['median']:.1f} KB", "met": None})
    return out


def markdown(rep):
    m = rep["machine"]
    L = []
    L.append(f"Run {m['date']} on {m['nproc']} cores, {m['cpu_model']}, Linux {m['kernel']} "
             f"({m.get('os', '')}); load average before {m.get('load_before')}, after "
             f"{m.get('load_after')}. {m['rounds']} round(s), setups alternated within each round. "
             f"redis-server {m.get('redis_server')}, redis-benchmark {m.get('redis_benchmark')}, "
             f"stunnel {m.get('stunnel')}, haproxy {m.get('haproxy')} "
             f"({m.get('haproxy_threads', '?')} threads), OpenSSL {m.get('openssl')}; "
             f"redis-sidecar {m.get('sidecar_commit')}." +
             (f" 1-minute load average at the start of each round: "
              f"{', '.join(f'{x:.2f}' for x in m['round_load'])}." if m.get("round_load") else "") +
             (f" Niceness {m['niceness']}." if m.get("niceness") else "") +
             (f" Readiness detected by: {m['readiness_method']}." if m.get("readiness_method") else "") +
             (f" Note: {m['binary_note']}." if m.get("binary_note") else ""))
    L.append("")
    L.append(f"Command: `{m['command']}`")
    L.append("")
    head = ["workload", "metric"] + SETUPS + [f"{o.split('-')[1]} ÷ {p}" for o in OURS for p in PEERS]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    for r in rep["rows"]:
        cells = [r["workload"], r["metric"]]
        unit = "req/s" if r["metric"].startswith("req/s") else ""
        cells += [fmt(r["medians"].get(s), unit) for s in SETUPS]
        cells += [fmt_ratio(r["ratios"][o][p]) for o in OURS for p in PEERS]
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append("Ratios are sidecar ÷ peer: above 1 is better for req/s, below 1 is better for "
             "latency. Largest spread between rounds ((max − min) ÷ median) per setup: " +
             ", ".join(f"{s} {max((r['spread'].get(s) or 0) for r in rep['rows']) * 100:.0f}%"
                       for s in SETUPS) + ".")
    if rep["cpu"]:
        L.append("")
        L.append("CPU time per request (µs, median; proxy = the stunnel / haproxy / sidecar "
                 "process, server = redis-server):")
        L.append("")
        L.append("| workload | cost | " + " | ".join(SETUPS) + " |")
        L.append("|---|---|" + "---:|" * len(SETUPS))
        for r in rep["cpu"]:
            name = "proxy" if r["metric"].startswith("proxy") else "server"
            L.append(f"| {r['workload']} | {name} | " +
                     " | ".join(fmt(r["medians"].get(s)) for s in SETUPS) + " |")
    L.append("")
    L.append("The sidecar's own figures:")
    L.append("")
    L.append("| figure | median | all runs |")
    L.append("|---|---:|---|")
    for k, v in sorted(rep["sidecar"].items()):
        L.append(f"| {k} | {fmt(v['median'])} {v['unit']} | "
                 f"{', '.join(fmt(x) for x in v['values'])} |")
    if rep["micro"]:
        L.append("")
        L.append("Micro-benchmarks (Google Benchmark; Debian's libbenchmark, real time):")
        L.append("")
        L.append("| benchmark | time | throughput |")
        L.append("|---|---:|---:|")
        for b in rep["micro"]:
            t = f"{b['real_time_ns']:,.0f} {b['time_unit']}" if b.get("real_time_ns") else "–"
            if "GB_per_s" in b:
                thr = f"{b['GB_per_s']:.2f} GB/s"
            elif "resolves/s" in b:
                thr = f"{b['resolves/s']:,.0f} resolves/s"
            else:
                thr = ""
            L.append(f"| {b['name']} | {t} | {thr} |")
    L.append("")
    L.append("Targets:")
    L.append("")
    L.append("| target | setup | figure | result |")
    L.append("|---|---|---|---|")
    for t in rep["targets"]:
        res = "–" if t["met"] is None else ("met" if t["met"] else "**missed**")
        L.append(f"| {t['target']} | {t['setup']} | {t['figure'] or '–'} | {res} |")
    return "\n".join(L) + "\n"


def text_table(rep):
    m = rep["machine"]
    out = [f"redis-sidecar benchmark — {m['date']} — {m['nproc']} cores, {m['cpu_model']}, "
           f"Linux {m['kernel']}, load {m.get('load_before')} → {m.get('load_after')}, "
           f"{m['rounds']} round(s)", ""]
    head = ["workload", "metric"] + SETUPS + [f"{o[8:]}/{p}" for o in OURS for p in PEERS]
    rows = [head]
    for r in rep["rows"]:
        unit = "req/s" if r["metric"].startswith("req/s") else ""
        rows.append([r["workload"], r["metric"].replace(" (median)", "")] +
                    [fmt(r["medians"].get(s), unit) for s in SETUPS] +
                    [fmt_ratio(r["ratios"][o][p]) for o in OURS for p in PEERS])
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    for row in rows:
        out.append("  ".join(str(c).rjust(widths[i]) if i >= 2 else str(c).ljust(widths[i])
                             for i, c in enumerate(row)))
    out.append("")
    for k, v in sorted(rep["sidecar"].items()):
        out.append(f"  {k}: {fmt(v['median'])} {v['unit']}  ({', '.join(fmt(x) for x in v['values'])})")
    for b in rep["micro"]:
        extra = f"{b['GB_per_s']:.2f} GB/s" if "GB_per_s" in b else (
            f"{b['resolves/s']:,.0f} resolves/s" if "resolves/s" in b else "")
        out.append(f"  micro {b['name']}: {b['real_time_ns']:,.0f} {b['time_unit']} {extra}")
    out.append("")
    for t in rep["targets"]:
        res = "n/a" if t["met"] is None else ("MET" if t["met"] else "MISSED")
        out.append(f"  [{res:6}] {t['setup']:12} {t['target']}: {t['figure'] or '–'}")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("machine")
    ap.add_argument("results")
    ap.add_argument("--micro", nargs="*", default=[])
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    a = ap.parse_args()
    values, rounds, units = load(a.results)
    rep = build(json.load(open(a.machine)), values, rounds, units, a.micro)
    print(text_table(rep))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rep, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(markdown(rep))


if __name__ == "__main__":
    main()
