#!/usr/bin/env bash
# The GPU check, one command for a machine with an NVIDIA GPU: build for its architecture, run the
# GPU test suite (every op, module and strategy against the CPU reference, in fp32, tf32 and
# bf16), run train, gradcheck and ablate with --device cuda once each, benchmark the GPU path
# beside the same model in PyTorch on the same GPU for each precision, and write a results file
# in Markdown.
#
#   tools/gpu-check.sh [--out FILE] [--build-dir DIR] [--arch SM] [--presets LIST]
#                      [--precisions LIST] [--compile LIST] [--data FILE] [--quick]
#                      [--prebuilt DIR]
#
#   --out FILE        results file (default: gpu-results-<date>.md in the current directory);
#                     the raw logs go beside it (FILE.tests.log, FILE.commands.log,
#                     FILE.bench-<precision>.{log,err,json})
#   --build-dir DIR   build here (default: build-gpu); configured with the CUDA mirror ON
#   --arch SM         CUDA architecture, e.g. 90 for H100/H200, 80 for A100 (default: from
#                     nvidia-smi's compute capability, else 90)
#   --presets LIST    bench presets (default: small,gpt2)
#   --precisions LIST bench precisions, each against PyTorch in the same one (default: fp32,bf16)
#   --compile LIST    precisions whose bench also times torch.compile (default: fp32; compiling
#                     costs a minute or two per preset; "none" for none)
#   --data FILE       training text for the command checks (default: DIR/fortunes.txt with
#                     --prebuilt when it exists, else scalevec's default corpus)
#   --quick           fewer timed steps (a smoke run)
#   --prebuilt DIR    skip the build: DIR holds test_gpu, scalevec and lib/ with the shared
#                     libraries they need (for a machine without the build dependencies; make
#                     DIR with tools/gpu-bundle.sh on a machine that has them)
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
PRECISIONS=fp32,bf16
COMPILE=fp32
DATA=""
QUICK=0
PREBUILT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    --presets) PRESETS=$2; shift 2 ;;
    --precisions) PRECISIONS=$2; shift 2 ;;
    --compile) COMPILE=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --prebuilt) PREBUILT=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "[gpu-check] $*" >&2; }
mkdir -p "$(dirname "$OUT")"

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
  [ -z "$DATA" ] && [ -f "$PREBUILT/fortunes.txt" ] && DATA=$PREBUILT/fortunes.txt
  # The machine's CUDA runtime and cuBLAS may sit outside the loader's path (e.g. under
  # /usr/local/cuda-*/targets/...): find what the binaries miss and add its folder.
  for lib in $(ldd "$SCALEVEC" "$TEST_GPU" | awk '/not found/ {print $1}' | sort -u); do
    found=$(find /usr/local /opt /usr/lib -name "$lib" -print -quit 2>/dev/null || true)
    if [ -n "$found" ]; then
      export LD_LIBRARY_PATH="$(dirname "$found"):$LD_LIBRARY_PATH"
      say "found $lib in $(dirname "$found")"
    fi
  done
  if ldd "$SCALEVEC" "$TEST_GPU" | grep -q 'not found'; then
    say "error: libraries not found: $(ldd "$SCALEVEC" "$TEST_GPU" | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')"
    exit 1
  fi
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

# The results file, rewritten after every stage so that a run cut short still leaves one.
CMDS="$OUT.commands.log"
CMD_FAILED=""
BENCH_RUNS=()
STEPS=20; WARMUP=3
[ "$QUICK" = 1 ] && STEPS=5 && WARMUP=2
write_results() {
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
    echo "By family (\`tools/cmp_summary.py\`; the thresholds: tests/gpu/test_gpu.cpp, chapter 10):"
    echo
    python3 "$ROOT/tools/cmp_summary.py" "$OUT.tests.log" || echo "(the summary failed)"
    echo
    echo "Every comparison (max abs error, max relative error, share of its threshold used):"
    echo
    echo '```'
    grep '^\[cmp\]' "$OUT.tests.log" | sed 's/^\[cmp\] //' || true
    echo '```'
    if [ -n "$CMD_FAILED" ]; then
      echo
      echo "**Commands** with \`--device cuda\` (train, gradcheck, ablate; the whole log is $(basename "$CMDS")): $CMD_FAILED failed."
      echo
      echo '```'
      grep -E '^\$ scalevec|^scalevec |^error|^exit |^GPU|PASS|FAIL|val loss|^grid done' "$CMDS" | cut -c1-200 | head -80 || true
      echo '```'
    fi
    for RUN in "${BENCH_RUNS[@]}"; do
      IFS=: read -r P PEAK RC CFLAG <<< "$RUN"
      echo
      echo "**Benchmark, $P** (\`scalevec bench --device cuda --precision $P --presets $PRESETS" \
           "${CFLAG:+$CFLAG }--rounds 1 --steps $STEPS --warmup $WARMUP --peak-tflops $PEAK\`; MFU" \
           "against the dense $P peak of $PEAK TFLOP/s), exit $RC:"
      echo
      echo '```'
      cat "$OUT.bench-$P.log"
      echo '```'
      if [ "$RC" != 0 ]; then
        echo
        echo "Its errors:"
        echo '```'
        tail -20 "$OUT.bench-$P.err"
        echo '```'
      fi
    done
  } > "$OUT"
}

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
write_results

