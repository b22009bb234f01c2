#!/usr/bin/env bash
# Installs Debian's Chromium, which the real-browser tests (test/browser/) drive through playwright-core.
# Playwright's own browser downloads come from a CDN that this project cannot reach, so the system
# browser is used instead (executablePath /usr/bin/chromium). Its WebGPU runs on the CPU here.
#
# Idempotent: with Chromium already installed it does nothing.
set -euo pipefail

say() { printf '[install-browser] %s\n' "$*"; }
if [ -x /usr/bin/chromium ]; then
  say "$(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed; nothing to do"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else say "must run as root (or with sudo available)"; exit 1; fi
fi
say "apt-get install chromium"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
say "installed $(/usr/bin/chromium --version 2>/dev/null)"
