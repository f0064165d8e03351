#!/usr/bin/env bash
# bench/sparse.sh LATHE — pruned and baked against dense and baked (issue #20,
# docs/compression.md): the MLP's fixture weights pruned by `lathe prune` to 50, 70, 80, 90
# and 95% and baked at batch 1 (passes/sparsify.c turns weights of at most 15% nonzeros into
# sparse kernels), timed by bench/drive.c in one run beside the dense bake of the unpruned
# weights. Prints per row the median seconds, dense/pruned (above 1 = the pruned bake is
# faster) and the object's code + data bytes. Goal (issue #20): at 90%, >= 2x faster and
# >= 3x smaller. Environment: BENCH_REPS (default 7), BENCH_MIN_TIME (seconds per run, 0.3).
set -uo pipefail
LATHE=$(realpath "${1:-build/lathe}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${BENCH_REPS:-7}
MIN_TIME=${BENCH_MIN_TIME:-0.3}
CC=${CC:-cc}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
MODEL=$ROOT/examples/mlp.lathe
W=$ROOT/tests/fixtures/mlp/weights.safetensors

build() { # NAME WEIGHTS: bake at batch 1 and link bench/drive.c
  local dir=$WORK/$1
  "$LATHE" compile "$MODEL" -D N=1 --weights "$2" --bake -o "$dir" --prefix m >"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -I"$dir" -DMODEL_HEADER='"m.h"' \
      -DMODEL_INFO=m_info "$ROOT/bench/drive.c" "$dir/m.c" -o "$dir/drive" -lm >>"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -c "$dir/m.c" -o "$dir/m.o" >>"$dir.log" 2>&1
}
seconds() {
  "$WORK/$1/drive" forward --reps "$REPS" --min-time "$MIN_TIME" 2>&1 | awk '/^seconds/ {print $2}'
}
bytes() { size -A "$WORK/$1/m.o" | awk '$1 ~ /^\.(text|data|rodata)/ {s += $2} END {print s}'; }

echo "CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
build dense "$W" || { cat "$WORK/dense.log"; exit 1; }
dense=$(seconds dense)
printf '%-24s %12s %10s %12s %8s\n' row seconds dense/this bytes smaller
printf '%-24s %12.3e %10s %12d %8s\n' "dense" "$dense" 1.00 "$(bytes dense)" 1.0
for s in 0.5 0.7 0.8 0.9 0.95; do
  "$LATHE" prune "$MODEL" -w "$W" -s "$s" -o "$WORK/p$s.safetensors" >/dev/null 2>&1
  build "p$s" "$WORK/p$s.safetensors" || { cat "$WORK/p$s.log"; continue; }
  t=$(seconds "p$s")
  printf '%-24s %12.3e %10.2f %12d %8.1f\n' "pruned $s" "$t" \
    "$(awk -v a="$dense" -v b="$t" 'BEGIN {print a / b}')" "$(bytes "p$s")" \
    "$(awk -v a="$(bytes dense)" -v b="$(bytes "p$s")" 'BEGIN {print a / b}')"
done
