#!/usr/bin/env python3
"""Turns the JSON lines of run-peers.sh (one per run of bench/peers) into the tables.

Usage: peers-report.py RUNS.jsonl OUTDIR --machine TEXT --command TEXT [--note TEXT]...

Writes into OUTDIR: peers.md (markdown tables, also printed), peers.csv (one row per workload,
allocator and thread count: medians, min/max, ratio to glibc), runs.csv (every run), peers.json
(the same as peers.csv plus the machine and notes) and scaling.svg (throughput against threads,
one panel per workload, one line per allocator). Standard library only.
"""
import argparse
import csv
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ORDER = ["glibc", "jemalloc", "mimalloc", "tcmalloc", "numalloc"]
COLORS = {"glibc": "#444444", "jemalloc": "#1f77b4", "mimalloc": "#2ca02c",
          "tcmalloc": "#d62728", "numalloc": "#9467bd"}
WORKLOADS = ["larson", "xmalloc", "cache-scratch", "mixed"]
MIB = 1024.0


def load(path):
    runs = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            runs.append(json.loads(line))
    return runs


def aggregate(runs):
    groups = defaultdict(list)
    for r in runs:
        groups[(r["workload"], r["allocator"], r["threads"])].append(r)
    rows = []
    for (workload, allocator, threads), rs in groups.items():
        tput = [r["ops_per_s"] for r in rs]
        rows.append({
            "workload": workload, "allocator": allocator, "threads": threads, "runs": len(rs),
            "iterations": rs[0]["iterations"],
            "ops_per_s": statistics.median(tput), "ops_per_s_min": min(tput), "ops_per_s_max": max(tput),
            "rss_base_kib": statistics.median(r["rss_base_kib"] for r in rs),
            "rss_peak_kib": statistics.median(r["rss_peak_kib"] for r in rs),
            "rss_end_kib": statistics.median(r["rss_end_kib"] for r in rs),
            "peak_live_bytes": statistics.median(r["peak_live_bytes"] for r in rs),
            "frag": statistics.median(r["frag"] for r in rs),
            # -1: the allocator reports no metadata figure (runs older than the figure have none either)
            "metadata_bytes": statistics.median(r.get("metadata_bytes", -1) for r in rs),
            "meta": statistics.median(r.get("meta", -1) for r in rs),
            "rss_settled_kib": statistics.median(r.get("rss_settled_kib", -1) for r in rs),
            "settle_ms": rs[0].get("settle_ms", 0),
            "errors": sum(r["errors"] for r in rs),
            "malloc_from": rs[0]["malloc_from"],
            "realloc": rs[0].get("realloc", "native"),
        })
    by_key = {(r["workload"], r["allocator"], r["threads"]): r for r in rows}
    for r in rows:
        base = by_key.get((r["workload"], "glibc", r["threads"]))
        r["ratio_to_glibc"] = r["ops_per_s"] / base["ops_per_s"] if base and base["ops_per_s"] else None
    key = lambda r: (WORKLOADS.index(r["workload"]) if r["workload"] in WORKLOADS else 99, r["workload"],
                     r["threads"], ORDER.index(r["allocator"]) if r["allocator"] in ORDER else 99)
    return sorted(rows, key=key), by_key


def table(header, lines):
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + " |"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return out


