#!/usr/bin/env bash
# bench/prune_channels.sh LATHE [DENSE.safetensors [PRUNED.safetensors]] — structured pruning
# against the dense model (issue #20, docs/compression.md): examples/cnn.lathe baked at batch
# 64 twice — with the dense weights, and with half the output channels of both convolutions
# zeroed, which passes/prune_channels.c removes from the C (c1 32 -> 16 channels, c2 64 -> 32
# over 16 input channels, the flatten 1600 -> 800) — each linked with bench/drive.c and timed
# in the same run, alternating dense and pruned ROUNDS times so that both see the same load.
# Prints each bake's median seconds per batch-64 forward call, dense/pruned (above 1 = the
# pruned bake is faster; goal >= 1.8x), the workspace bytes and the object's code + data.
# Weights: DENSE defaults to the CNN test fixture; PRUNED to DENSE pruned here by
# `lathe prune --kind channels -s $SPARSITY --params $PARAMS` (a fine-tuned checkpoint of
# scripts/prune_experiment.sh times the same: its zero channels are what counts).
# Environment: SPARSITY (0.5), PARAMS (c1.w,c2.w), BENCH_ROUNDS (5), BENCH_REPS (3 per
# round), BENCH_MIN_TIME (seconds per rep, 0.3), CC (cc).
set -uo pipefail
LATHE=$(realpath "${1:-build/lathe}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DENSE=$(realpath "${2:-$ROOT/tests/fixtures/cnn/weights.safetensors}")
PRUNED=${3:-}
SPARSITY=${SPARSITY:-0.5}
PARAMS=${PARAMS:-c1.w,c2.w}
ROUNDS=${BENCH_ROUNDS:-5}
REPS=${BENCH_REPS:-3}
MIN_TIME=${BENCH_MIN_TIME:-0.3}
CC=${CC:-cc}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
MODEL=$ROOT/examples/cnn.lathe

if [ -z "$PRUNED" ]; then
  PRUNED=$WORK/pruned.safetensors
  "$LATHE" prune "$MODEL" -w "$DENSE" -s "$SPARSITY" --kind channels --params "$PARAMS" \
    -o "$PRUNED" >"$WORK/prune.log" 2>&1 || { cat "$WORK/prune.log"; exit 1; }
fi

build() { # NAME WEIGHTS: bake at batch 64 and link bench/drive.c
  local dir=$WORK/$1
  "$LATHE" compile "$MODEL" -D N=64 --weights "$2" --bake -o "$dir" --prefix m >"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -I"$dir" -DMODEL_HEADER='"m.h"' \
      -DMODEL_INFO=m_info "$ROOT/bench/drive.c" "$dir/m.c" -o "$dir/drive" -lm >>"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -c "$dir/m.c" -o "$dir/m.o" >>"$dir.log" 2>&1
}
seconds() {
  "$WORK/$1/drive" forward --reps "$REPS" --min-time "$MIN_TIME" 2>&1 | awk '/^seconds/ {print $2}'
}
bytes() { size -A "$WORK/$1/m.o" | awk '$1 ~ /^\.(text|data|rodata)/ {s += $2} END {print s}'; }
workspace() { grep -oE 'M_WORKSPACE_BYTES = [0-9]+' "$WORK/$1/m.h" | grep -oE '[0-9]+$'; }
median() {
  sort -g | awk '{v[NR] = $1}
    END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

echo "CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
for name in dense pruned; do
  w=$DENSE
  [ "$name" = pruned ] && w=$PRUNED
  build "$name" "$w" || { cat "$WORK/$name.log"; exit 1; }
done
grep -q 'pruned=' <("$LATHE" compile "$MODEL" -D N=64 --weights "$PRUNED" --bake -o "$WORK/ir" \
  --dump-after prune_channels 2>/dev/null) || echo "warning: no channel was removed"
: >"$WORK/dense.times"
: >"$WORK/pruned.times"
for ((r = 0; r < ROUNDS; r++)); do
  seconds dense >>"$WORK/dense.times"
  seconds pruned >>"$WORK/pruned.times"
done
d=$(median <"$WORK/dense.times")
p=$(median <"$WORK/pruned.times")
printf '%-8s %12s %10s %12s %12s\n' bake seconds dense/this workspace bytes
printf '%-8s %12.4e %10.2f %12d %12d\n' dense "$d" 1 "$(workspace dense)" "$(bytes dense)"
ratio=$(awk -v a="$d" -v b="$p" 'BEGIN {print a / b}')
printf '%-8s %12.4e %10.2f %12d %12d\n' pruned "$p" "$ratio" "$(workspace pruned)" "$(bytes pruned)"
echo "(batch 64 forward, median of $ROUNDS rounds x $REPS reps; pruned: $PARAMS at $SPARSITY)"
