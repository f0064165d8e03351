#!/usr/bin/env bash
# A model compiled for a vector target checks the CPU once: <model>_cpu_supported() in the
# generated API and in the descriptor. The loader and `lathe run` ask it before any call and
# refuse with a clear error (exit status 1) instead of dying on an illegal instruction:
#   - on any CPU, a .so built with __builtin_cpu_supports forced to 0 (a CPU without AVX2);
#   - --target x86-64-v4 runs where the CPU has AVX-512F and is refused where it has not;
#   - --target generic has nothing to check and runs everywhere.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'status=$?; [ $status = 0 ] || cat "$TMP/log" 2>/dev/null; rm -rf "$TMP"' EXIT
X=$ROOT/tests/fixtures/mlp/x.npy
MODEL=$ROOT/examples/mlp.lathe

# run_expect STATUS SO [MESSAGE]: lathe run SO exits with STATUS (and says MESSAGE)
run_expect() {
  local want=$1 so=$2 status=0
  "$LATHE" run "$so" --input x="$X" --out "$TMP/out" >/dev/null 2>"$TMP/err" || status=$?
  if [ "$status" != "$want" ]; then
    echo "FAIL: lathe run $(basename "$so"): exit status $status, expected $want"
    cat "$TMP/err"
    exit 1
  fi
  if [ $# -ge 3 ] && ! grep -q -- "$3" "$TMP/err"; then
    echo "FAIL: lathe run $(basename "$so"): want '$3' in:"
    cat "$TMP/err"
    exit 1
  fi
}

"$LATHE" compile --target x86-64-v3 "$MODEL" -o "$TMP/v3" >/dev/null 2>>"$TMP/log"
grep -q '^int mlp_cpu_supported(void);' "$TMP/v3/mlp.h"
grep -q '__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")' "$TMP/v3/mlp.c"
grep -q 'mlp_cpu_supported, "x86-64-v3",' "$TMP/v3/mlp.c"
cc -std=c99 -O1 -shared -fPIC '-D__builtin_cpu_supports(feature)=0' "$TMP/v3/mlp.c" \
  -o "$TMP/libmlp.so" -lm
run_expect 1 "$TMP/libmlp.so" \
  "model 'mlp' was compiled for x86-64-v3, and this CPU lacks the instructions its kernels use"
echo "ok: a CPU without the target's instructions is refused"

"$LATHE" build --target x86-64-v4 "$MODEL" -o "$TMP/libv4.so" >/dev/null 2>>"$TMP/log"
if grep -qw avx512f /proc/cpuinfo; then
  run_expect 0 "$TMP/libv4.so"
  echo "ok: x86-64-v4 runs on this AVX-512 CPU"
else
  run_expect 1 "$TMP/libv4.so" "compiled for x86-64-v4, and this CPU lacks"
  echo "ok: x86-64-v4 refused on this CPU without AVX-512F (no illegal instruction)"
fi

"$LATHE" compile --target generic "$MODEL" -o "$TMP/generic" >/dev/null 2>>"$TMP/log"
grep -q 'return 1; /\* generic: nothing beyond' "$TMP/generic/mlp.c"
"$LATHE" build --target generic "$MODEL" -o "$TMP/libgeneric.so" >/dev/null 2>>"$TMP/log"
run_expect 0 "$TMP/libgeneric.so"
echo "ok: generic runs"
