#!/usr/bin/env bash
# Prepare tools/gpu-check.sh for a GPU machine that cannot build scalevec (one without fmt, CLI11,
# GoogleTest or OpenBLAS, as a bare CUDA image is): build scalevec and test_gpu here for the GPU's
# architecture, and put them in one folder with the shared libraries they need that such a
# machine lacks, and the default training text.
#
#   tools/gpu-bundle.sh [--arch SM] [--build-dir DIR] OUTDIR
#
#   --arch SM         CUDA architecture of the target GPU (default: 90, H100/H200)
#   --build-dir DIR   build here (default: build-cuda), Release, CUDA on, no -march=native
#   OUTDIR            gets scalevec, test_gpu, lib/ and fortunes.txt
#
# Then, on the GPU machine, from the same commit's checkout:  tools/gpu-check.sh --prebuilt OUTDIR
# (gpu-check finds the machine's own CUDA libraries, cuBLAS and the runtime, by itself). The
# C/C++ runtime (libc, libstdc++, libgcc_s) and the CUDA libraries are not copied: the GPU
# machine's own are used.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=90
BUILD=build-cuda
OUTDIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu-bundle: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) OUTDIR=$1; shift ;;
  esac
done
[ -n "$OUTDIR" ] || { echo "gpu-bundle: give the output folder (see --help)" >&2; exit 2; }
say() { echo "[gpu-bundle] $*" >&2; }
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] ||
  { say "error: nvcc not found: the bundle needs the CUDA toolkit to build"; exit 1; }

say "configuring $BUILD for sm_$ARCH"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
  -DSCALEVEC_NATIVE=OFF >/dev/null
say "building scalevec and test_gpu"
cmake --build "$BUILD" --target scalevec test_gpu -j"$(nproc)" >/dev/null ||
  { say "error: the build failed (is $BUILD configured with the CUDA mirror? see cmake's output)"; exit 1; }

mkdir -p "$OUTDIR/lib"
cp "$BUILD/tools/scalevec" "$BUILD/tests/gpu/test_gpu" "$OUTDIR/"
# Every shared library the two need, except the C/C++ runtime and CUDA's, copied under its soname
# (following symlinks, e.g. Debian's alternatives for OpenBLAS).
skip='^(libc|libm|libstdc\+\+|libgcc_s|ld-linux-x86-64|libpthread|libdl|librt|linux-vdso|libcudart|libcublas|libcublasLt|libcuda)\.so'
ldd "$OUTDIR/scalevec" "$OUTDIR/test_gpu" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
  while read -r soname path; do
    if [[ "$soname" =~ $skip ]]; then continue; fi
    cp -L "$path" "$OUTDIR/lib/$soname"
    say "  lib/$soname <- $path"
  done

# The default corpus as one file (the fortune files without extension, in name order), so the
# command checks train on the same text on any machine.
if [ -d /usr/share/games/fortunes ]; then
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.*' | sort | xargs cat > "$OUTDIR/fortunes.txt"
  say "fortunes.txt: $(wc -c < "$OUTDIR/fortunes.txt") bytes"
else
  say "no /usr/share/games/fortunes here: gpu-check will train on the GPU machine's default corpus"
fi
say "done: $OUTDIR ($(du -sh "$OUTDIR" | cut -f1)); on the GPU machine: tools/gpu-check.sh --prebuilt $OUTDIR"
