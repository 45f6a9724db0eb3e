#!/usr/bin/env bash
# The "step through one block in gdb" recipe, run for real in gdb's batch mode:
#
#   cmake --preset debug && cmake --build --preset debug -j"$(nproc)" --target ch00_getting_started
#   OMP_NUM_THREADS=1 gdb --args build-debug/tutorials/ch00_getting_started --steps 1
#   (gdb) break scalevec::Block::forward   # every Block<T, Ops> (gdb 12+: no template arguments)
#   (gdb) run
#   (gdb) next                       # a few times, past the rmsnorm_forward(n1_ ...) line
#   (gdb) print n1_[0]@8             # the first 8 values of N(x)
#   (gdb) print x[0]@8               # ... and of the block's input
#   (gdb) break scalevec::Block::backward
#   (gdb) continue
#
# It builds the debug preset (one target: ch00_getting_started) into build-debug/, keeps its own
# files in build-debug/gdb_recipe/, and fails with a message unless gdb stopped in
# Block<float, CpuOps<float>>::forward (the reference block on the CPU backend) with line
# information (block.h:LINE, past the signature line), stepped, printed numbers of the named array
# n1_ (not all zero), and stopped in its backward.
# Without gdb it fails too, unless SCALEVEC_ALLOW_NO_GDB=1 (then it exits 77: CTest's "skipped").
# SCALEVEC_GDB_RECIPE_NO_BUILD=1 skips the configure + build (use build-debug as it is);
# SCALEVEC_CMAKE names the cmake to use (CTest passes its own).
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
cd "$src" || exit 1
fail() { echo "gdb_recipe: FAIL: $*" >&2; exit 1; }
cmake=${SCALEVEC_CMAKE:-cmake}

if ! command -v gdb >/dev/null 2>&1; then
  if [[ ${SCALEVEC_ALLOW_NO_GDB:-0} == 1 ]]; then
    echo "gdb_recipe: gdb not installed and SCALEVEC_ALLOW_NO_GDB=1: skipped"; exit 77
  fi
  fail "gdb is not installed (tools/setup.sh --test installs it; SCALEVEC_ALLOW_NO_GDB=1 skips)"
fi

work=build-debug/gdb_recipe
mkdir -p "$work" || fail "cannot create $work"
# One recipe run at a time per checkout (two ctest trees may run it at once; both build here).
exec 9>"$work/lock"
flock 9 || fail "cannot lock $work/lock"

if [[ ${SCALEVEC_GDB_RECIPE_NO_BUILD:-0} != 1 ]]; then
  echo "gdb_recipe: cmake --preset debug"
  if ! "$cmake" --preset debug >"$work/configure.log" 2>&1; then
    tail -30 "$work/configure.log"
    fail "configure of the debug preset failed ($work/configure.log)"
  fi
  echo "gdb_recipe: cmake --build --preset debug --target ch00_getting_started"
  "$cmake" --build --preset debug -j"$(nproc 2>/dev/null || echo 2)" --target ch00_getting_started \
    >"$work/build.log" 2>&1 ||
    { grep -m20 -E "error|Error" "$work/build.log"; fail "debug build failed ($work/build.log)"; }
fi
exe=build-debug/tutorials/ch00_getting_started
[[ -x $exe ]] || fail "$exe was not built"

# The forward's first statement after n1 = N(x): gdb runs there from the breakpoint ("next" a few
# times in the recipe; "advance LINE" here, so that edits to block.h do not change the count).
block=ref/model/block.h
fwd=$(grep -n 'void Block<T, Ops>::forward(' "$block" | head -1 | cut -d: -f1)
[[ -n $fwd ]] || fail "$block has no Block<T, Ops>::forward: update this recipe"
rms=$(awk -v s="$fwd" 'NR > s && /rmsnorm_forward\(n1_/ { print NR; exit }' "$block")
[[ -n $rms ]] ||
  fail "Block<T>::forward in $block no longer calls rmsnorm_forward(n1_...): update this recipe"

cat >"$work/recipe.gdb" <<EOF
set pagination off
set confirm off
set width 0
set filename-display basename
break scalevec::Block::forward
run
next
advance block.h:$((rms + 1))
print n1_[0]@8
print x[0]@8
delete
break scalevec::Block::backward
continue
print dres[0]@4
kill
EOF
echo "gdb_recipe: OMP_NUM_THREADS=1 gdb -batch -x $work/recipe.gdb --args $exe --steps 1"
OMP_NUM_THREADS=1 timeout 300 gdb -nx -batch -x "$work/recipe.gdb" --args "$exe" --steps 1 \
  >"$work/gdb.log" 2>&1
rc=$?
echo "---- gdb output ($work/gdb.log) ----"
grep -vE '^\[(New|Thread|Inferior)|^$' "$work/gdb.log" | cut -c1-200
echo "-------------------------------"
[[ $rc -eq 124 ]] && fail "gdb timed out ($work/gdb.log)"
log=$(cat "$work/gdb.log")

# 1. Stopped in the reference block's forward, with file and line, after the prologue (on the
#    signature line, before it, gdb shows the stack's garbage as the arguments and members). The
#    breakpoint has a location per instantiation (float, double): "Breakpoint 1.N,".
ref_block='scalevec::Block<float, scalevec::CpuOps<float> >'
hit=$(grep -m1 -E "^Breakpoint 1(\.[0-9]+)?, $ref_block::forward " <<<"$log")
if [[ -z $hit ]]; then
  bare=$(grep -m1 -E "^Breakpoint 1(\.[0-9]+)?, 0x[0-9a-f]+ in $ref_block::forward" <<<"$log")
  [[ -n $bare ]] &&
    fail "gdb stopped in Block<float>::forward WITHOUT line information (built without -g?): $bare"
  fail "gdb did not stop in $ref_block::forward (see $work/gdb.log)"
fi
grep -qE ' at [^ ]*block\.h:[0-9]+$' <<<"$hit" ||
  fail "the stop in Block<float>::forward has no block.h:LINE (no debug info?): $hit"
line=${hit##*:}
(( line > fwd )) || fail "gdb stopped on the signature line $line of Block<T, Ops>::forward, before the \
prologue (its arguments are garbage there; compiled without -fno-var-tracking?): $hit"
err=$(grep -m1 -A1 'Error in sourced command file' <<<"$log" | tail -1)
[[ -n $err ]] && fail "a gdb command of the recipe failed: $err"
# 2. "next" printed the next source line (line number, tab, code).
grep -qE $'^[0-9]+\t  [^ ]' <<<"$log" || fail "'next' printed no source line (see $work/gdb.log)"
# 3. n1_[0]@8 printed 8 numbers, not all zero (rmsnorm rows have RMS 1).
num='-?[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?'
vals=$(grep -m1 -E "^\\\$[0-9]+ = \\{$num(, $num){7}\\}$" <<<"$log")
[[ -n $vals ]] || fail "'print n1_[0]@8' printed no array of 8 numbers (see $work/gdb.log)"
grep -qE '[1-9]' <<<"${vals#*=}" || fail "n1_ printed all zeros (rmsnorm not stepped over?): $vals"
# 4. Stopped in Block<float>::backward with line information.
grep -qE "^Breakpoint 2(\.[0-9]+)?, $ref_block::backward .* at [^ ]*block\.h:[0-9]+\$" <<<"$log" ||
  fail "gdb did not stop in Block<float>::backward at block.h:LINE (see $work/gdb.log)"

echo "gdb_recipe: OK: ${hit##* at }; n1_[0]@8 ${vals#*= }"
