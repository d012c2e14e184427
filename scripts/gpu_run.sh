#!/usr/bin/env bash
# Everything kernelab measures on a GPU machine, in one go, into one folder. Runs where there is no
# Rust toolchain: build `.gpu/kernelab` here first (README, "On a GPU"), carry `.gpu` over, then
#
#   OUT=results-folder scripts/gpu_run.sh
#
# Writes: nvidia-smi.txt, devices.txt, check.txt (the conformance suite from the binary, CUDA and
# wgpu required), bench-*.json/.txt (every matmul rung at 1024³, 2048³, 4096³ with cuBLAS in the same
# run; ReLU and softmax on 64M elements), pytorch.txt (cuBLAS FP32 through PyTorch, TF32 off, and a
# device-to-device copy), and status.txt (each step's exit code). A failing step does not stop the
# others. Each rung's 4096³ GFLOP/s goes in the `Measured:` line of its kernels/matmul/N_RUNG.ptx
# header, with the card it ran on.
#
# KERNELAB_GPU_RUN_SMALL=1 runs every step at small sizes and short budgets: the whole script end to
# end on the emulated CUDA device (scripts/cuda-emu-root.sh; LD_LIBRARY_PATH=DIR/lib64), as CI does,
# whose timings mean nothing. A step whose tool is absent (nvidia-smi, PyTorch with CUDA) is
# skipped, and status.txt says why.
set -uo pipefail
out=${OUT:?set OUT to the output folder}
mkdir -p "$out"
bin=${KERNELAB:-.gpu/kernelab}
# cuBLAS may live in the toolkit or in PyTorch's wheels; point the `cublas` variant at it.
if [[ -z ${KERNELAB_CUBLAS:-} ]]; then
  found=$(find /usr/local/cuda*/ /usr/lib /opt /usr/local/lib -name 'libcublas.so*' 2>/dev/null | sort | head -n1)
  if [[ -n $found ]]; then export KERNELAB_CUBLAS=$found; fi
fi
# wgpu on the NVIDIA Vulkan driver, when a Vulkan loader was carried along.
if [[ -d .gl ]]; then
  export LD_LIBRARY_PATH="$PWD/.gl/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
  export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
fi

# The sizes and budgets: a GPU's, or small ones for the emulated device.
if [[ ${KERNELAB_GPU_RUN_SMALL:-0} == 1 ]]; then
  matmul_sizes=(64 96)
  timing=(--warmup 1 --repeat 3 --budget 0.5)
  short=("${timing[@]}")
  mlp_shapes=16x16x78,16x10x16,16x78x16:NT,78x16x16:TN
  relu_shape=65536
  softmax_shape=64x1024
  all_ops=(--op matmul,relu,softmax --shape 64x64x64,64x256,65536 "${timing[@]}")
  wgpu_check=(--op relu,softmax,matmul)
else
  matmul_sizes=(1024 2048 4096)
  timing=(--warmup 3 --repeat 20 --budget 20)
  short=()
  mlp_shapes=128x128x784,128x10x128,128x784x128:NT,784x128x128:TN
  relu_shape=67108864
  softmax_shape=65536x1024
  all_ops=()
  wgpu_check=()
fi

# A step that cannot run here: its file and status.txt say why.
skip() {
  echo "== $1: skipped, $2"
  echo "skipped: $2" >"$out/$1.txt"
  echo "$1 skipped ($2)" >>"$out/status.txt"
}

step() {
  local name=$1
  shift
  echo "== $name: $*"
  "$@" >"$out/$name.txt" 2>&1
  local code=$?
  echo "$name $code" >>"$out/status.txt"
  tail -n 5 "$out/$name.txt"
}

if command -v nvidia-smi >/dev/null; then
  step nvidia-smi nvidia-smi
else
  skip nvidia-smi "nvidia-smi is not on PATH (no NVIDIA driver tools on this machine)"
fi
step devices "$bin" devices
step check env KERNELAB_REQUIRE=cuda "$bin" check --backend cuda
step check-wgpu env KERNELAB_REQUIRE=wgpu "$bin" check --backend wgpu "${wgpu_check[@]}"
for n in "${matmul_sizes[@]}"; do
  step "bench-matmul-$n" "$bin" bench --backend cuda --op matmul --variant all --shape "${n}x${n}x${n}" \
    "${timing[@]}" --json "$out/bench-matmul-$n.json"
done
step bench-matmul-mlp "$bin" bench --backend cuda --op matmul --variant all \
  --shape "$mlp_shapes" "${short[@]}" --json "$out/bench-matmul-mlp.json"
step bench-relu "$bin" bench --backend cuda --op relu,relu_backward --shape "$relu_shape" "${short[@]}" --json "$out/bench-relu.json"
step bench-softmax "$bin" bench --backend cuda --op softmax,log_softmax --shape "$softmax_shape" \
  "${short[@]}" --json "$out/bench-softmax.json"
step bench-all-ops "$bin" bench --backend cuda,wgpu "${all_ops[@]}" --json "$out/bench-all-ops.json"
if ! python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
  skip pytorch "PyTorch with CUDA is not importable here (python3 -c 'import torch; torch.cuda.is_available()')"
  cat "$out/status.txt"
  exit 0
fi
step pytorch python3 - <<'PY'
import torch
torch.backends.cuda.matmul.allow_tf32 = False
print(torch.__version__, torch.cuda.get_device_name(0))
for n in (1024, 2048, 4096):
    a = torch.randn(n, n, device="cuda"); b = torch.randn(n, n, device="cuda")
    for _ in range(5): a @ b
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); [a @ b for _ in range(20)]; e.record(); torch.cuda.synchronize()
    print(n, "cuBLAS FP32 GFLOP/s", 2 * n**3 * 20 / (s.elapsed_time(e) / 1e3) / 1e9)
x = torch.empty(64 << 20, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
s.record(); [y.copy_(x) for _ in range(20)]; e.record(); torch.cuda.synchronize()
print("device copy GB/s (read + write)", 2 * x.numel() * 4 * 20 / (s.elapsed_time(e) / 1e3) / 1e9)
PY
cat "$out/status.txt"