def markdown(rows, by_key, allocators, threads, args):
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in rows)]
    ceiling = [by_key.get(("noalloc", "glibc", t)) for t in (threads[0], threads[-1])]
    nruns = max(r["runs"] for r in rows)
    out = [f"Machine: {args.machine}", "", f"Command: `{args.command}`", ""]
    out += [f"- {note}" for note in args.note]
    emulated = sorted({r["allocator"] for r in rows if r["realloc"] == "emulated"})
    out += [f"- {a}: no realloc export, so the mixed trace's reallocs are malloc + copy + free (1 op)" for a in emulated]
    spreads = sorted((r["ops_per_s_max"] / r["ops_per_s_min"], r["workload"], r["allocator"], r["threads"])
                     for r in rows if r["runs"] > 1 and r["ops_per_s_min"] > 0)
    if spreads:
        worst = spreads[-1]
        out += [f"- run-to-run spread of throughput (fastest / slowest of the {nruns} runs): median "
                f"{statistics.median(s[0] for s in spreads):.2f}, worst {worst[0]:.2f} ({worst[1]}, {worst[2]}, "
                f"{worst[3]} threads)"]
    if args.note or emulated or spreads:
        out.append("")

    out += [f"Throughput, million allocator calls per second (median of {nruns} runs; in parentheses "
            "the ratio to glibc in the same run; higher is better):", ""]
    lines = []
    for w in workloads:
        for t in threads:
            cells = []
            for a in allocators:
                r = by_key.get((w, a, t))
                if r is None:
                    cells.append("–")
                else:
                    flag = " **ERR**" if r["errors"] else ""
                    ratio = f" ({r['ratio_to_glibc']:.2f})" if r["ratio_to_glibc"] is not None else ""
                    cells.append(f"{r['ops_per_s'] / 1e6:.1f}{ratio}{flag}")
            lines.append([w, str(t)] + cells)
    out += table(["workload", "threads"] + allocators, lines) + [""]

    if len(threads) > 1:
        tmax = threads[-1]
        extra = ["no-allocation loop"] if all(ceiling) else []
        out += [f"Scaling, throughput at {tmax} threads / at 1 thread (per-thread work is fixed, so "
                f"{tmax:.1f} would be perfect; xmalloc pairs producers with consumers). The last column is "
                "the same ratio for a loop that never calls the allocator: what this machine gave a plain "
                "loop during the run (below the thread count when other work shares the cores):", ""]
        lines = []
        for w in workloads:
            cells = []
            for a in allocators:
                one, many = by_key.get((w, a, threads[0])), by_key.get((w, a, tmax))
                cells.append(f"{many['ops_per_s'] / one['ops_per_s']:.2f}" if one and many else "–")
            if extra:
                cells.append(f"{ceiling[1]['ops_per_s'] / ceiling[0]['ops_per_s']:.2f}")
            lines.append([w, f"1 → {tmax}"] + cells)
        out += table(["workload", "threads"] + allocators + extra, lines) + [""]

    out += ["Peak RSS, MiB (VmHWM, reset once the allocator is ready; median):", ""]
    lines = []
    for w in workloads:
        for t in threads:
            cells = []
            for a in allocators:
                r = by_key.get((w, a, t))
                cells.append(f"{r['rss_peak_kib'] / MIB:.1f}" if r else "–")
            lines.append([w, str(t)] + cells)
    out += table(["workload", "threads"] + allocators, lines) + [""]

    out += ["Memory efficiency on the mixed trace: peak RSS above the allocator-ready baseline "
            "divided by the peak live bytes requested (the fragmentation ratio; 1.00 is perfect, "
            "lower is better), the RSS still held above the baseline after every object was freed, and "
            "the allocator's own metadata figure divided by the peak live bytes (metadata bytes per "
            "allocated byte; numalloc: committed page descriptors, slab tables and caches from "
            "na_stats_json; jemalloc: stats.metadata; tcmalloc: \"Bytes in malloc metadata\"; "
            "glibc and mimalloc report none, shown as –):", ""]
    lines = []
    settle_ms = max((r["settle_ms"] for r in by_key.values() if r["workload"] == "mixed"), default=0)
    for t in threads:
        for a in allocators:
            r = by_key.get(("mixed", a, t))
            if r is None:
                continue
            lines.append([a, str(t), f"{r['peak_live_bytes'] / MIB / MIB:.1f}",
                          f"{(r['rss_peak_kib'] - r['rss_base_kib']) / MIB:.1f}", f"{r['frag']:.2f}",
                          f"{(r['rss_end_kib'] - r['rss_base_kib']) / MIB:.1f}",
                          f"{r['meta']:.3f}" if r["meta"] >= 0 else "–"]
                         + ([f"{(r['rss_settled_kib'] - r['rss_base_kib']) / MIB:.1f}"] if settle_ms else []))
    out += table(["allocator", "threads", "peak live MiB", "peak RSS − base MiB", "fragmentation",
                  "RSS after free-all − base MiB", "metadata bytes per allocated byte"]
                 + ([f"RSS {settle_ms / 1000:g} s after free-all − base MiB"] if settle_ms else []), lines) + [""]
    return out


