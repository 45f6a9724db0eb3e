#!/usr/bin/env bash
# The GPU check, one command for a machine with an NVIDIA GPU: build for its architecture, run the
# GPU test suite (every op, module and strategy against the CPU reference), benchmark the GPU path
# beside the same model in PyTorch on the same GPU, and write a results file in Markdown.
#
#   tools/gpu-check.sh [--out FILE] [--build-dir DIR] [--arch SM] [--presets LIST] [--quick]
#
#   --out FILE        results file (default: gpu-results-<date>.md in the current directory);
#                     the raw logs go beside it (FILE.tests.log, FILE.bench.log, FILE.bench.json)
#   --build-dir DIR   build here (default: build-gpu); configured with the CUDA mirror ON
#   --arch SM         CUDA architecture, e.g. 90 for H100/H200, 80 for A100 (default: from
#                     nvidia-smi's compute capability, else 90)
#   --presets LIST    bench presets (default: small,gpt2)
#   --quick           fewer timed steps (a smoke run)
#   --prebuilt DIR    skip the build: DIR holds test_gpu, scalevec and lib/ with the shared
#                     libraries they need (for a machine without the build dependencies)
#
# It needs the build dependencies of tools/setup.sh (run that first on a fresh machine), nvcc, and
# for the comparison a python3 with torch that sees the GPU. It takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT="gpu-results-$(date -u +%F).md"
BUILD=build-gpu
ARCH=""
PRESETS=small,gpt2
QUICK=0
PREBUILT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    --presets) PRESETS=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --prebuilt) PREBUILT=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "[gpu-check] $*" >&2; }

command -v nvidia-smi >/dev/null || { say "error: nvidia-smi not found: this needs a machine with an NVIDIA GPU"; exit 1; }
CARD=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
say "GPU: $CARD"
if [ -z "$ARCH" ]; then
  # (not named CC: that is the C compiler's variable, which torch.compile's Inductor reads)
  CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.' || true)
  ARCH=${CAP:-90}
fi

# 1. Build (or use prebuilt binaries).
if [ -n "$PREBUILT" ]; then
  TEST_GPU=$PREBUILT/test_gpu
  SCALEVEC=$PREBUILT/scalevec
  export LD_LIBRARY_PATH="$(cd "$PREBUILT" && pwd)/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "using prebuilt binaries in $PREBUILT"
else
  say "configuring $BUILD for sm_$ARCH"
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
    -DSCALEVEC_TESTS=ON >/dev/null
  say "building test_gpu and scalevec"
  cmake --build "$BUILD" --target test_gpu scalevec -j"$(nproc)" >/dev/null
  TEST_GPU=$BUILD/tests/gpu/test_gpu
  SCALEVEC=$BUILD/tools/scalevec
fi
export SCALEVEC_SOURCE_DIR=$ROOT   # where `scalevec bench` finds tools/torch_ref.py

# 2. The GPU test suite.
say "running the GPU test suite"
set +e
OMP_NUM_THREADS=$(nproc) "$TEST_GPU" 2>&1 | tee "$OUT.tests.log" >/dev/null
TEST_RC=${PIPESTATUS[0]}
set -e
PASSED=$(grep -c '^\[       OK \]' "$OUT.tests.log" || true)
FAILED=$(grep -cE '^\[  FAILED  \].*\([0-9]+ ms\)$' "$OUT.tests.log" || true)
SKIPPED=$(grep -cE '^\[  SKIPPED \].*\([0-9]+ ms\)$' "$OUT.tests.log" || true)
say "tests: $PASSED passed, $FAILED failed, $SKIPPED skipped (exit $TEST_RC)"

# 3. The benchmark against PyTorch on the same GPU (eager and torch.compile).
PEAK=0
case "$CARD" in  # fp32 (non-tensor-core) peaks from NVIDIA's data sheets, SXM parts
  *H100*PCIe*) PEAK=51 ;;
  *H100*|*H200*) PEAK=67 ;;
  *A100*) PEAK=19.5 ;;
esac
STEPS=20; WARMUP=3
[ "$QUICK" = 1 ] && STEPS=5 && WARMUP=2
say "benchmarking presets $PRESETS on the GPU (scalevec vs PyTorch eager and torch.compile)"
set +e
"$SCALEVEC" bench --device cuda --presets "$PRESETS" --python python3 --torch-compile \
  --rounds 1 --steps $STEPS --warmup $WARMUP --peak-tflops $PEAK --json "$OUT.bench.json" \
  > "$OUT.bench.log" 2> "$OUT.bench.err"
BENCH_RC=$?
set -e
say "bench exit $BENCH_RC"

# 4. The results file.
{
  echo "## $(date -u +%F): $CARD"
  echo
  echo "Commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' plus uncommitted changes'), built for sm_$ARCH;" \
       "\`tools/gpu-check.sh\`."
  echo
  echo "**Tests**: $PASSED passed, $FAILED failed, $SKIPPED skipped (exit $TEST_RC)."
  if [ "$FAILED" != 0 ]; then
    echo
    echo "Failed:"
    echo '```'
    grep -E '^\[  FAILED  \].*\([0-9]+ ms\)$' "$OUT.tests.log" | head -40
    echo '```'
  fi
  echo
  echo "Every comparison (max abs error, max relative error, share of its threshold used):"
  echo
  echo '```'
  grep '^\[cmp\]' "$OUT.tests.log" | sed 's/^\[cmp\] //'
  echo '```'
  echo
  echo "**Benchmark** (\`scalevec bench --device cuda --presets $PRESETS --torch-compile" \
       "--rounds 1 --steps $STEPS --warmup $WARMUP --peak-tflops $PEAK\`; MFU against the fp32" \
       "peak of $PEAK TFLOP/s), exit $BENCH_RC:"
  echo
  echo '```'
  cat "$OUT.bench.log"
  echo '```'
  if [ "$BENCH_RC" != 0 ]; then
    echo
    echo "Its errors:"
    echo '```'
    tail -20 "$OUT.bench.err"
    echo '```'
  fi
} > "$OUT"
say "wrote $OUT"
[ "$TEST_RC" = 0 ] && [ "$BENCH_RC" = 0 ]
