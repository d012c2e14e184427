#!/usr/bin/env bash
# The measurements behind `kernelab distill`'s defaults, with their controls.
#
# One 784-512-256-10 teacher (kernelab, seed 1000, 10 epochs, saved), then for every temperature T
# and weight alpha of the grid and every seed a label-only and a distilled 784-128-10 student, 10
# epochs each, all on Fashion-MNIST. alpha = 0 is the control: its distilled student ignores the
# teacher and must equal the label-only one of its seed (gain exactly 0.00 on every seed); and the
# label-only student of a seed, trained once per grid point, must come out the same every time.
# With PYTHON set to a python with torch, PyTorch distils the same teacher (loaded from kernelab's
# checkpoint) on the same grid and seeds (scripts/compare_pytorch.py), for the side-by-side table.
#
#   [OUT=results/distill] [SEEDS=5] [EPOCHS=10] [PYTHON=python3-with-torch] [TEACHER=t.safetensors] \
#     scripts/distill_sweep.sh [BIN]
#
# BIN defaults to target/release/kernelab; TEACHER reuses a saved teacher instead of training one. Everything goes to OUT: kernelab-sweep.jsonl,
# pytorch-sweep.jsonl, teacher.jsonl and summary.md (scripts/distill_sweep_summary.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/kernelab}
[ -x "$bin" ] || cargo build --release --bin kernelab
out=${OUT:-results/distill}
seeds=${SEEDS:-5}
epochs=${EPOCHS:-10}
temperatures=(1 2 4)
alphas=(0 0.1 0.3 0.5 0.7 0.9)
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
teacher=${TEACHER:-$work/teacher.safetensors}

# Tags every JSON line of $1 with the grid point and appends it to $2.
tag() {
  python3 - "$@" <<'PY'
import json, sys
path, into, t, alpha = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
with open(into, "a") as sink:
    for line in open(path):
        r = json.loads(line)
        if t:
            r.update(temperature=float(t), alpha=float(alpha))
        sink.write(json.dumps(r) + "\n")
PY
}

rm -f "$out/kernelab-sweep.jsonl"
if [ -z "${TEACHER:-}" ]; then
  rm -f "$out/teacher.jsonl"
  "$bin" train --model 784-512-256-10 --epochs "$epochs" --seed 1000 --save "$teacher" --json "$work/teacher.jsonl" >/dev/null
  tag "$work/teacher.jsonl" "$out/teacher.jsonl" "" ""
fi
for t in "${temperatures[@]}"; do
  for alpha in "${alphas[@]}"; do
    # alpha = 0 ignores the teacher: one run of the control whatever the temperature.
    [ "$alpha" = 0 ] && [ "$t" != "${temperatures[0]}" ] && continue
    echo "T = $t, alpha = $alpha" >&2
    "$bin" distill --epochs "$epochs" --seeds "$seeds" --teacher-checkpoint "$teacher" \
      --temperature "$t" --alpha "$alpha" --json "$work/run.jsonl" >/dev/null 2>"$work/run.err" \
      || { cat "$work/run.err" >&2; exit 1; }
    grep -E '^students' "$work/run.err" >&2 || true
    tag "$work/run.jsonl" "$out/kernelab-sweep.jsonl" "$t" "$alpha"
    rm -f "$work/run.jsonl"
  done
done

if [ -n "${PYTHON:-}" ]; then
  rm -f "$out/pytorch-sweep.jsonl"
  "$PYTHON" scripts/compare_pytorch.py --workload distill --epochs "$epochs" --teacher-checkpoint "$teacher" \
    --seeds "$seeds" --temperature "$(IFS=,; echo "${temperatures[*]}")" --alpha "$(IFS=,; echo "${alphas[*]}")" \
    --json "$out/pytorch-sweep.jsonl" >/dev/null
fi
python3 scripts/distill_sweep_summary.py "$out" | tee "$out/summary.md"
