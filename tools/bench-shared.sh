#!/usr/bin/env bash
# Training speed on a shared machine: the same short `scalevec train` run idle, beside one
# CPU-bound competitor (a shell busy loop), and two copies side by side. Prints the wall times and
# their ratios to the idle run; the OpenMP environment is whatever the caller sets (nothing set =
# scalevec's default). Usage:
#     tools/bench-shared.sh [--steps N] [--threads N] [--preset P] [--runs R] [--bin PATH]
# Each configuration runs R times (default 3) and the median is printed. Run it on an otherwise
# idle machine: the point is to measure what one known competitor does.
set -euo pipefail
steps=60 threads=2 preset=tiny runs=3 bin=build/tools/scalevec
while [[ $# -gt 0 ]]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --preset) preset="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x "$bin" ]] || { echo "error: $bin not built (tools/build.sh)" >&2; exit 2; }
work=$(mktemp -d /tmp/scalevec-shared-XXXXXX)
spinner=""
cleanup() { [[ -n "$spinner" ]] && kill "$spinner" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

train() {  # one run in directory $1; prints its wall seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" train --preset "$preset" --steps "$steps" --eval-every 0 --eval-batches 1 --sample-len 0 \
    --threads "$threads" --out "$work/$1" --force >"$work/$1.log" 2>&1
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b - a}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "[bench-shared] $preset, $steps steps, --threads $threads, $runs runs each; env: OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-} GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-}" >&2
idle=() loaded=() pair=()
for r in $(seq "$runs"); do
  idle+=("$(train idle)")
  ( while :; do :; done ) & spinner=$!
  loaded+=("$(train loaded)")
  kill "$spinner"; wait "$spinner" 2>/dev/null || true; spinner=""
  a=$(mktemp "$work/a.XXXX") b=$(mktemp "$work/b.XXXX")
  train pair1 >"$a" & p1=$!
  train pair2 >"$b" & p2=$!
  wait "$p1" "$p2"
  pair+=("$(cat "$a")" "$(cat "$b")")
  echo "[bench-shared] run $r: idle ${idle[-1]} s, loaded ${loaded[-1]} s, two at once $(cat "$a") / $(cat "$b") s" >&2
done
mi=$(printf '%s\n' "${idle[@]}" | median)
ml=$(printf '%s\n' "${loaded[@]}" | median)
mp=$(printf '%s\n' "${pair[@]}" | median)
awk -v i="$mi" -v l="$ml" -v p="$mp" 'BEGIN {
  printf "idle %.2f s   loaded %.2f s (%.2fx)   two at once %.2f s each (%.2fx)\n", i, l, l / i, p, p / i }'
