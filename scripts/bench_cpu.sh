#!/usr/bin/env bash
# Every CPU number in BENCHMARKS.md, from one build, into results/cpu/ (JSON with the machine).
#   scripts/bench_cpu.sh            needs libopenblas-dev (the baseline) and, for training,
#                                   dataset-fashion-mnist
# Each bench run measures OpenBLAS and kernelab in the same process, so their ratios come from
# one run; the thread count is fixed per run with --threads (rayon and OpenBLAS alike).
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/cpu
mkdir -p "$out"
cargo build --release --features openblas --bin kernelab
bin=target/release/kernelab

"$bin" devices | tee "$out/devices.txt"

# The GEMM ladder against OpenBLAS, square sizes and the MLP's products (forward x·Wᵀ is NT, the
# weight gradient dzᵀ·x is TN, the hidden gradient dz·W is NN), on 1 and on 2 threads.
mlp=64x128x784:NT,128x784x64:TN,64x10x128:NT,10x128x64:TN,64x128x10:NN
for threads in 1 2; do
  "$bin" bench --threads "$threads" --op matmul --variant all --budget 3 \
    --shape 1024x1024x1024 --json "$out/gemm-1024-t$threads.json"
  "$bin" bench --threads "$threads" --op matmul --variant threaded,packed_avx512,packed_avx2,openblas --budget 3 \
    --shape 2048x2048x2048 --json "$out/gemm-2048-t$threads.json"
  "$bin" bench --threads "$threads" --op matmul --variant threaded,packed_avx512,packed_avx2,openblas --budget 1 \
    --shape "$mlp" --json "$out/gemm-mlp-t$threads.json"
done

# Memory-bound ops over 16M elements against the copy bandwidth.
"$bin" bench --op relu,relu_backward,adam --shape 16777216 --budget 2 --json "$out/elementwise-16M.json"
"$bin" bench --op softmax,log_softmax,softmax_cross_entropy --shape 16384x1024 --budget 2 --json "$out/rowwise-16M.json"

# End to end: the seed workloads on Fashion-MNIST.
"$bin" train --epochs 3 --json "$out/train-784-128-10.jsonl" > /dev/null
