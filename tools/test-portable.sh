#!/usr/bin/env bash
# The reference's tests in a configuration other than the default one: clang with LLVM's libomp,
# and Debian's reference (netlib) BLAS found by find_package(BLAS) instead of the OpenMP OpenBLAS,
# warnings as errors, no CUDA. It builds the reference library and its test programs in
# build-portable/ and runs them. tools/test.sh runs it after the main suite under CI=true (or
# with --portable); it installs what it needs (clang, libomp-dev, libblas-dev) like tools/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
extra=()
for p in clang libomp-dev libblas-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || extra+=("$p")
done
if [[ ${#extra[@]} -gt 0 ]]; then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "[portable] installing: ${extra[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${extra[@]}"
fi
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
netlib=/usr/lib/$arch/blas/libblas.so   # the reference BLAS itself, not the alternatives link
[[ -e "$netlib" ]] || { echo "[portable] error: $netlib not found (libblas-dev)" >&2; exit 1; }
jobs=$(nproc)
mkdir -p build-portable
echo "[portable] cmake: clang++, libomp, reference BLAS ($netlib), -Werror, no CUDA"
CXX=clang++ CC=clang cmake -S . -B build-portable -DCMAKE_BUILD_TYPE=Release -DSCALEVEC_CUDA=OFF \
  -DSCALEVEC_BLAS=find -DBLA_VENDOR=Generic -DBLAS_LIBRARIES="$netlib" -DSCALEVEC_WERROR=ON \
  > build-portable/portable.log 2>&1 || { cat build-portable/portable.log; exit 1; }
grep -E "OpenMP|BLAS" build-portable/portable.log | sed 's/^/[portable] /'
tests=(test_ops test_scale test_model test_optim)
echo "[portable] building ${tests[*]} with $jobs jobs"
cmake --build build-portable -j "$jobs" --target "${tests[@]}" >> build-portable/portable.log 2>&1 ||
  { tail -60 build-portable/portable.log; echo "[portable] error: the build failed (build-portable/portable.log)" >&2; exit 1; }
ldd build-portable/tests/ref/test_ops | grep -Ei "blas|omp" | sed "s/^\s*/[portable] links /"
start=$(date +%s)
for t in "${tests[@]}"; do
  echo "[portable] $t"
  build-portable/tests/ref/$t --gtest_brief=1
done
echo "[portable] all passed in $(( $(date +%s) - start ))s"
