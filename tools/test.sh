#!/usr/bin/env bash
# Every test: install what is missing (with PyTorch, the independent reference), build, and run
# the whole suite with CTest. GPU tests skip cleanly on machines without a CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --test
tools/build.sh
echo "[test] ctest --test-dir build --output-on-failure"
start=$(date +%s)
ctest --test-dir build --output-on-failure --timeout 900
echo "[test] all tests passed in $(( $(date +%s) - start ))s"
