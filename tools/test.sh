#!/usr/bin/env bash
# Every test: install what is missing (with PyTorch, the independent reference), build, and run
# the whole suite with CTest. GPU tests skip cleanly on machines without a CUDA device.
# Under CI=true the reference's tests then also run in a second, non-default configuration
# (clang, libomp and the reference BLAS: tools/test-portable.sh) and under the address and
# undefined-behaviour sanitizers (tools/test-sanitize.sh); --portable or --sanitize runs one of
# them anywhere, --all both.
set -euo pipefail
cd "$(dirname "$0")/.."
portable=0 sanitize=0
case "${1:-}" in
  --portable) portable=1 ;;
  --sanitize) sanitize=1 ;;
  --all) portable=1 sanitize=1 ;;
  "") [[ "${CI:-}" == "true" ]] && portable=1 sanitize=1 ;;
  *) echo "usage: tools/test.sh [--portable | --sanitize | --all]" >&2; exit 2 ;;
esac
tools/setup.sh --test
tools/build.sh
echo "[test] ctest --test-dir build --output-on-failure"
start=$(date +%s)
ctest --test-dir build --output-on-failure --timeout 900
echo "[test] all tests passed in $(( $(date +%s) - start ))s"
if [[ $portable == 1 ]]; then
  tools/test-portable.sh
fi
if [[ $sanitize == 1 ]]; then
  tools/test-sanitize.sh
fi
