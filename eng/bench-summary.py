#!/usr/bin/env python3
"""Compact tables from one BenchmarkDotNet run: artifacts/bench/summary.md.

BenchmarkDotNet's own GitHub tables carry every job column for every case; the README wants one
table per suite with the contenders side by side. Reads the newest *-report-full.json under
artifacts/bench/results/ and the counter sidecars under artifacts/bench/counters/ (written by the
benchmarks, see Allocator.Bench/Benchmarks/CounterSidecar.cs).

Usage: eng/bench-summary.py [ARTIFACTS_DIR]   (default: artifacts/bench)
"""
import glob
import json
import os
import re
import sys

# The baseline method of each suite (the one marked Baseline = true): ratios are to it, same parameters.
BASELINES = {
    "ObjectBenchmarks": "NativeMemoryPair",
    "ObjectBatchBenchmarks": "NativeMemoryBatch",
    "PageBenchmarks": "NativeMemoryAligned",
    "PageOrderBenchmarks": "MmapPair",
    "ObjectScalingBenchmarks": "NoAllocation",
}
COUNTERS = [("MagazineMisses", "mag. misses"), ("CrossNodeFrees", "remote frees"), ("CacheRefills", "refills"),
            ("CacheFlushes", "flushes"), ("ZoneAllocations", "zone allocs"), ("ZonelistRestarts", "restarts")]


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:,.1f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:,.1f} µs"
    return f"{ns:,.1f} ns"


def fmt_size(value):
    n = int(value)
    return f"{n >> 10} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def case_key(type_name, method, params):
    # Same key as CounterSidecar.CaseKey, then the same file-name filter as CounterSidecar.PathOf.
    inner = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{type_name}.{method}({inner})"


def sidecar_path(directory, key):
    return os.path.join(directory, re.sub(r"[^A-Za-z0-9.=,-]", "_", key) + ".json")


def parse_params(text):
    params = {}
    for part in filter(None, (text or "").split("&")):
        name, _, value = part.partition("=")
        params[name] = value
    return params


def load(artifacts):
    runs = sorted(glob.glob(os.path.join(artifacts, "results", "*-report-full.json")), key=os.path.getmtime)
    if not runs:
        sys.exit(f"bench-summary: no *-report-full.json under {artifacts}/results")
    with open(runs[-1], encoding="utf-8") as f:
        data = json.load(f)
    cases = []
    for b in data["Benchmarks"]:
        stats = b.get("Statistics")
        if not stats:
            continue
        params = parse_params(b.get("Parameters"))
        counters = None
        path = sidecar_path(os.path.join(artifacts, "counters"), case_key(b["Type"], b["Method"], params))
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                counters = json.load(f)
        cases.append({"type": b["Type"], "method": b["Method"], "title": b["MethodTitle"].strip("'"),
                      "params": params, "mean": stats["Mean"], "median": stats["Median"],
                      "min": stats["Min"], "max": stats["Max"], "counters": counters})
    return runs[-1], data.get("HostEnvironmentInfo", {}), cases


def table(cases, type_name):
    rows = [c for c in cases if c["type"] == type_name]
    if not rows:
        return ""
    baseline = BASELINES.get(type_name)
    param_names = sorted({k for c in rows for k in c["params"]})
    used = [(key, label) for key, label in COUNTERS if any(c["counters"] and c["counters"].get(key) for c in rows)]
    head = ["case"] + param_names + ["mean", "median", "min", "max"] + (["ratio"] if baseline else []) + [f"{label}/op" for _, label in used]
    out = ["| " + " | ".join(head) + " |", "| --- | " + " | ".join("---:" for _ in head[1:]) + " |"]
    for c in rows:
        cells = [c["title"]]
        for p in param_names:
            value = c["params"].get(p, "")
            cells.append(fmt_size(value) if p == "Size" and value else value)
        cells += [fmt_time(c[k]) for k in ("mean", "median", "min", "max")]
        if baseline:
            base = next((b for b in rows if b["method"] == baseline and b["params"] == c["params"]), None)
            cells.append(f"{c['mean'] / base['mean']:.2f}" if base else "")
        for key, _ in used:
            cells.append(f"{c['counters'][key]:.4f}" if c["counters"] else "")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    artifacts = sys.argv[1] if len(sys.argv) > 1 else "artifacts/bench"
    source, host, cases = load(artifacts)
    order = ["ObjectBenchmarks", "ObjectBatchBenchmarks", "PageBenchmarks", "PageOrderBenchmarks",
             "MultiThreadBenchmarks", "ObjectScalingBenchmarks", "HotplugThroughputBenchmarks",
             "HotplugObjectThroughputBenchmarks", "HotplugOfflineBenchmarks"]
    types = order + sorted({c["type"] for c in cases} - set(order))
    lines = [f"# BenchmarkDotNet summary", "",
             f"From `{os.path.relpath(source, artifacts)}`: {host.get('OsVersion', '?')}, {host.get('ProcessorName', '?')}, "
             f"{host.get('LogicalCoreCount', '?')} logical cores, {host.get('RuntimeVersion', '?')}. Times per operation; "
             "ratio = mean / the suite's baseline (same parameters); counters per operation from the allocator's own statistics.", ""]
    for t in types:
        body = table(cases, t)
        if body:
            lines += [f"## {t}", "", body, ""]
    path = os.path.join(artifacts, "summary.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"bench-summary: {path}")


if __name__ == "__main__":
    main()
