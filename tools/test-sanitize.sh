#!/usr/bin/env bash
# The reference's tests and the checkpoint fuzzer under AddressSanitizer + UndefinedBehavior-
# Sanitizer (the CMake preset asan: -O1 -g, build-asan/), every report fatal. tools/test.sh runs
# it after the main suite under CI=true (or with --sanitize).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --test
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
jobs=$(nproc)
echo "[sanitize] cmake --preset asan (address + undefined sanitizers, -O1 -g)"
mkdir -p build-asan
cmake --preset asan > build-asan/sanitize.log 2>&1 || { cat build-asan/sanitize.log; exit 1; }
tests=(test_ops test_scale test_model test_optim test_train test_fuzz)
echo "[sanitize] building ${tests[*]} with $jobs jobs"
cmake --build build-asan -j "$jobs" --target "${tests[@]}" >> build-asan/sanitize.log 2>&1 ||
  { tail -60 build-asan/sanitize.log; echo "[sanitize] error: the build failed (build-asan/sanitize.log)" >&2; exit 1; }
start=$(date +%s)
export SCALEVEC_FUZZ_CASES=${SCALEVEC_FUZZ_CASES:-10000}
for t in "${tests[@]}"; do
  echo "[sanitize] $t"
  build-asan/tests/ref/$t --gtest_brief=1
done
echo "[sanitize] all passed in $(( $(date +%s) - start ))s"