def nice_step(raw):
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least raw."""
    power = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def svg(rows, by_key, allocators, threads, machine):
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in rows)]
    pw, ph, ml, mr, mt, mb = 330, 230, 58, 16, 30, 40
    cols = 2
    nrows = (len(workloads) + cols - 1) // cols
    width, legend_h = cols * pw, 62
    height = nrows * ph + legend_h
    esc = lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">Throughput against threads '
         f'(M allocator calls/s, median)</text>',
         f'<text x="{width / 2}" y="31" text-anchor="middle" fill="#666">{esc(machine)}</text>']
    for i, w in enumerate(workloads):
        x0, y0 = (i % cols) * pw, legend_h + (i // cols) * ph
        vals = [by_key[(w, a, t)]["ops_per_s"] / 1e6 for a in allocators for t in threads if (w, a, t) in by_key]
        step = nice_step(max(vals) * 1.05 / 4 if vals else 0.25)
        ymax = step * 4
        px = lambda t: x0 + ml + (pw - ml - mr) * ((t - threads[0]) / (threads[-1] - threads[0]) if len(threads) > 1 else 0.5)
        py = lambda v: y0 + mt + (ph - mt - mb) * (1 - v / ymax)
        o.append(f'<text x="{x0 + ml + (pw - ml - mr) / 2}" y="{y0 + 18}" text-anchor="middle" '
                 f'font-weight="bold">{esc(w)}</text>')
        o.append(f'<rect x="{x0 + ml}" y="{y0 + mt}" width="{pw - ml - mr}" height="{ph - mt - mb}" '
                 f'fill="none" stroke="#999"/>')
        for k in range(5):
            v = step * k
            o.append(f'<line x1="{x0 + ml}" x2="{x0 + pw - mr}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#eee"/>')
            o.append(f'<text x="{x0 + ml - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        for t in threads:
            o.append(f'<text x="{px(t):.1f}" y="{y0 + ph - mb + 14}" text-anchor="middle">{t}</text>')
        o.append(f'<text x="{x0 + ml + (pw - ml - mr) / 2}" y="{y0 + ph - 8}" text-anchor="middle" fill="#666">threads</text>')
        for a in allocators:
            pts = [(px(t), py(by_key[(w, a, t)]["ops_per_s"] / 1e6)) for t in threads if (w, a, t) in by_key]
            if not pts:
                continue
            color = COLORS.get(a, "#000")
            o.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
            o += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in pts]
    lx = width / 2 - 45 * len(allocators)
    for a in allocators:
        o.append(f'<rect x="{lx:.0f}" y="{41}" width="14" height="4" fill="{COLORS.get(a, "#000")}"/>')
        o.append(f'<text x="{lx + 18:.0f}" y="{47}">{esc(a)}</text>')
        lx += 90
    o.append("</svg>")
    return "\n".join(o) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("outdir")
    ap.add_argument("--machine", default="?")
    ap.add_argument("--command", default="?")
    ap.add_argument("--note", action="append", default=[])
    args = ap.parse_args()
    runs = load(args.runs)
    if not runs:
        print("peers-report: no runs", file=sys.stderr)
        return 1
    out = Path(args.outdir)
    rows, by_key = aggregate(runs)
    present = {r["allocator"] for r in rows}
    allocators = [a for a in ORDER if a in present] + sorted(present - set(ORDER))
    threads = sorted({r["threads"] for r in rows})

    fields = ["workload", "allocator", "threads", "runs", "iterations", "ops_per_s", "ops_per_s_min",
              "ops_per_s_max", "ratio_to_glibc", "rss_base_kib", "rss_peak_kib", "rss_end_kib",
              "peak_live_bytes", "frag", "metadata_bytes", "meta", "rss_settled_kib", "settle_ms", "errors", "realloc", "malloc_from"]
    with open(out / "peers.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=fields)
        wr.writeheader()
        wr.writerows(rows)
    with open(out / "runs.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(runs[0].keys()))
        wr.writeheader()
        wr.writerows(runs)
    (out / "peers.json").write_text(json.dumps(
        {"machine": args.machine, "command": args.command, "notes": args.note, "results": rows}, indent=1) + "\n")
    md = "\n".join(markdown(rows, by_key, allocators, threads, args)) + "\n"
    (out / "peers.md").write_text(md)
    (out / "scaling.svg").write_text(svg(rows, by_key, allocators, threads, args.machine))
    print(md, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
