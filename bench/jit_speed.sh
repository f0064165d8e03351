#!/usr/bin/env bash
# bench/jit_speed.sh [BUILD_DIR] — the JIT's code against cc -O3 -march=native on the same C
# (bench/jit_speed.c): a 256^3 and a 512^3 matmul, the MLP's forward (batch 64) and train step,
# the CNN's train step — the JIT's optimized tier (docs/jit.md, "The tiered compile") — and the
# baseline tier of the two train steps. BUILD_DIR (default: build) is configured RelWithDebInfo
# and liblathe built in it if needed. Environment: BENCH_REPS (default 5), BENCH_MIN_TIME
# (default 0.2). CC (default cc) is the compiler of the cc side; LATHE_JIT_ENTRY_OPT=3 compiles
# the JIT's entry points at -O3 instead of its entry pipeline (docs/jit.md). Prints one line
# per row; measurement only.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" --target liblathe -j 2 >/dev/null
grep -q '^Libs: .*-lclang-cpp' "$BUILD/lathe.pc" || {
  echo "jit_speed: $BUILD has no JIT (LATHE_JIT=OFF): nothing to measure" >&2
  exit 1
}
libs=$(sed -n 's/^Libs: \${libdir}\/liblathe\.a //p' "$BUILD/lathe.pc")
# shellcheck disable=SC2086
cc -std=c11 -O2 -I"$ROOT" -I"$ROOT/include" "$ROOT/bench/jit_speed.c" "$BUILD/liblathe.a" $libs \
  -o "$BUILD/jit_speed"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lathe-jit-speed.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
printf 'const M = 256\nconst K = 256\nconst N = 256\n%s\n' \
  'model mm(a: f32[M, K], b: f32[K, N]) { output c = a @ b }' >"$WORK/mm.lathe"
opts=(--reps "${BENCH_REPS:-5}" --min-time "${BENCH_MIN_TIME:-0.2}")
# the cache off: every JIT compile is tiered, and the rows time its optimized tier once swapped
# in (lathe_wait_optimized), not an object loaded from the cache (the same bytes, no stub)
export OMP_NUM_THREADS=1 LATHE_LIB_DIR="$ROOT/lib" LATHE_NO_CACHE=1
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "JIT code vs ${CC:-cc} -O3 -march=native (CPU time per call), $cpu," \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"
row() {
  local label=$1
  shift
  printf '%-26s ' "$label"
  "$BUILD/jit_speed" "$@" "${opts[@]}" || echo "failed"
}
row "matmul 256^3" "$WORK/mm.lathe" forward
row "matmul 512^3" "$WORK/mm.lathe" forward -D M=512 -D K=512 -D N=512
row "MLP forward, batch 64" "$ROOT/examples/mlp.lathe" forward -D N=64
row "MLP train step, batch 64" "$ROOT/examples/mlp.lathe" train -D N=64
row "CNN train step, batch 64" "$ROOT/examples/cnn.lathe" train -D N=64
# the baseline tier (the model's code at -O0, what runs while the optimized tier compiles on a
# background thread)
row "MLP train step, baseline" "$ROOT/examples/mlp.lathe" train -D N=64 \
  --baseline 1
row "CNN train step, baseline" "$ROOT/examples/cnn.lathe" train -D N=64 \
  --baseline 1
