#!/usr/bin/env bash
# The sweep behind `kernelab distill`'s defaults: one teacher (784-512-256-10, 10 epochs), then for
# every temperature, alpha and seed a label-only and a distilled 784-128-10 student (10 epochs
# each), all on Fashion-MNIST. Every epoch line goes to results/cpu/distill-sweep.jsonl tagged with
# its temperature, alpha and seed; scripts/distill_sweep_summary.py turns it into a table.
#   scripts/distill_sweep.sh [BIN]     BIN defaults to target/release/kernelab
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/kernelab}
[ -x "$bin" ] || cargo build --release --bin kernelab
out=results/cpu/distill-sweep.jsonl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
teacher=$work/teacher.safetensors
"$bin" train --model 784-512-256-10 --epochs 10 --seed 1000 --save "$teacher" --json "$work/teacher.jsonl"
python3 - "$work/teacher.jsonl" > "$out" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    print(json.dumps({**json.loads(line), "model": "teacher", "seed": 1000}))
PY
for seed in 0 1 2; do
  for t in 1 2 4; do
    for alpha in 0.1 0.3 0.5 0.7 0.9; do
      "$bin" distill --epochs 10 --seed "$seed" --teacher-checkpoint "$teacher" \
        --temperature "$t" --alpha "$alpha" --json "$work/run.jsonl" 2>&1 | grep -E '^(student|distilled)'
      python3 - "$work/run.jsonl" "$t" "$alpha" "$seed" >> "$out" <<'PY'
import json, sys
path, t, alpha, seed = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
for line in open(path):
    print(json.dumps({**json.loads(line), "temperature": t, "alpha": alpha, "seed": seed}))
PY
      rm -f "$work/run.jsonl"
    done
  done
done
