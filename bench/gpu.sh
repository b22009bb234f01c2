#!/usr/bin/env bash
# Graft on a machine with a real GPU (written for an NVIDIA card), in one command:
#
#   bash bench/gpu.sh [options of `npm run bench -- gpu`]
#
# 1. installs what is missing: the Vulkan loader (libvulkan1; the NVIDIA driver brings its own Vulkan ICD)
#    and the npm dependencies (npm ci);
# 2. points Vulkan at the NVIDIA ICD when there is one, so that Dawn does not pick a CPU driver (lavapipe);
# 3. prints the adapter and refuses to go on if it is a CPU rasteriser (unless GRAFT_ALLOW_CPU=1);
# 4. runs `npm run bench -- gpu`: matmul TFLOP/s (f32, f16) at 4096², ResNet50 forward and training
#    images/s at 224, batch 32, Graft (f32, f16) and tfjs-webgpu, and the H100 targets; the JSON goes to
#    bench/out/gpu.json. The whole run is cut at 8 minutes (GRAFT_GPU_TIMEOUT seconds, default 470).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[gpu.sh] %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo > /dev/null; then sudo "$@"; else return 1; fi; }

if ! ldconfig -p 2> /dev/null | grep -q 'libvulkan\.so\.1'; then
  say "installing the Vulkan loader (libvulkan1)"
  as_root apt-get install -y --no-install-recommends libvulkan1 > /dev/null 2>&1 \
    || { as_root apt-get update > /dev/null 2>&1 && as_root apt-get install -y --no-install-recommends libvulkan1 > /dev/null; } \
    || say "could not install libvulkan1 (no apt or no root); continuing"
fi

if ! command -v node > /dev/null; then
  say "Node.js 20+ is required and was not found on PATH"; exit 1
fi
if [ ! -d node_modules/webgpu ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund > /dev/null
fi

if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
  for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json; do
    if [ -f "$icd" ]; then export VK_ICD_FILENAMES="$icd" VK_DRIVER_FILES="$icd"; say "Vulkan ICD: $icd"; break; fi
  done
fi
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/[gpu.sh] GPU: /' || true

info=$(node bin/graft.js info --json)
echo "$info"
if echo "$info" | grep -qiE 'llvmpipe|lavapipe|swiftshader' && [ "${GRAFT_ALLOW_CPU:-0}" != 1 ]; then
  say "the WebGPU adapter is a CPU rasteriser, not the GPU; check the NVIDIA driver's Vulkan ICD (vulkaninfo --summary)."
  say "set GRAFT_ALLOW_CPU=1 to run on it anyway (with small sizes: --matmul 256 --size 32 --batch 2)."
  exit 1
fi

timeout "${GRAFT_GPU_TIMEOUT:-470}" npm run --silent bench -- gpu "$@"
