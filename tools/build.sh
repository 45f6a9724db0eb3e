#!/usr/bin/env bash
# Configures and builds scalevec in ./build (Release). Used by quickstart.sh and test.sh; extra
# arguments go to cmake's configure step. BUILD_TARGETS="a b" builds only those targets (default:
# everything, tests and tutorials included). The full log is build/build.log. Under CI=true
# compiler warnings are errors (SCALEVEC_WERROR; a -DSCALEVEC_WERROR=... argument overrides).
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
echo "[build] configuring build/"
mkdir -p build
werror=OFF
[[ ${CI:-} == true ]] && werror=ON
if ! cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSCALEVEC_WERROR=$werror "$@" \
    >build/configure.log 2>&1; then
  cat build/configure.log; echo "[build] error: configure failed" >&2; exit 1
fi
grep -E "OpenBLAS:|CUDA mirror" build/configure.log | sed 's/^-- /[build] /'
targets=()
for t in ${BUILD_TARGETS:-}; do targets+=(--target "$t"); done
echo "[build] compiling ${BUILD_TARGETS:-everything} with $jobs jobs"
cmake --build build -j"$jobs" "${targets[@]}" 2>&1 | tee build/build.log |
  grep --line-buffered -E "Built target|error|warning" | sed -u 's/^/[build] /'
status=${PIPESTATUS[0]}
if [[ $status -ne 0 ]]; then
  echo "[build] error: build failed (see build/build.log)" >&2; exit 1
fi
