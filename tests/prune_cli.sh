#!/usr/bin/env bash
# `lathe prune` (issue #20): one-shot pruning of a checkpoint, checked bit for bit against the
# NumPy oracle tests/prune/prune_ref.py — unstructured per tensor and global, channels by L1
# and L2 (a dense weight's columns, a conv weight's rows), N:M along the reduction axis —
# with weights drawn from few levels so that ties decide many choices. Every tensor not
# pruned is unchanged. Bad input: usage errors exit 2, model/data errors exit 1, and neither
# writes the output.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
PY=/usr/bin/python3
REF=$ROOT/tests/prune/prune_ref.py
MODEL=$ROOT/tests/prune/model.lathe
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
$PY -c 'import numpy' || { echo "prune_cli: python3-numpy is missing" >&2; exit 1; }
$PY "$REF" make w.safetensors

run() { # run NAME LATHE-ARGS... -- ORACLE-SPEC...
  local name=$1; shift
  local args=()
  while [ "$1" != "--" ]; do args+=("$1"); shift; done
  shift
  "$LATHE" prune "$MODEL" -w w.safetensors -o "$name.safetensors" "${args[@]}" > "$name.log"
  grep -q 'zero' "$name.log" || { echo "FAIL $name: no report"; cat "$name.log"; exit 1; }
  $PY "$REF" check w.safetensors "$name.safetensors" "$@"
}
run mag50 -s 0.5 -- magnitude 0.5 c1.w d1.w out.w
run mag90 -s 0.9 -- magnitude 0.9 c1.w d1.w out.w
run mag_glob -s 0.7 --global -- magnitude 0.7 global c1.w d1.w out.w
run mag_sel -s 0.3 --params 'd1.*,out.w' -- magnitude 0.3 d1.w d1.b out.w
run ch_l1 -s 0.5 --kind channels --params '*.w' -- channels 0.5 l1 c1.w d1.w out.w
run ch_l2 -s 0.34 --kind channels --norm l2 --params 'c1.w,d1.w' -- channels 0.34 l2 c1.w d1.w
run nm24 --kind 2:4 --params 'd1.w,out.w' -- nofm 2 4 d1.w out.w
run nm13 --kind 1:3 --params 'c1.w' -- nofm 1 3 c1.w

# the oracle can tell them apart (global ranking differs from per-tensor, 2:4 from 1:3 ...)
if $PY "$REF" check w.safetensors mag_glob.safetensors magnitude 0.7 c1.w d1.w out.w >/dev/null ||
   $PY "$REF" check w.safetensors ch_l1.safetensors channels 0.5 l2 c1.w d1.w out.w >/dev/null; then
  echo "FAIL: the oracle accepts a different pruning"; exit 1
fi
# the report states the sparsity reached: round(0.9 * 192) = 173 of d1.w's 192 weights
grep -q '^d1.w .* 90.10%$' mag90.log || { echo "FAIL: the report of mag90"; cat mag90.log; exit 1; }

expect_fail() { # expect_fail CODE MESSAGE-PATTERN ARGS...
  local code=$1 pattern=$2; shift 2
  set +e
  "$LATHE" prune "$MODEL" -o bad.safetensors "$@" > out.txt 2> err.txt
  local rc=$?
  set -e
  if [ $rc -ne "$code" ] || ! grep -q -- "$pattern" err.txt || [ -e bad.safetensors ]; then
    echo "FAIL: prune $* gave $rc (want $code, '$pattern'), output left: $(ls)"
    cat err.txt
    exit 1
  fi
}
expect_fail 2 'expects a number in \[0, 1)' -w w.safetensors -s 1
expect_fail 2 'expects a number in \[0, 1)' -w w.safetensors -s -0.1
expect_fail 2 'expected --sparsity' -w w.safetensors
expect_fail 2 'drop --sparsity' -w w.safetensors -s 0.5 --kind 2:4
expect_fail 2 'expects magnitude, channels or N:M' -w w.safetensors --kind 4:2
expect_fail 2 'does not apply' -w w.safetensors -s 0.5 --kind channels --global
expect_fail 1 "'zz\*' matches no param" -w w.safetensors -s 0.5 --params 'zz*'
expect_fail 1 'not a multiple of 5' -w w.safetensors --kind 2:5 --params d1.w
expect_fail 1 "'d1.b' is not the weight" -w w.safetensors -s 0.5 --kind channels --params 'd1.*'
expect_fail 1 'cannot open' -w missing.safetensors -s 0.5
$PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/fixtures'); import safetensors_py as s
t = s.load('w.safetensors'); del t['d1.w']; s.save('short.safetensors', t)
t = s.load('w.safetensors'); t['d1.w'] = t['d1.w'][:12]; s.save('shape.safetensors', t)"
expect_fail 1 "has no tensor 'd1.w'" -w short.safetensors -s 0.5
expect_fail 1 "'d1.w' is f32\[12, 8\]" -w shape.safetensors -s 0.5
echo "prune_cli: ok"
