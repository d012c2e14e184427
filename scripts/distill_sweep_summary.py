#!/usr/bin/env python3
"""The tables behind `kernelab distill`'s defaults, from scripts/distill_sweep.sh's folder.

    scripts/distill_sweep_summary.py [results/distill]

Reads kernelab-sweep.jsonl (and pytorch-sweep.jsonl, teacher.jsonl when present). For every
(temperature, alpha): the label-only and the distilled student's final test accuracy and the
distilled one's gain over the label-only student of the same seed, each as mean ± sample standard
deviation over the seeds, for kernelab and PyTorch side by side, best kernelab gain first. Then the
controls, which must show no effect: at alpha = 0 the gain of every seed is exactly 0, and a
seed's label-only student is the same at every grid point (kernelab trains it once per point).
Exits 1 when a control fails.
"""
import json
import os
import statistics
import sys
from collections import defaultdict


def mean_sd(values):
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def finals(path):
    """{(model, seed, T, alpha): (epoch, accuracy %)} from the last epoch of each run."""
    last = {}
    for line in open(path):
        r = json.loads(line)
        if r["model"] not in ("student", "distilled"):
            continue
        key = (r["model"], r["seed"], r.get("temperature"), r.get("alpha"))
        if key not in last or r["epoch"] >= last[key][0]:
            last[key] = (r["epoch"], 100.0 * r["test_acc"])
    return last


def sweep(path):
    """({(T, alpha): {seed: (label-only, distilled)}}, label-only accuracies of each seed)."""
    last = finals(path)
    plain = defaultdict(list)
    for (model, seed, _, _), (_, acc) in last.items():
        if model == "student":
            plain[seed].append(acc)
    grid = defaultdict(dict)
    for (model, seed, t, alpha), (_, acc) in last.items():
        if model == "distilled" and plain[seed]:
            # kernelab's label-only student of this grid point, else (PyTorch) the seed's one.
            own = last.get(("student", seed, t, alpha), (None, plain[seed][0]))[1]
            grid[(t, alpha)][seed] = (own, acc)
    return grid, plain


def main(folder):
    ours, our_plain = sweep(os.path.join(folder, "kernelab-sweep.jsonl"))
    theirs_path = os.path.join(folder, "pytorch-sweep.jsonl")
    theirs, their_plain = sweep(theirs_path) if os.path.exists(theirs_path) else ({}, {})
    teacher_path = os.path.join(folder, "teacher.jsonl")
    if os.path.exists(teacher_path):
        t = [json.loads(line) for line in open(teacher_path)][-1]
        print(f"teacher 784-512-256-10: {100.0 * t['test_acc']:.2f}% after {t['epoch']} epochs\n")

    def row(runs):
        pairs = list(runs.values())
        gains = [d - p for p, d in pairs]
        return [mean_sd([p for p, _ in pairs]), mean_sd([d for _, d in pairs]), mean_sd(gains)], gains

    print("| T | alpha | seeds | kernelab label-only % | kernelab distilled % | kernelab gain (points) "
          "| PyTorch label-only % | PyTorch distilled % | PyTorch gain (points) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    order = sorted(ours, key=lambda k: -statistics.mean(d - p for p, d in ours[k].values()))
    for key in order:
        cells, _ = row(ours[key])
        other, _ = row(theirs[key]) if key in theirs else (["–"] * 3, [])
        t, alpha = key
        print(f"| {t:g} | {alpha:g} | {len(ours[key])} | " + " | ".join(cells + other) + " |")

    print("\nControls (must show no effect):")
    failed = False
    for name, grid, plain in (("kernelab", ours, our_plain), ("PyTorch", theirs, their_plain)):
        zero = [d - p for (t, alpha), runs in grid.items() if alpha == 0 for p, d in runs.values()]
        if zero:
            worst = max(abs(g) for g in zero)
            ok = worst == 0.0
            failed |= not ok
            print(f"- {name}, alpha = 0: distilled − label-only on {len(zero)} seeds, largest |gain| "
                  f"{worst:.4f} points ({'exactly 0: pass' if ok else 'FAIL'})")
        repeats = {seed: accs for seed, accs in plain.items() if len(accs) > 1}
        if repeats:
            spread = max(max(a) - min(a) for a in repeats.values())
            ok = spread == 0.0
            failed |= not ok
            print(f"- {name}, the same seed's label-only student trained {min(map(len, repeats.values()))} times: "
                  f"largest spread {spread:.4f} points ({'identical: pass' if ok else 'FAIL'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "results/distill"))
