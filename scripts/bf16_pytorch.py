#!/usr/bin/env python3
"""PyTorch's CPU matmul in bf16 and f32 (oneDNN / MKL) beside kernelab's own rows, in the same
minutes: an external reference for the bf16 GEMM.

    scripts/bf16_pytorch.py --python /tmp/torchenv/bin/python --kernelab target/release/kernelab \
        --sizes 1024,2048 --threads 1,2 --rounds 3 --out results/precision/pytorch-bf16.json

Rounds are interleaved: in every round, for every thread count and size, PyTorch's f32 and bf16
products are timed (a median of `--repeat` runs after 3 warm-ups, in a child process pinned to
that thread count), then `kernelab bench --op matmul --dtype f32,bf16 --shape NxNxN --threads T`
runs with a short budget; so a slow minute of the shared machine falls on both. The summary takes,
per size and thread count, the median over rounds of each side's GFLOP/s (2·n³ per product) and
the ratios of kernelab's bf16 rows to PyTorch bf16 and to kernelab's own f32 default.

PyTorch is checked, not assumed: one product of each type runs once with ONEDNN_VERBOSE=1 and the
implementation oneDNN chose (e.g. `brg_matmul:avx512_core_amx` or `brg_matmul:avx512_core_bf16`)
is recorded; a bf16 product that oneDNN did not run (MKL or a reference path) is said so.
Without `--kernelab` only PyTorch is timed.

With `--peak BIN` (the `bf16_profile` example, release build) every round also runs the
`vdpbf16ps` peak probe (`BIN --peak-only --rounds 1`) between the products, and the summary ends
with the issue's target table: per size and thread count, kernelab's best bf16 row against its
own best f32 row (target ≥ 1.8×), against the one-thread bf16 peak (target ≥ 85%, one thread
only) and against PyTorch's bf16 matmul (target ≥ 1×), each from the medians over the rounds.
`--reports DIR` keeps every kernelab report and peak JSON there instead of discarding them."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, statistics, sys, time, torch
n, threads, repeat = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
for name, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    for _ in range(3):
        torch.matmul(a, b)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    out[name] = 2 * n**3 / statistics.median(times) / 1e9
print(json.dumps(out))
"""

PROBE = r"""
import torch
torch.set_num_threads(1)
for dtype in (torch.float32, torch.bfloat16):
    a = torch.ones(256, 256, dtype=dtype)
    torch.matmul(a, a)
"""


