#!/usr/bin/env bash
# Installs a WebGPU-capable CPU driver (Mesa's lavapipe Vulkan ICD) on a GPU-less Debian bookworm machine.
#
# Why: the npm `webgpu` package (Dawn) needs a Vulkan driver. Bookworm's own Mesa 22 lacks features Dawn
# requires ("shaderUniform*ArrayDynamicIndexing required"), while Mesa 25 from bookworm-backports works.
# The backports suite is added by copying this machine's own main-archive entry, so the same mirror is used.
#
# Idempotent: running it twice changes nothing the second time. Every action is printed before it is done.
set -euo pipefail

say() { printf '[install-webgpu-cpu] %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else say "must run as root (or with sudo available)"; exit 1; fi
fi

MAIN_SOURCES=/etc/apt/sources.list.d/debian.sources
BACKPORTS_SOURCES=/etc/apt/sources.list.d/backports.sources

mesa_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }
have_new_mesa() {
  local v; v=$(mesa_version)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 24 && dpkg-query -W -f='${Status}' libvulkan1 2>/dev/null | grep -q 'ok installed'
}

if have_new_mesa; then
  say "mesa-vulkan-drivers $(mesa_version) and libvulkan1 already installed; nothing to do"
  exit 0
fi

if ! grep -q 'bookworm' /etc/os-release 2>/dev/null; then
  say "this script knows Debian bookworm only; on another system install Mesa >= 24 (mesa-vulkan-drivers, libvulkan1) by hand"
  exit 1
fi

if [ -f "$BACKPORTS_SOURCES" ] || grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  say "bookworm-backports already configured"
elif [ -f "$MAIN_SOURCES" ]; then
  say "adding bookworm-backports to $BACKPORTS_SOURCES (copied from the first entry of $MAIN_SOURCES)"
  awk 'BEGIN{RS="";ORS="\n\n"} NR==1' "$MAIN_SOURCES" | sed 's/^Suites:.*/Suites: bookworm-backports/' | $SUDO tee "$BACKPORTS_SOURCES" >/dev/null
else
  say "adding bookworm-backports to /etc/apt/sources.list.d/backports.list"
  echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/backports.list >/dev/null
fi

say "apt-get update"
$SUDO apt-get update -qq
say "apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
say "installed mesa-vulkan-drivers $(mesa_version)"