# 3. The commands with --device cuda, once each, small: they must run and agree with the CPU.
say "running train, gradcheck and ablate with --device cuda"
: > "$CMDS"
CMD_FAILED=0
WORK=$(mktemp -d)
DATA_FLAG=()
[ -n "$DATA" ] && DATA_FLAG=(--data "$DATA")
run_cmd() {  # run_cmd LABEL ARGS...: log the command and its output, count failures
  local label=$1; shift
  { echo "\$ scalevec $*"; } >> "$CMDS"
  if "$SCALEVEC" "$@" >> "$CMDS" 2>&1; then say "  $label: ok"; echo "exit 0" >> "$CMDS"
  else local rc=$?; say "  $label: FAILED (exit $rc)"; echo "exit $rc" >> "$CMDS"; CMD_FAILED=$((CMD_FAILED + 1)); fi
  echo >> "$CMDS"
}
set +e
for P in fp32 bf16; do
  run_cmd "train $P" train --device cuda --precision $P --steps 200 --eval-every 100 --quiet \
    --sample-len 80 --out "$WORK/train-$P" "${DATA_FLAG[@]}"
done
run_cmd "train cpu (same run as train fp32)" train --steps 200 --eval-every 100 --quiet \
  --sample-len 0 --out "$WORK/train-cpu" "${DATA_FLAG[@]}"
for P in fp32 tf32 bf16; do
  run_cmd "gradcheck $P" gradcheck --device cuda --precision $P --scale unified --samples 8
done
run_cmd "ablate bf16" ablate --device cuda --precision bf16 --out "$WORK/abl" --arms baseline,unified \
  --seeds 1 -- --steps 60 --eval-every 30 "${DATA_FLAG[@]}"
set -e
rm -rf "$WORK"
say "commands: $CMD_FAILED failed"
write_results

# 4. The benchmark against PyTorch on the same GPU (eager and torch.compile), per precision.
BENCH_RC=0
for P in ${PRECISIONS//,/ }; do
  PEAK=0
  case "$P:$CARD" in  # dense peaks from NVIDIA's data sheets (SXM parts unless named)
    fp32:*H100*PCIe*) PEAK=51 ;;
    fp32:*H100*|fp32:*H200*) PEAK=67 ;;
    fp32:*A100*) PEAK=19.5 ;;
    tf32:*H100*PCIe*) PEAK=378 ;;
    tf32:*H100*|tf32:*H200*) PEAK=494 ;;
    tf32:*A100*) PEAK=156 ;;
    bf16:*H100*PCIe*) PEAK=756 ;;
    bf16:*H100*|bf16:*H200*) PEAK=989 ;;
    bf16:*A100*) PEAK=312 ;;
  esac
  CFLAG=""
  [[ ",$COMPILE," == *",$P,"* ]] && CFLAG=--torch-compile
  say "benchmarking presets $PRESETS, $P, on the GPU (scalevec vs PyTorch eager${CFLAG:+ and torch.compile})"
  set +e
  "$SCALEVEC" bench --device cuda --precision $P --presets "$PRESETS" --python python3 $CFLAG \
    --rounds 1 --steps $STEPS --warmup $WARMUP --peak-tflops $PEAK --json "$OUT.bench-$P.json" \
    > "$OUT.bench-$P.log" 2> "$OUT.bench-$P.err"
  RC=$?
  set -e
  say "bench $P exit $RC"
  [ $RC != 0 ] && BENCH_RC=$RC
  BENCH_RUNS+=("$P:$PEAK:$RC:$CFLAG")
  write_results
done

write_results
say "wrote $OUT"
[ "$TEST_RC" = 0 ] && [ "$CMD_FAILED" = 0 ] && [ "$BENCH_RC" = 0 ]
