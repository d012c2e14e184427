#!/usr/bin/env bash
# A stand-in CUDA root for building the `cuda` feature on a machine without the CUDA toolkit or an
# NVIDIA driver (CI, laptops):
#
#   scripts/cuda-stub-root.sh DIR && export CUDA_LIBRARY_PATH=DIR
#
# cust_raw's build script only needs DIR/lib64 to exist; linking needs a libcuda.so. This one
# defines every driver function cust_raw 0.11.3 declares, each returning CUDA_ERROR_NOT_SUPPORTED
# (801), under the real soname libcuda.so.1: a binary built against it loads the real driver where
# there is one, and here (with DIR/lib64 on LD_LIBRARY_PATH) finds CUDA unavailable.
set -euo pipefail
dir=${1:?usage: scripts/cuda-stub-root.sh DIR}
bindings=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path '*/cust_raw-0.11.3/src/cuda.rs' 2>/dev/null | head -n1)
if [[ -z $bindings ]]; then
  echo "cuda-stub-root: cust_raw 0.11.3 is not in the cargo registry; run 'cargo fetch' first" >&2
  exit 1
fi
mkdir -p "$dir/lib64"
sed -n 's/.*pub fn \(cu[A-Za-z0-9_]*\).*/int \1(void) { return 801; }/p' "$bindings" | sort -u >"$dir/libcuda-stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$dir/lib64/libcuda.so" "$dir/libcuda-stub.c"
ln -sf libcuda.so "$dir/lib64/libcuda.so.1"
echo "cuda-stub-root: $(wc -l <"$dir/libcuda-stub.c") driver functions answer CUDA_ERROR_NOT_SUPPORTED in $dir/lib64"
