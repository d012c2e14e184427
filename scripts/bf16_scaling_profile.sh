#!/usr/bin/env bash
# Why the bf16 GEMM scales less than the f32 one on two threads: the time of one product broken
# down per thread (serial work on C before and after, packing A, packing B, the microkernel, the
# rest, waiting) for bf16 (`bf16-dpbf16`) and f32 (`threaded`), 1024³ and 2048³, 1 and 2 threads
# (`crates/cpu/examples/gemm_stages.rs`), then a `perf` profile by thread and function of the
# two-thread bf16 product at 2048³.
#
#   scripts/bf16_scaling_profile.sh                  # about a minute on an idle 2-vCPU Zen 4
#   ROUNDS=2 SHAPES="256 64x128x784:NT" PERF=0 scripts/bf16_scaling_profile.sh
#
# Writes results/precision/scaling-STAMP/{stages.txt,stages.json,perf.txt}. Run it on a quiet
# machine: a breakdown taken under load says little.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-5}"
SHAPES="${SHAPES:-1024 2048}"
PERF="${PERF:-1}"
STAMP="${STAMP:-$(date -u +%Y%m%dT%H%M%SZ)}"
OUT="results/precision/scaling-$STAMP"

# shellcheck source=scripts/example_bin.sh
. scripts/example_bin.sh
BIN=$(example_bin kernelab-cpu gemm_stages)
mkdir -p "$OUT"
# shellcheck disable=SC2086  # SHAPES is a list of words
"$BIN" --rounds "$ROUNDS" --json "$OUT/stages.json" $SHAPES | tee "$OUT/stages.txt"
if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
    # cpu-clock: the VM exposes no hardware counters.
    perf record -q -e cpu-clock -F 4999 -o "$OUT/perf.data" -- "$BIN" --rounds 3 --only bf16 --threads 2 2048 >/dev/null 2>&1
    perf report -i "$OUT/perf.data" --stdio --sort comm,symbol --percent-limit 0.5 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -40 | tee "$OUT/perf.txt"
    rm -f "$OUT/perf.data"
fi
echo "written to $OUT"
