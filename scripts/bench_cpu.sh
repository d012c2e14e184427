#!/usr/bin/env bash
# Every CPU number in BENCHMARKS.md, from one build, into results/cpu/ (schema-versioned JSON
# reports with the machine, the ceilings, the baselines and every raw sample).
#   scripts/bench_cpu.sh            needs libopenblas-dev (the baseline), python3 with numpy (a
#                                   second OpenBLAS build to check the first against) and, for
#                                   training, dataset-fashion-mnist
# Each bench run times the baselines (OpenBLAS, the gemm crate, matrixmultiply) and kernelab in
# the same process, so their ratios come from one run; --threads fixes the thread count of
# kernelab's pool and of every baseline alike.
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/cpu
mkdir -p "$out"
cargo build --release --features openblas --bin kernelab
bin=target/release/kernelab

# The ceilings, measured afresh and kept in the per-machine cache every run below reads.
"$bin" devices --remeasure | tee "$out/devices.txt"

# The vendor row checked against an independent build of the same library (numpy's OpenBLAS).
for threads in 1 2; do
  OPENBLAS_NUM_THREADS=$threads python3 scripts/numpy_sgemm.py 1024 2048 | sed "s/^/threads=$threads /"
done | tee "$out/numpy-openblas.txt"

# The GEMM ladder against the baselines, square sizes and the MLP's products (forward x·Wᵀ is NT,
# the weight gradient dzᵀ·x is TN, the hidden gradient dz·W is NN), on 1 and on 2 threads.
baselines=openblas,gemm-crate,matrixmultiply
mlp=64x128x784:NT,128x784x64:TN,64x10x128:NT,10x128x64:TN,64x128x10:NN
for threads in 1 2; do
  "$bin" bench --backend cpu --threads "$threads" --op matmul --variant all --budget 3 \
    --shape 1024x1024x1024 --json "$out/gemm-1024-t$threads.json"
  "$bin" bench --backend cpu --threads "$threads" --op matmul --variant "threaded,packed_avx512,packed_avx2,$baselines" --budget 3 \
    --shape 2048x2048x2048 --json "$out/gemm-2048-t$threads.json"
  "$bin" bench --backend cpu --threads "$threads" --op matmul --variant "threaded,packed_avx512,packed_avx2,$baselines" --budget 1 \
    --shape "$mlp" --json "$out/gemm-mlp-t$threads.json"
done

# Memory-bound ops, held against the level their working set lives in: 16M elements (DRAM),
# warm and cold, and 64K elements (L2).
"$bin" bench --backend cpu --op relu,relu_backward,adam --shape 16777216,65536 --budget 2 --json "$out/elementwise.json"
"$bin" bench --backend cpu --op relu,relu_backward,adam --shape 16777216,65536 --budget 2 --cold --json "$out/elementwise-cold.json"
"$bin" bench --backend cpu --op softmax,log_softmax,softmax_cross_entropy --shape 16384x1024 --budget 2 --json "$out/rowwise-16M.json"

# The README's main command: the default suite on every backend.
"$bin" bench --json "$out/default-suite.json" --markdown "$out/default-suite.md"

# End to end: the seed workloads on Fashion-MNIST.
"$bin" train --epochs 3 --json "$out/train-784-128-10.jsonl" > /dev/null
