#!/usr/bin/env python3
"""A/A acceptance of `kernelab compare`: do identical runs compare as identical, and is a real
slowdown still found?

1. Calibrates the machine's noise floor from CALIBRATION_RUNS runs of one short `kernelab bench`
   command (`compare --calibrate`), in a private cache directory (the roofline is copied in from
   the usual one when there is one, so it is not measured again): under the conditions of each
   load setting (--calibrate-under each, the default), or once without load for all of them
   (--calibrate-under off, which shows what an idle machine's floor is worth under load).
2. Runs PAIRS A/A pairs of that command, back to back, without and/or with other processes
   spinning on the CPU (--load), and compares each pair with `--threshold`: counts each row's
   verdicts and the exit statuses. The issue's acceptance: at least 95% of rows `same` or
   `undecided` and no exit status 1. Exit status 3 (no row stands out, but the whole run is
   surely slower than the threshold: `compare` cannot tell the machine from the code) is counted
   apart, with each pair's whole-run shift.
3. Runs SLOWDOWN_PAIRS pairs whose second run slows one CPU variant down on purpose
   (KERNELAB_TEST_SLOWDOWN, only in a build with the cargo feature `slowdown-knob`, see
   crates/bench/src/slowdown.rs) and counts how often its rows come out `slower` and the gate
   fails. Skipped, with a note, when the binary lacks the feature.

Prints a summary and writes everything (settings, each comparison's verdicts, the floor) as JSON
under results/compare_aa/ (or --out).

Build once:   cargo build --release --features slowdown-knob
Quick check:  scripts/compare_aa.py --pairs 1 --calibration-runs 2 --slowdown-pairs 1 --budget 0.02 --repeat 5
Measurement:  scripts/compare_aa.py --pairs 10 --load both
One thread, idle and beside one busy loop (the quiet-machine acceptance):
              scripts/compare_aa.py --threads 1 --load both --load-procs 1 --pairs 10 --slowdown direct_avx512:10
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def arguments():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernelab", default=str(ROOT / "target/release/kernelab"), help="the binary (default: %(default)s)")
    p.add_argument("--pairs", type=int, default=10, help="A/A pairs per load setting (default: %(default)s)")
    p.add_argument("--calibration-runs", type=int, default=10, help="runs for the noise floor (default: %(default)s)")
    p.add_argument("--load", choices=["off", "on", "both"], default="both", help="CPU load during the A/A pairs")
    p.add_argument("--calibrate-under", choices=["each", "off"], default="each",
                   help="calibrate under each load setting's conditions, or once without load (default: %(default)s)")
    p.add_argument("--load-procs", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="busy-loop processes when loaded (default: half the logical cores, %(default)s)")
    p.add_argument("--slowdown", default="threaded:10", help="VARIANT:PERCENT slowed on purpose (default: %(default)s)")
    p.add_argument("--slowdown-pairs", type=int, default=3, help="pairs with the slowdown (default: %(default)s)")
    p.add_argument("--threshold", default="5%", help="compare's gate (default: %(default)s)")
    p.add_argument("--ops", default="matmul,relu,softmax")
    p.add_argument("--shape", default="64x256x256,65536,256x1000", help="one shape per op (default: %(default)s)")
    p.add_argument("--variant", default="all")
    p.add_argument("--budget", default="0.3", help="bench --budget, seconds per row (default: %(default)s)")
    p.add_argument("--repeat", default="30", help="bench --repeat (default: %(default)s)")
    p.add_argument("--threads", default=None, help="bench --threads (default: every core)")
    p.add_argument("--out", default=None, help="the JSON summary (default: results/compare_aa/compare_aa-TIME.json)")
    a = p.parse_args()
    if a.pairs < 0 or a.slowdown_pairs < 0 or a.calibration_runs < 2:
        p.error("--pairs and --slowdown-pairs must be ≥ 0 and --calibration-runs ≥ 2")
    if not re.fullmatch(r"[A-Za-z0-9_-]+:[0-9.]+%?", a.slowdown):
        p.error(f"--slowdown {a.slowdown}: expected VARIANT:PERCENT, e.g. threaded:10")
    return a


class Runner:
    """Runs kernelab with a private cache directory and keeps its reports in a work directory."""

    def __init__(self, a, work: Path):
        self.a, self.work, self.count = a, work, 0
        self.use_cache("off")

    def use_cache(self, label):
        """Runs from now on keep their roofline and noise floor in the work directory's `cache-LABEL`."""
        cache = self.work / f"cache-{label}"
        self.env = dict(os.environ, KERNELAB_CACHE_DIR=str(cache))
        self.env.pop("KERNELAB_TEST_SLOWDOWN", None)
        if not cache.exists():
            cache.mkdir()
            # One ceilings file per build opt-level (roofline-cpu-O3.json for a release build).
            for roofline in usual_cache().glob("roofline-cpu-O*.json"):
                shutil.copy(roofline, cache / roofline.name)
        return cache

    def calibrate(self, label):
        """The noise floor from CALIBRATION_RUNS runs, kept in the current cache; returns its file."""
        print(f"calibrating the noise floor from {self.a.calibration_runs} runs, load {label}", flush=True)
        runs = [self.bench(f"cal-{label}{i}") for i in range(self.a.calibration_runs)]
        out = self.kernelab(["compare", "--calibrate", *map(str, runs)]).stdout
        print("  " + out.strip().splitlines()[-1], flush=True)
        cache = Path(self.env["KERNELAB_CACHE_DIR"])
        return json.loads((cache / "noise.json").read_text()), json.loads(runs[0].read_text())

    def kernelab(self, args, env=None, check=True):
        out = subprocess.run([self.a.kernelab, *args], env=env or self.env, capture_output=True, text=True)
        if check and out.returncode != 0:
            sys.exit(f"kernelab {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
        return out

    def bench(self, tag, slowdown=None):
        self.count += 1
        path = self.work / f"{self.count:03d}-{tag}.json"
        args = ["bench", "--backend", "cpu", "--op", self.a.ops, "--shape", self.a.shape, "--variant",
                self.a.variant, "--budget", self.a.budget, "--repeat", self.a.repeat, "--json", str(path)]
        if self.a.threads:
            args += ["--threads", self.a.threads]
        env = dict(self.env, KERNELAB_TEST_SLOWDOWN=slowdown) if slowdown else None
        self.kernelab(args, env=env)
        return path

    def compare(self, base, new):
        out_json = new.with_suffix(".compare.json")
        out = self.kernelab(["compare", str(base), str(new), "--threshold", self.a.threshold, "--json", str(out_json)],
                            check=False)
        if out.returncode not in (0, 1, 3):
            sys.exit(f"compare {base} {new} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
        result = json.loads(out_json.read_text())
        return out.returncode, result


def usual_cache() -> Path:
    for var, sub in (("KERNELAB_CACHE_DIR", ""), ("XDG_CACHE_HOME", "kernelab")):
        if os.environ.get(var):
            return Path(os.environ[var]) / sub
    return Path.home() / ".cache" / "kernelab"


def row_name(key):
    shape = "x".join(map(str, key["shape"])) + (f":{key['transpose']}" if key.get("transpose") not in (None, "NN") else "")
    return f"{key['op']} {key['variant']} {shape} {key['threads']}t"


class Load:
    """`procs` processes spinning on the CPU while the block runs."""

    def __init__(self, procs):
        self.procs, self.children = procs, []

    def __enter__(self):
        for _ in range(self.procs):
            self.children.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        return self

    def __exit__(self, *exc):
        for child in self.children:
            child.kill()
            child.wait()


def cores_note(result):
    """What other processes took of the cores in each run, and how many rows that made undecided."""
    run = result.get("run_shift")
    note = f"; whole run {run['ratio']:.3f}x ({run['ratio_low']:.3f}-{run['ratio_high']:.3f})" if run else ""
    busy = [c["others_busy_cores"] for c in (result.get("contention_base"), result.get("contention_new")) if c]
    if not busy:
        return note
    contended = sum(1 for p in result["pairs"] if p.get("contended"))
    return f"{note}; others busy {'/'.join(f'{b:.2f}' for b in busy)} cores, {contended} rows contended"


def aa_pairs(r: Runner, pairs, label):
    verdicts, statuses, per_row, comparisons = Counter(), Counter(), {}, []
    contended, with_run = 0, 0
    for i in range(pairs):
        base, new = r.bench(f"{label}-a{i}"), r.bench(f"{label}-b{i}")
        code, result = r.compare(base, new)
        statuses[code] += 1
        contended += sum(1 for p in result["pairs"] if p.get("contended"))
        with_run += sum(1 for p in result["pairs"] if p.get("with_run"))
        for p in result["pairs"]:
            verdicts[p["verdict"]] += 1
            per_row.setdefault(row_name(p["key"]), Counter())[p["verdict"]] += 1
        comparisons.append({"base": Path(base).name, "new": Path(new).name, "exit_status": code, "result": result})
        print(f"  {label} pair {i + 1}/{pairs}: exit {code}, {dict(Counter(p['verdict'] for p in result['pairs']))}"
              f"{cores_note(result)}", flush=True)
    rows = sum(verdicts.values())
    quiet = verdicts["same"] + verdicts["undecided"]
    return {
        "load": label,
        "pairs": pairs,
        "rows": rows,
        "verdicts": dict(verdicts),
        "contended_rows": contended,
        "undecided_with_the_run": with_run,
        "run_shifts": [c["result"].get("run_shift") for c in comparisons],
        "same_or_undecided": quiet / rows if rows else None,
        "exit_statuses": {str(k): v for k, v in statuses.items()},
        "accepted": bool(rows) and quiet >= 0.95 * rows and statuses[1] == 0,
        "per_row": {k: dict(v) for k, v in sorted(per_row.items())},
        "comparisons": comparisons,
    }


def slowdown_pairs(r: Runner, pairs, has_knob):
    variant, percent = r.a.slowdown.split(":")
    if not has_knob:
        return {"skipped": "the binary has no `slowdown-knob` feature: cargo build --release --features slowdown-knob"}
    found, failed, comparisons = Counter(), Counter(), []
    for i in range(pairs):
        base, new = r.bench(f"slow-a{i}"), r.bench(f"slow-b{i}", slowdown=r.a.slowdown)
        code, result = r.compare(base, new)
        slowed = [p for p in result["pairs"] if p["key"]["variant"] == variant]
        others = [p for p in result["pairs"] if p["key"]["variant"] != variant]
        found.update(p["verdict"] for p in slowed)
        failed[code] += 1
        comparisons.append({"exit_status": code, "slowed": slowed, "others": Counter(p["verdict"] for p in others)})
        ratios = ", ".join(f"{p['ratio']:.3f} ({p['ratio_low']:.3f}–{p['ratio_high']:.3f}) {p['verdict']}" for p in slowed)
        print(f"  slowdown pair {i + 1}/{pairs}: exit {code}; {variant}: {ratios}{cores_note(result)}", flush=True)
    rows = sum(found.values())
    return {
        "variant": variant,
        "percent": float(percent.rstrip("%")),
        "pairs": pairs,
        "slowed_rows": rows,
        "verdicts": dict(found),
        "exit_statuses": {str(k): v for k, v in failed.items()},
        "found": bool(rows) and found["slower"] == rows,
        "comparisons": comparisons,
    }


def main():
    a = arguments()
    if not Path(a.kernelab).is_file():
        sys.exit(f"{a.kernelab} does not exist: cargo build --release --features slowdown-knob (or give --kernelab)")
    out = Path(a.out) if a.out else ROOT / "results" / "compare_aa" / time.strftime("compare_aa-%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="compare-aa-") as tmp:
        r = Runner(a, Path(tmp))
        started = time.time()
        floors, phases = {}, []
        floors["off"], first = r.calibrate("off")
        for label in (["off", "on"] if a.load == "both" else [a.load]):
            with Load(a.load_procs if label == "on" else 0):
                if label not in floors and a.calibrate_under == "each":
                    r.use_cache(label)
                    floors[label], _ = r.calibrate(label)
                print(f"A/A pairs, load {label}", flush=True)
                phase = aa_pairs(r, a.pairs, label)
                phase["noise_floor_from"] = label if label in floors else "off"
                phases.append(phase)
            r.use_cache("off")
        print(f"slowdown pairs ({a.slowdown}%), no load", flush=True)
        has_knob = "slowdown-knob" in first["machine"]["features"]
        slow = slowdown_pairs(r, a.slowdown_pairs, has_knob) if a.slowdown_pairs else None
        machine = first["machine"]
    summary = {
        "command": sys.argv,
        "settings": {k: v for k, v in vars(a).items()},
        "machine": machine,
        "noise_floors": {k: {"floor": f["floor"], "runs": f["runs"], "rows": f["rows"]} for k, f in floors.items()},
        "aa": phases,
        "slowdown": slow,
        "seconds": round(time.time() - started, 1),
    }
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print("\nsummary")
    for label, f in floors.items():
        print(f"  noise floor, load {label}: {100 * f['floor']:.2f}% between runs ({f['runs']} runs, {len(f['rows'])} rows)")
    for p in phases:
        share = "-" if p["same_or_undecided"] is None else f"{100 * p['same_or_undecided']:.1f}%"
        print(f"  A/A, load {p['load']} (floor of load {p['noise_floor_from']}): {p['pairs']} pairs, {p['rows']} rows, "
              f"verdicts {p['verdicts']}, "
              f"same or undecided {share} ({p['undecided_with_the_run']} undecided as the whole run moved), "
              f"exit statuses {p['exit_statuses']}: "
              f"{'accepted' if p['accepted'] else 'NOT accepted'}")
    if slow and "skipped" in slow:
        print(f"  slowdown: skipped ({slow['skipped']})")
    elif slow:
        print(f"  slowdown ({a.slowdown}%): {slow['slowed_rows']} slowed rows, verdicts {slow['verdicts']}, exit statuses "
              f"{slow['exit_statuses']}: {'found' if slow['found'] else 'NOT always found'}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
