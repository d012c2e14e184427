#!/usr/bin/env python3
"""Prints BENCHMARKS.md's CPU tables from the reports scripts/bench_cpu.sh writes (results/cpu/),
so that every number in them is read from a report, not copied by hand.

  python3 scripts/benchmarks_tables.py            # all tables, Markdown, on stdout
  python3 scripts/benchmarks_tables.py mlp        # one of: ladder, squares, mlp, sweep, train
  RESULTS=results/cpu-zen5 python3 scripts/benchmarks_tables.py   # the reports of another run

Only the standard library; GFLOP/s are medians, ratios are of medians from the same report.
"""

import json
import os
import statistics
import sys
from pathlib import Path

RESULTS = Path(os.environ.get("RESULTS") or Path(__file__).resolve().parent.parent / "results" / "cpu")
BASELINES = ["openblas", "gemm-crate", "matrixmultiply"]

# Every product of both seed models' steps at batch 64, in the order of the preset.
MLP_NAMES = {
    "64x128x784:NT": "784-128-10 layer 1 forward",
    "128x784x64:TN": "layer 1 weight grad",
    "64x10x128:NT": "layer 2 forward",
    "10x128x64:TN": "layer 2 weight grad",
    "64x128x10": "hidden gradient",
    "64x512x784:NT": "784-512-256-10 layer 1 forward",
    "512x784x64:TN": "layer 1 weight grad",
    "64x256x512:NT": "layer 2 forward",
    "256x512x64:TN": "layer 2 weight grad",
    "64x512x256": "hidden gradient 2",
    "64x10x256:NT": "layer 3 forward",
    "10x256x64:TN": "layer 3 weight grad",
    "64x256x10": "hidden gradient 3",
}


def records(name):
    return json.loads((RESULTS / name).read_text())["records"]


def shape_of(record):
    shape = "x".join(str(d) for d in record["shape"])
    return shape if record.get("transpose", "NN") == "NN" else f"{shape}:{record['transpose']}"


def by_variant_and_shape(name):
    return {(r["variant"], shape_of(r)): r for r in records(name) if r["status"] == "ok"}


def gflops(table, variant, shape):
    r = table.get((variant, shape))
    return r["gflops"] if r else None


def fmt(v, bold=False):
    if v is None:
        return "—"
    text = f"{v:.1f}"
    return f"**{text}**" if bold else text


def best_baseline(table, shape):
    found = [(gflops(table, b, shape), b) for b in BASELINES if gflops(table, b, shape) is not None]
    return max(found) if found else (None, None)


def ladder():
    """1024³, every rung and baseline, one and two threads."""
    one, two = by_variant_and_shape("gemm-1024-t1.json"), by_variant_and_shape("gemm-1024-t2.json")
    shape = "1024x1024x1024"
    print("| variant | 1 thread | 2 threads |")
    print("|---|---:|---:|")
    for v in [v for v, s in one if s == shape]:
        pair = two.get((v, shape))
        single = " (1 thread)" if pair and pair.get("threads") == 1 else ""
        print(f"| `{v}` | {fmt(gflops(one, v, shape))} | {fmt(gflops(two, v, shape))}{single} |")


def squares():
    """1024³ and 2048³: kernelab's default against OpenBLAS and the fastest baseline."""
    print("| size | threads | kernelab | OpenBLAS | ratio | fastest baseline | ratio |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for size in (1024, 2048):
        for threads in (1, 2):
            t = by_variant_and_shape(f"gemm-{size}-t{threads}.json")
            shape = f"{size}x{size}x{size}"
            ours, blas = gflops(t, "threaded", shape), gflops(t, "openblas", shape)
            best, name = best_baseline(t, shape)
            print(
                f"| {size}³ | {threads} | {fmt(ours)} | {fmt(blas)} | **{ours / blas:.2f}×** | "
                f"{name} {fmt(best)} | {ours / best:.2f}× |"
            )


def mlp():
    """Every seed-model product against the three baselines, one and two threads."""
    one, two = by_variant_and_shape("gemm-mlp-t1.json"), by_variant_and_shape("gemm-mlp-t2.json")
    print(
        "| product | shape | 1 thread: kernelab | OpenBLAS | gemm-crate | vs best | "
        "2 threads: kernelab | OpenBLAS | gemm-crate | vs best |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for shape, name in MLP_NAMES.items():
        cells = []
        for t in (one, two):
            ours = gflops(t, "threaded", shape)
            best, _ = best_baseline(t, shape)
            ratio = ours / best if ours and best else None
            cells += [
                fmt(ours, bold=ratio is not None and ratio >= 1.0),
                fmt(gflops(t, "openblas", shape)),
                fmt(gflops(t, "gemm-crate", shape)),
                f"{ratio:.2f}×" if ratio else "—",
            ]
        print(f"| {name} | {shape} | " + " | ".join(cells) + " |")


def sweep():
    """The one-thread ladder sweep, 64³ to 1024³."""
    t = by_variant_and_shape("ladder-sweep-t1.json")
    variants = list(dict.fromkeys(v for v, _ in t))
    sizes = sorted({int(s.split("x")[0]) for _, s in t})
    print("| n³ (1 thread, GFLOP/s) | " + " | ".join(variants) + " |")
    print("|---|" + "---:|" * len(variants))
    for n in sizes:
        shape = f"{n}x{n}x{n}"
        row = [gflops(t, v, shape) for v in variants]
        top = max(v for v in row if v is not None)
        print(f"| {n} | " + " | ".join(fmt(v, bold=v == top) for v in row) + " |")


def train():
    """The epoch against PyTorch's, per thread count: medians over the epochs of each run."""
    ours = [json.loads(line) for line in (RESULTS / "train-784-128-10.jsonl").read_text().splitlines()]
    theirs_path = RESULTS / "pytorch-train-784-128-10.jsonl"
    theirs = [json.loads(line) for line in theirs_path.read_text().splitlines()] if theirs_path.exists() else []
    print("| 784-128-10 | kernelab acc | PyTorch acc | kernelab s/epoch (median) | PyTorch s/epoch | kernelab / PyTorch |")
    print("|---|---:|---:|---:|---:|---:|")
    for threads in (2, 1):
        k = [r for r in ours if r.get("threads") == threads]
        p = [r for r in theirs if r.get("threads") == threads]
        if not k:
            continue
        k_s = statistics.median(r["epoch_s"] for r in k)
        k_acc = k[-1]["test_acc"] * 100
        if p:
            p_s = statistics.median(r["epoch_s"] for r in p)
            p_acc = p[-1]["test_acc"] * 100
            print(
                f"| {threads} thread{'s' if threads > 1 else ''} | {k_acc:.2f}% | {p_acc:.2f}% | "
                f"{k_s:.3f} | {p_s:.3f} | **{k_s / p_s:.2f}** ({p_s / k_s:.1f}× faster) |"
            )
        else:
            print(f"| {threads} thread{'s' if threads > 1 else ''} | {k_acc:.2f}% | — | {k_s:.3f} | — | — |")


TABLES = {"ladder": ladder, "squares": squares, "mlp": mlp, "sweep": sweep, "train": train}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(TABLES)
    for name in chosen:
        if name not in TABLES:
            sys.exit(f"unknown table {name!r}: one of {', '.join(TABLES)}")
        print(f"\n<!-- {name} -->")
        TABLES[name]()