def torch_gflops(python: str, n: int, threads: int, repeat: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run([python, "-c", CHILD, str(n), str(threads), str(repeat)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def onednn_kernels(python: str) -> list[str]:
    """The primitives oneDNN ran for a 256³ f32 and bf16 matmul (its verbose lines)."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1")
    done = subprocess.run([python, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return [line for line in done.stdout.splitlines() if ",exec," in line and "matmul" in line]


def row_precision(record: dict) -> str:
    """A record's precision as `storage→accumulate`, whatever the report calls it."""
    for key in ("precision", "dtype"):
        value = record.get(key)
        if isinstance(value, dict):
            return f"{value.get('storage')}→{value.get('accumulate')}"
        if value:
            return str(value)
    return "f32→f32"


def kernelab_rows(binary: str, n: int, threads: int, budget: float, keep: str | None = None,
                  variants: str = "all") -> list[dict]:
    """kernelab's checked f32 and bf16 matmul rows (of `variants`, comma-separated, or all) at n³
    on `threads` threads; the report is written to `keep` when given (else to a temporary file)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = keep or os.path.join(tmp, "report.json")
        cmd = [binary, "bench", "--op", "matmul", "--backend", "cpu", "--dtype", "f32,bf16",
               "--shape", f"{n}x{n}x{n}", "--threads", str(threads), "--budget", str(budget), "--variant", variants, "--json", report]
        subprocess.run(cmd, capture_output=True, text=True)
        if not os.path.exists(report):
            raise SystemExit(f"kernelab wrote no report: {' '.join(cmd)}")
        with open(report) as f:
            records = json.load(f)["records"]
    return [{"variant": r["variant"], "precision": row_precision(r), "gflops": r["gflops"],
             "baseline": bool(r.get("baseline"))}
            for r in records if r.get("status") == "ok" and r.get("gflops")]


def bf16_peak(binary: str, keep: str | None = None) -> float:
    """The one-thread `vdpbf16ps` peak in GFLOP/s from the `bf16_profile` example's probe."""
    with tempfile.TemporaryDirectory() as tmp:
        path = keep or os.path.join(tmp, "peak.json")
        subprocess.run([binary, "--peak-only", "--rounds", "1", "--json", path], capture_output=True, text=True)
        if not os.path.exists(path):
            raise SystemExit(f"{binary} wrote no peak (does this CPU have vdpbf16ps?)")
        with open(path) as f:
            return float(json.load(f)["best_gflops"]["peak dpbf16 1t"])


def best_own(medians: dict[str, float], precision: str) -> tuple[str, float]:
    """kernelab's fastest non-baseline row of `precision` (`f32→f32`, `bf16→f32`, as `row_precision` names them) among the medians."""
    rows = [(k, v) for k, v in medians.items() if k.startswith("kernelab ") and k.endswith(f" {precision}")
            and not k.startswith("kernelab baseline ")]
    return max(rows, key=lambda kv: kv[1], default=("none", float("nan")))


def targets(summary: list[dict], peak: float | None) -> list[dict]:
    """The issue's targets per cell: bf16 ÷ own f32 ≥ 1.8, bf16 ÷ peak ≥ 0.85 (one thread), bf16 ÷
    PyTorch bf16 ≥ 1; `met` is None where a figure is missing."""
    rows = []
    for cell in summary:
        m = cell["gflops"]
        (bf_name, bf), (f_name, f) = best_own(m, "bf16→f32"), best_own(m, "f32→f32")
        checks = [("bf16 / own f32", bf / f, 1.8), ("bf16 / PyTorch bf16", bf / m.get("torch bf16", float("nan")), 1.0)]
        if cell["threads"] == 1 and peak:
            checks.append(("bf16 / bf16 peak", bf / peak, 0.85))
        for name, ratio, goal in checks:
            rows.append({"n": cell["n"], "threads": cell["threads"], "target": name, "ratio": ratio, "goal": goal,
                         "met": None if ratio != ratio else ratio >= goal, "bf16 row": bf_name, "f32 row": f_name})
    return rows


def print_targets(rows: list[dict]) -> None:
    print("\n| size | threads | target | ratio | goal | met | rows |")
    print("|------|---------|--------|-------|------|-----|------|")
    for r in rows:
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        print(f"| {r['n']}³ | {r['threads']} | {r['target']} | {r['ratio']:.2f} | ≥ {r['goal']} | {met} "
              f"| {r['bf16 row']} vs {r['f32 row']} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="a Python with torch")
    ap.add_argument("--kernelab", help="the kernelab binary (release build)")
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--budget", type=float, default=1.5, help="kernelab's --budget per row, seconds")
    ap.add_argument("--variants", default="all",
                    help="kernelab's matmul variants, comma-separated (default: all; the naive ones take minutes at 2048³)")
    ap.add_argument("--out", help="write the summary JSON here")
    ap.add_argument("--peak", help="the bf16_profile example binary: time the vdpbf16ps peak every round")
    ap.add_argument("--reports", help="keep every kernelab report and peak JSON in this folder")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]

    kernels = onednn_kernels(args.python)
    print("oneDNN ran:", *kernels or ["no oneDNN matmul (PyTorch used another library)"], sep="\n  ")
    samples: dict[tuple, dict[str, list[float]]] = {}
    peaks: list[float] = []
    if args.reports:
        os.makedirs(args.reports, exist_ok=True)
    keep = (lambda name: os.path.join(args.reports, name)) if args.reports else (lambda name: None)
    for r in range(args.rounds):
        if args.peak:
            peaks.append(bf16_peak(args.peak, keep(f"peak-round{r + 1}.json")))
            print(f"round {r + 1}: vdpbf16ps peak, 1 thread: {peaks[-1]:.0f} GFLOP/s", flush=True)
        for t in threads:
            for n in sizes:
                cell = samples.setdefault((n, t), {})
                got = torch_gflops(args.python, n, t, args.repeat)
                for name in ("f32", "bf16"):
                    cell.setdefault(f"torch {name}", []).append(got[name])
                if args.kernelab:
                    report = keep(f"kernelab-{n}-{t}t-round{r + 1}.json")
                    for row in kernelab_rows(args.kernelab, n, t, args.budget, report, args.variants):
                        kind = "baseline " if row["baseline"] else ""
                        key = f"kernelab {kind}{row['variant']} {row['precision']}"
                        cell.setdefault(key, []).append(row["gflops"])
                print(f"round {r + 1}: {n}³, {t} thread(s): torch f32 {got['f32']:.0f}, bf16 {got['bf16']:.0f} GFLOP/s",
                      flush=True)

    summary = []
    for (n, t), cell in sorted(samples.items()):
        medians = {name: statistics.median(v) for name, v in cell.items()}
        summary.append({"n": n, "threads": t, "gflops": medians, "rounds": cell})
        print(f"\n{n}x{n}x{n}, {t} thread(s), median GFLOP/s over {args.rounds} rounds:")
        for name, value in sorted(medians.items(), key=lambda kv: -kv[1]):
            vs = value / medians["torch bf16"]
            print(f"  {name:40s} {value:8.1f}   {vs:5.2f}x torch bf16")
    peak = statistics.median(peaks) if peaks else None
    table = targets(summary, peak) if args.kernelab else []
    if peak:
        print(f"\nvdpbf16ps peak, 1 thread, median over {len(peaks)} rounds: {peak:.0f} GFLOP/s")
    if table:
        print_targets(table)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"sizes": sizes, "threads": threads, "rounds": args.rounds, "onednn": kernels,
                       "kernelab": args.kernelab, "cells": summary, "bf16_peak_1t": peak, "peaks": peaks,
                       "targets": table}, f, indent=1)


if __name__ == "__main__":
    main()
