#!/usr/bin/env bash
# One-time set-up on a fresh machine: npm dependencies, then a WebGPU driver if no adapter is found
# (Mesa's lavapipe from Debian bookworm-backports, see install-webgpu-cpu.sh), then Debian's Chromium for the
# browser tests (install-browser.sh). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "[setup] npm ci"
npm ci --no-audit --no-fund

if node scripts/check-adapter.mjs; then
  echo "[setup] WebGPU adapter found"
else
  echo "[setup] no WebGPU adapter: installing Mesa's lavapipe Vulkan driver"
  bash scripts/install-webgpu-cpu.sh
  node scripts/check-adapter.mjs
fi

# The real-browser tests (test/browser/) and `graft serve`'s pages in a local browser.
echo "[setup] Chromium for the browser tests"
bash scripts/install-browser.sh
