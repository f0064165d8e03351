#!/usr/bin/env bash
# bench/compile_latency.sh [BUILD_DIR] [RUNS] — compile latency of the in-process JIT:
# the MLP train step, the MLP forward, the CNN train step and a one-line REPL expression (see
# bench/compile_latency.c): nothing cached (object cache off), a new model whose kernel library
# is cached (docs/jit.md), and from the object cache; under each model the medians of each
# phase (parse, split, kernels, baseline, pipeline, codegen, load, store, background:
# jit_phase_times). Targets (issue #23): MLP train step JIT <= 150 ms, CNN <= 300 ms, either
# <= 20 ms from the cache. A compile that misses the cache is tiered (docs/jit.md, "The tiered
# compile"): its time is until the baseline runs; LATHE_JIT_TIERED=0 measures one tier.
# LATHE_JIT_ENTRY_OPT=3 in the environment compiles the entry points at -O3 instead of the
# JIT's cheaper entry pipeline (docs/jit.md), for an A/B of the two.
# BUILD_DIR (default: build, RelWithDebInfo as `make build` makes it) is configured and
# liblathe built in it if needed; the driver links liblathe like an embedding program does.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
RUNS=${2:-11}
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" --target liblathe -j 2 >/dev/null
grep -q '^Libs: .*-lclang-cpp' "$BUILD/lathe.pc" || {
  echo "compile_latency: $BUILD has no JIT (LATHE_JIT=OFF): nothing to measure" >&2
  exit 1
}
libs=$(sed -n 's/^Libs: \${libdir}\/liblathe\.a //p' "$BUILD/lathe.pc")
cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -I"$ROOT" -I"$ROOT/include" \
  "$ROOT/bench/compile_latency.c" "$BUILD/liblathe.a" $libs -o "$BUILD/compile_latency"
echo "compile latency, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} "$BUILD/compile_latency" "$ROOT" "$RUNS"
