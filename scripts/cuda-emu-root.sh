#!/usr/bin/env bash
# A CUDA root with an emulated device, for building and running the `cuda` feature on a machine
# without an NVIDIA GPU (CI, laptops):
#
#   scripts/cuda-emu-root.sh DIR && export CUDA_LIBRARY_PATH=DIR
#   LD_LIBRARY_PATH=DIR/lib64 target/release/kernelab devices     # cuda: the emulated device
#
# DIR/lib64/libcuda.so is crates/cuda-emu built in release (the PTX interpreter must run
# optimised): the CUDA driver API functions kernelab uses through cust, running each launched
# kernel in an interpreter with a sanitizer; every other function cust_raw 0.11.3 declares answers
# CUDA_ERROR_NOT_SUPPORTED (801). Its soname is the real driver's, libcuda.so.1, so a binary built
# against it loads the real driver wherever there is one, and this library where DIR/lib64 is on
# LD_LIBRARY_PATH. See crates/cuda-emu for its environment (KERNELAB_EMU_MEMORY,
# KERNELAB_EMU_SANITIZE, KERNELAB_EMU_DEVICES=0 for "no GPU").
set -euo pipefail
dir=${1:?usage: scripts/cuda-emu-root.sh DIR}
cd "$(dirname "$0")/.."
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
cargo build --release --locked -p kernelab-cuda-emu
mkdir -p "$dir/lib64"
# Copied, not linked: a later build of the crate does not change a root in use.
cp -f "$target/release/libkernelab_cuda_emu.so" "$dir/lib64/libcuda.so.tmp"
mv -f "$dir/lib64/libcuda.so.tmp" "$dir/lib64/libcuda.so"
ln -sf libcuda.so "$dir/lib64/libcuda.so.1"
echo "cuda-emu-root: the emulated CUDA device (soname $(readelf -d "$dir/lib64/libcuda.so" | sed -n 's/.*soname: \[\(.*\)\]/\1/p')) in $dir/lib64"
