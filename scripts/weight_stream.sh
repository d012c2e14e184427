#!/usr/bin/env bash
# What one core, and two, can stream of a model's f32 weights call after call: the ceiling of a
# batch-1 forward pass (`crates/cpu/examples/weight_stream.rs`): µs a pass and GB/s for the
# student's weights (0.41 MB), 1 MB, the teacher's (2.14 MB), 8 MB and the L1 and DRAM controls,
# front to back and serpentine, on 1 and 2 threads.
#
#   scripts/weight_stream.sh                  # about 10 s
#   PASSES=500 scripts/weight_stream.sh
#
# Writes results/infer/bandwidth-STAMP/{probe.txt,probe.json,command.txt}. Run it on a quiet
# machine: another process on a core halves what that core streams.
set -euo pipefail
cd "$(dirname "$0")/.."

PASSES="${PASSES:-2000}"
STAMP="${STAMP:-$(date -u +%Y%m%dT%H%M%SZ)}"
OUT="results/infer/bandwidth-$STAMP"

# shellcheck source=scripts/example_bin.sh
. scripts/example_bin.sh
BIN=$(example_bin kernelab-cpu weight_stream)
mkdir -p "$OUT"
echo "$BIN --passes $PASSES --json $OUT/probe.json  # $(uname -n), $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" \
    >"$OUT/command.txt"
"$BIN" --passes "$PASSES" --json "$OUT/probe.json" | tee "$OUT/probe.txt"
echo "written to $OUT"
