#!/usr/bin/env bash
# A long campaign of the checkpoint fuzzer (tests/ref/test_fuzz.cpp): N mutated checkpoint files
# (default 1000000), each rejected with an error or loaded equal to the original. Uses the
# sanitizer build (build-asan/, tools/test-sanitize.sh makes it) when there is one, else build/.
# Usage: tools/fuzz.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
[[ "$n" =~ ^[0-9]+$ ]] || { echo "usage: tools/fuzz.sh [N]" >&2; exit 2; }
bin=build/tests/ref/test_fuzz
if [[ -x build-asan/tests/ref/test_fuzz ]]; then
  bin=build-asan/tests/ref/test_fuzz
  export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
fi
[[ -x "$bin" ]] || { echo "[fuzz] error: $bin not built (tools/build.sh)" >&2; exit 1; }
echo "[fuzz] $n cases with $bin"
SCALEVEC_FUZZ_CASES=$n "$bin" --gtest_brief=1
