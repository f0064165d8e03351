#!/usr/bin/env bash
# bench/int8.sh [LATHE] — int8 against f32 inference, both baked, one thread, one run (issue 19,
# docs/int8.md "Kernels"): batch 64 through
#   - the MLP: examples/mlp.lathe (f32, 784-256-128-10) against bench/models/qmlp.lathe;
#   - the CNN: examples/cnn.lathe (f32) against bench/models/qcnn.lathe (the same layers on
#     qconv2d, int8 max pooling and qdense);
# each int8 model twice: full-range weights (AVX2 runs the exact s16 tile) and 7-bit weights
# (no pair can saturate vpmaddubsw: the u8 x s8 tile). Random weights (bench/int8_weights.py).
# Timed by bench/drive.c (median of BENCH_REPS runs of BENCH_MIN_TIME seconds), built with
# cc -O3 -march=native for the machine's own target (lathe's native). Prints seconds per
# batch, f32 / int8 (above 1: int8 is faster), and the code + data bytes (`size` of the
# object: .text, .data, .rodata*) of the baked MLPs with int8 / f32.
# Goals (issue 19): >= 1.3x on an AVX2 CPU, >= 2.5x with AVX-512 VNNI; the int8 MLP <= 30%
# of the f32 MLP's bytes. Environment: BENCH_REPS (default 7), BENCH_MIN_TIME (0.3), CC.
set -uo pipefail
LATHE=$(realpath "${1:-build/lathe}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${BENCH_REPS:-7}
MIN_TIME=${BENCH_MIN_TIME:-0.3}
CC=${CC:-cc}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

build() { # NAME MODEL WEIGHTS: bake, link bench/drive.c, and an object for `size`
  local dir=$WORK/$1
  "$LATHE" compile "$2" --weights "$3" --bake -o "$dir" --prefix m >"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -I"$dir" -DMODEL_HEADER='"m.h"' \
      -DMODEL_INFO=m_info "$ROOT/bench/drive.c" "$dir/m.c" -o "$dir/drive" -lm >>"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -c "$dir/m.c" -o "$dir/m.o" \
      >>"$dir.log" 2>&1 ||
    { cat "$dir.log" >&2; echo "FAIL: build of $1" >&2; exit 1; }
}
seconds() {
  local s
  s=$("$WORK/$1/drive" forward --reps "$REPS" --min-time "$MIN_TIME" --int-range 127 2>&1 |
    awk '/^seconds/ {print $2}')
  [ -n "$s" ] || { echo "FAIL: $1 did not run" >&2; exit 1; }
  echo "$s"
}
bytes() { size -A "$WORK/$1/m.o" | awk '$1 ~ /^\.(text|data|rodata)/ {s += $2} END {print s}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

/usr/bin/python3 "$ROOT/bench/int8_weights.py" "$WORK/w" || exit 1
M=$ROOT/bench/models
build mlp "$ROOT/examples/mlp.lathe" "$WORK/w/mlp.safetensors"
build cnn "$ROOT/examples/cnn.lathe" "$WORK/w/cnn.safetensors"
for tag in full 7bit; do
  build "qmlp_$tag" "$M/qmlp.lathe" "$WORK/w/qmlp_$tag.safetensors"
  build "qcnn_$tag" "$M/qcnn.lathe" "$WORK/w/qcnn_$tag.safetensors"
done
grep -q "exact s16 tile" "$WORK/qmlp_full/m.c" && grep -q "u8 x s8 vpmaddubsw tile" \
  "$WORK/qmlp_7bit/m.c" || echo "note: this machine's target has no AVX2 tiles (not x86-64-v3/v4)"

echo "CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
echo "$(grep -o -m1 'Target: [^ ]*' "$WORK/mlp/m.c") (lathe's native target)"
printf '%-30s %12s %9s\n' "batch 64, one thread" seconds f32/int8
for net in mlp cnn; do
  f=$(seconds "$net")
  printf '%-30s %12.3e %9s\n' "$net f32" "$f" 1.00
  for tag in full 7bit; do
    t=$(seconds "q${net}_$tag")
    printf '%-30s %12.3e %9s\n' "$net int8 ($tag weights)" "$t" "$(ratio "$f" "$t")"
  done
done
fb=$(bytes mlp)
printf '%-30s %12s %9s\n' "baked MLP, code + data" bytes int8/f32
printf '%-30s %12d %9s\n' "mlp f32" "$fb" 1.00
printf '%-30s %12d %9s\n' "mlp int8" "$(bytes qmlp_full)" "$(ratio "$(bytes qmlp_full)" "$fb")"
