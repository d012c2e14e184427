#!/usr/bin/env python3
"""Mixed-precision training against f32, interleaved so that load hits every run alike.

    python3 scripts/train_precision_ab.py --model 784-128-10 --epochs 10 --rounds 2 \
        --data /usr/share/datasets/fashion-mnist --out results/precision/train-ab

Each round runs `kernelab train` once per run in a shuffled order: f32, the narrow type
(`--dtype`, default bf16), and f32 a second time — the control: the same command twice must give
the same accuracy to the last digit (training is deterministic for a seed) and an epoch-time ratio
near 1, so the ratio's noise is seen beside the effect. Prints, per model, the median epoch of each
run kind over every epoch of every round, the ratio f32 ÷ narrow (above 1: the narrow type is
faster) beside the A/A ratio, and the final test accuracies; writes every JSON log and summary.json
under --out.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def train(binary: str, model: str, dtype: str, epochs: int, data: str, log: Path) -> list[dict]:
    """One `kernelab train` run; its epoch lines."""
    if log.exists():
        log.unlink()
    cmd = [binary, "train", "--model", model, "--epochs", str(epochs), "--seed", "0", "--data", data,
           "--dtype", dtype, "--json", str(log)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernelab", default=str(ROOT / "target/release/kernelab"))
    ap.add_argument("--model", action="append", help="repeat for several (default: 784-128-10)")
    ap.add_argument("--dtype", default="bf16", help="the narrow type against f32 (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--seed", type=int, default=1, help="shuffles the order of the runs in a round")
    ap.add_argument("--out", required=True, help="folder for the logs and summary.json")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    order = random.Random(args.seed)
    summary = []
    for model in args.model or ["784-128-10"]:
        runs = {"f32": [], args.dtype: [], "f32 again": []}
        for r in range(args.rounds):
            kinds = list(runs)
            order.shuffle(kinds)
            for kind in kinds:
                dtype = "f32" if kind.startswith("f32") else kind
                log = out / f"{model}-{kind.replace(' ', '-')}-round{r + 1}.jsonl"
                lines = train(args.kernelab, model, dtype, args.epochs, args.data, log)
                runs[kind].append(lines)
                print(f"{model} round {r + 1} {kind}: test acc {lines[-1]['test_acc']:.4f}, "
                      f"median epoch {statistics.median(l['epoch_s'] for l in lines):.3f} s", flush=True)
        epoch = {k: statistics.median(l["epoch_s"] for lines in v for l in lines) for k, v in runs.items()}
        acc = {k: [lines[-1]["test_acc"] for lines in v] for k, v in runs.items()}
        row = {"model": model, "epochs": args.epochs, "rounds": args.rounds, "median_epoch_s": epoch,
               "final_test_acc": acc,
               "speedup_f32_over_narrow": epoch["f32"] / epoch[args.dtype],
               "control_f32_over_f32_again": epoch["f32"] / epoch["f32 again"],
               "control_same_accuracy": acc["f32"] == acc["f32 again"],
               "accuracy_points_narrow_minus_f32": 100 * (statistics.mean(acc[args.dtype]) - statistics.mean(acc["f32"]))}
        summary.append(row)
        print(f"\n{model}, {args.epochs} epochs, {args.rounds} rounds: median epoch f32 {epoch['f32']:.3f} s, "
              f"{args.dtype} {epoch[args.dtype]:.3f} s, f32 again {epoch['f32 again']:.3f} s")
        print(f"  f32 ÷ {args.dtype} = {row['speedup_f32_over_narrow']:.2f}× (control f32 ÷ f32 again = "
              f"{row['control_f32_over_f32_again']:.2f}×)")
        print(f"  final test accuracy: f32 {acc['f32']}, {args.dtype} {acc[args.dtype]}, f32 again {acc['f32 again']} "
              f"({args.dtype} − f32 = {row['accuracy_points_narrow_minus_f32']:+.2f} points; control identical: "
              f"{row['control_same_accuracy']})\n", flush=True)
    with open(out / "summary.json", "w") as f:
        json.dump({"dtype": args.dtype, "kernelab": args.kernelab, "load_at_end": os.getloadavg(),
                   "models": summary}, f, indent=1)


if __name__ == "__main__":
    main()
