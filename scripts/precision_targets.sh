#!/usr/bin/env bash
# The quiet-machine measurement of issue 21's precision targets, in one go:
#
#   scripts/precision_targets.sh                 # 1024³ and 2048³, 1 and 2 threads, 3 rounds
#   SIZES=256 ROUNDS=1 BUDGET=0.2 scripts/precision_targets.sh   # a quick try of the plumbing
#   VARIANTS=threaded,packed_avx512,bf16-dpbf16,bf16-dpbf16-1t scripts/precision_targets.sh   # fewer rows
#
# Builds kernelab (release) and the `bf16_profile` example, then runs scripts/bf16_pytorch.py,
# which interleaves in every round, so that a slow minute falls on every figure alike: the
# `vdpbf16ps` peak probe (one thread), then for every thread count and size PyTorch's f32 and
# bf16 matmul (PYTHON, default /tmp/torchenv/bin/python) and `kernelab bench --op matmul
# --dtype f32,bf16` (checked rows). It prints the medians and the target table (bf16 ≥ 1.8× own
# f32 at 1 and 2 threads; ≥ 85% of the bf16 peak on 1 thread; ≥ PyTorch bf16) and writes under
# results/precision/targets-STAMP/: every kernelab report, every peak, summary.json (medians,
# rounds, targets) and summary.txt (what was printed). Run it on a quiet machine: ratios taken
# under load say little.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES="${SIZES:-1024,2048}"
THREADS="${THREADS:-1,2}"
ROUNDS="${ROUNDS:-3}"
VARIANTS="${VARIANTS:-all}"
BUDGET="${BUDGET:-1.5}"
PYTHON="${PYTHON:-/tmp/torchenv/bin/python}"
STAMP="${STAMP:-$(date -u +%Y%m%dT%H%M%SZ)}"
OUT="results/precision/targets-$STAMP"

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "no PyTorch at PYTHON=$PYTHON: install one (python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch) or point PYTHON at one" >&2
    exit 2
fi
cargo build --release --quiet
cargo build --release --quiet -p kernelab-cpu --example bf16_profile
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
mkdir -p "$OUT"
"$PYTHON" scripts/bf16_pytorch.py --python "$PYTHON" \
    --kernelab "$TARGET_DIR/release/kernelab" --peak "$TARGET_DIR/release/examples/bf16_profile" \
    --sizes "$SIZES" --threads "$THREADS" --rounds "$ROUNDS" --budget "$BUDGET" --variants "$VARIANTS" \
    --reports "$OUT" --out "$OUT/summary.json" | tee "$OUT/summary.txt"
echo "reports in $OUT"
