#!/usr/bin/env python3
"""The table behind `kernelab distill`'s defaults, from scripts/distill_sweep.sh's JSON lines.

    scripts/distill_sweep_summary.py [results/cpu/distill-sweep.jsonl]

For every (temperature, alpha): the label-only and the distilled student's final test accuracy and
the distilled one's gain, each as mean ± sample standard deviation over the seeds, best gain first.
"""
import json
import statistics
import sys
from collections import defaultdict


def mean_sd(values):
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def main(path):
    last = {}
    teacher = None
    for line in open(path):
        r = json.loads(line)
        if r["model"] == "teacher":
            teacher = r
            continue
        key = (r["temperature"], r["alpha"], r["seed"], r["model"])
        if key not in last or r["epoch"] > last[key]["epoch"]:
            last[key] = r
    runs = defaultdict(lambda: defaultdict(dict))
    for (t, alpha, seed, model), r in last.items():
        runs[(t, alpha)][seed][model] = 100.0 * r["test_acc"]
    rows = []
    for (t, alpha), seeds in runs.items():
        pairs = [(s["student"], s["distilled"]) for s in seeds.values() if {"student", "distilled"} <= s.keys()]
        gains = [d - p for p, d in pairs]
        rows.append((statistics.mean(gains), t, alpha, pairs, gains))
    rows.sort(reverse=True)
    if teacher:
        print(f"teacher {100.0 * teacher['test_acc']:.2f}% after {teacher['epoch']} epochs\n")
    print("| T | alpha | seeds | label-only % | distilled % | gain (points) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for _, t, alpha, pairs, gains in rows:
        plain = mean_sd([p for p, _ in pairs])
        distilled = mean_sd([d for _, d in pairs])
        print(f"| {t:g} | {alpha:g} | {len(pairs)} | {plain} | {distilled} | {mean_sd(gains)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/cpu/distill-sweep.jsonl")
