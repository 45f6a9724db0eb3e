#!/usr/bin/env bash
# Installs what scalevec needs from Debian/Ubuntu's archive (only what is missing), as root or
# through sudo. Usage: tools/setup.sh [--test]   (--test adds PyTorch for the parity tests)
set -euo pipefail

packages=(build-essential cmake pkg-config libopenblas-openmp-dev libfmt-dev libcli11-dev
          nlohmann-json3-dev zlib1g-dev libgtest-dev fortunes)
if [[ "${1:-}" == "--test" ]]; then
  # PyTorch: the independent reference; gdb: the stepping-through recipe is a test;
  # librsvg2-bin (rsvg-convert): the figures are rendered to PNG by a test; clang-format: the
  # layout check (tools/format.sh --check).
  packages+=(python3 python3-numpy python3-torch gdb librsvg2-bin clang-format)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "[setup] all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "[setup] error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "[setup] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "[setup] done"
