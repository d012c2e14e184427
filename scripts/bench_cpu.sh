#!/usr/bin/env bash
# Every CPU number in BENCHMARKS.md, from one build, into results/cpu/ (schema-versioned JSON
# reports with the machine, the ceilings, the baselines and every raw sample).
#   [OUT=results/cpu PLOTS=results/plots] scripts/bench_cpu.sh
#                                   needs libopenblas-dev (the baseline), python3 with numpy (a
#                                   second OpenBLAS build to check the first against) and, for
#                                   training, dataset-fashion-mnist
#   PYTHON=venv/bin/python scripts/bench_cpu.sh
#                                   a Python with numpy and torch (CPU) for the independent
#                                   OpenBLAS check and the same-run PyTorch epochs
# Each bench run times the baselines (OpenBLAS, the gemm crate, matrixmultiply) and kernelab in
# the same process, so their ratios come from one run; --threads fixes the thread count of
# kernelab's pool and of every baseline alike.
set -euo pipefail
cd "$(dirname "$0")/.."
# OUT and PLOTS name other folders for a run on another machine (BENCHMARKS.md keeps one per CPU).
out=${OUT:-results/cpu}
plots=${PLOTS:-results/plots}
mkdir -p "$out" "$plots"
cargo build --release --features openblas --bin kernelab
bin=target/release/kernelab
python=${PYTHON:-python3}

# A core chosen by hand is a degraded baseline (kernelab marks its rows and quotes no ratio
# against them); these numbers are meant to be quoted, so OpenBLAS picks its own core here, and
# kernelab re-runs itself with the right one where OpenBLAS does not know the CPU.
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  echo "note: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE is set in the environment; unset for these runs" >&2
  unset OPENBLAS_CORETYPE
fi

# The ceilings, measured afresh and kept in the per-machine cache every run below reads. This VM
# sometimes runs its second vCPU at a fraction of a core's speed for minutes at a time; a two-thread
# FMA peak well under twice the one-thread one says the runs below may be in that state (see
# BENCHMARKS.md), so the script says so.
"$bin" devices --remeasure | tee "$out/devices.txt"
grep -o 'FMA [0-9.]* GFLOP/s ([0-9.]* on 1 thread)' "$out/devices.txt" | head -1 \
  | awk '{ if ($2 < 1.8 * substr($4, 2)) print "warning: two-thread FMA peak " $2 " is under 1.8x the one-thread " substr($4, 2) ": the second vCPU is slow right now; two-thread rows will be too" > "/dev/stderr" }'


# The vendor row checked against an independent build of the same library (numpy's OpenBLAS).
for threads in 1 2; do
  OPENBLAS_NUM_THREADS=$threads "$python" scripts/numpy_sgemm.py 1024 2048 | sed "s/^/threads=$threads /"
done | tee "$out/numpy-openblas.txt"

# The GEMM ladder against the baselines, square sizes and the MLP's products (forward x·Wᵀ is NT,
# the weight gradient dzᵀ·x is TN, the hidden gradient dz·W is NN), on 1 and on 2 threads.
baselines=openblas,gemm-crate,matrixmultiply
for threads in 1 2; do
  "$bin" bench --backend cpu --threads "$threads" --op matmul --variant all --budget 3 \
    --shape 1024x1024x1024 --json "$out/gemm-1024-t$threads.json"
  "$bin" bench --backend cpu --threads "$threads" --op matmul --variant "threaded,direct_avx512,packed_avx512,$baselines" --budget 3 \
    --shape 2048x2048x2048 --json "$out/gemm-2048-t$threads.json"
  # Every product of both seed models' training steps at batch 64 (13 shapes); the thin ones take
  # 1.5-3.5 µs, so a longer budget for a steadier median.
  "$bin" bench --backend cpu --threads "$threads" --op matmul --variant "threaded,direct_avx512,direct_dot_avx512,packed_avx512,$baselines" --budget 3 \
    --preset mlp --json "$out/gemm-mlp-t$threads.json"
done

# The ladder as a sweep, one thread, and its plot.
"$bin" bench --backend cpu --threads 1 --op matmul --shape 64..1024 --budget 1 \
  --variant threaded,direct_avx512,packed_avx512,packed_avx2,packed_portable,blocked,naive,$baselines \
  --pivot variant --json "$out/ladder-sweep-t1.json" > /dev/null
"$bin" plot "$out/ladder-sweep-t1.json" --kind sweep --out "$plots/ladder-sweep-t1.svg"

# Memory-bound ops, held against the level their working set lives in: 16M elements (DRAM),
# warm and cold, and 64K elements (L2).
"$bin" bench --backend cpu --op relu,relu_backward,adam --shape 16777216,65536 --budget 2 --json "$out/elementwise.json"
"$bin" bench --backend cpu --op relu,relu_backward,adam --shape 16777216,65536 --budget 2 --cold --json "$out/elementwise-cold.json"
"$bin" bench --backend cpu --op softmax,log_softmax,softmax_cross_entropy --shape 16384x1024 --budget 2 --json "$out/rowwise-16M.json"

# The README's main command: the default suite on every backend.
"$bin" bench --json "$out/default-suite.json" --markdown "$out/default-suite.md"
"$bin" plot "$out/default-suite.json" --out "$plots/default-suite-roofline.svg"

# End to end: the seed workload on Fashion-MNIST, kernelab and PyTorch in turn on 2 and on 1
# thread (the same data, batch, optimizer and seed), and where kernelab's step goes.
rm -f "$out/train-784-128-10.jsonl" "$out/pytorch-train-784-128-10.jsonl"
for threads in 2 1; do
  RAYON_NUM_THREADS=$threads "$bin" train --epochs 3 | sed "s/^{/{\"threads\":$threads,/" >> "$out/train-784-128-10.jsonl"
  if "$python" -c 'import torch' 2> /dev/null; then
    "$python" scripts/compare_pytorch.py --workload train --epochs 3 --threads "$threads" \
      | sed "s/^{/{\"threads\":$threads,/" >> "$out/pytorch-train-784-128-10.jsonl"
  else
    echo "no torch in $python: PyTorch epochs skipped (PYTHON=... names a Python that has it)" >&2
  fi
done
"$bin" train --epochs 1 --profile --profile-json "$out/profile-784-128-10.json" > /dev/null
