#!/usr/bin/env bash
# Every test: install what is missing (with PyTorch, the independent reference), build, and run
# the whole suite with CTest. GPU tests skip cleanly on machines without a CUDA device.
# Under CI=true (or with --portable) the reference's tests then also run in a second, non-default
# configuration: clang, libomp and the reference BLAS (tools/test-portable.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
portable=0
case "${1:-}" in
  --portable) portable=1 ;;
  "") [[ "${CI:-}" == "true" ]] && portable=1 ;;
  *) echo "usage: tools/test.sh [--portable]" >&2; exit 2 ;;
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
