#!/usr/bin/env bash
# bench/sparse.sh LATHE — pruned and baked against dense and baked (issue #20,
# docs/compression.md): the MLP's fixture weights pruned by `lathe prune` to 50, 70, 80, 90
# and 95% and baked at batch 1 and at batch 64 (passes/sparsify.c turns weights of at most
# 15% nonzeros into sparse kernels and records which), each timed by bench/drive.c in one run
# beside the dense bake of the unpruned weights at the same batch, on two inputs: uniform
# random numbers in [0, 1) (no zeros) and real Fashion-MNIST test images (about half their
# pixels zero; drive --images, the next batch of images at every call), each pruned row's
# ratio against the dense bake on the same input. Prints per row the median seconds,
# dense/pruned (above 1 = the pruned bake is faster), the object's code + data bytes and the
# sparse kernels chosen. Goal (issue #20): at 90%, batch 1, >= 2x faster (judged on the real
# images) and >= 3x smaller. Environment: BENCH_REPS (default 7), BENCH_MIN_TIME (seconds per
# run, 0.3), BENCH_BATCHES (default "1 64"), BENCH_SPARSITIES (default "0.5 0.7 0.8 0.9
# 0.95"), BENCH_IMAGES (an IDX image file, .gz or not; default Debian's
# dataset-fashion-mnist, /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz).
set -uo pipefail
LATHE=$(realpath "${1:-build/lathe}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${BENCH_REPS:-7}
MIN_TIME=${BENCH_MIN_TIME:-0.3}
BATCHES=${BENCH_BATCHES:-1 64}
SPARSITIES=${BENCH_SPARSITIES:-0.5 0.7 0.8 0.9 0.95}
CC=${CC:-cc}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
MODEL=$ROOT/examples/mlp.lathe
W=$ROOT/tests/fixtures/mlp/weights.safetensors
IMAGES=${BENCH_IMAGES:-/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz}
if [ ! -r "$IMAGES" ]; then
  echo "bench/sparse.sh: $IMAGES not found (install dataset-fashion-mnist, or set BENCH_IMAGES)" >&2
  exit 1
fi
case $IMAGES in
*.gz) gzip -dc "$IMAGES" >"$WORK/images.idx" || exit 1 ;;
*) cp "$IMAGES" "$WORK/images.idx" ;;
esac

build() { # NAME WEIGHTS BATCH: bake and link bench/drive.c
  local dir=$WORK/$1
  "$LATHE" compile "$MODEL" -D N="$3" --weights "$2" --bake -o "$dir" --prefix m >"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -I"$dir" -DMODEL_HEADER='"m.h"' \
      -DMODEL_INFO=m_info "$ROOT/bench/drive.c" "$dir/m.c" -o "$dir/drive" -lm >>"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -c "$dir/m.c" -o "$dir/m.o" >>"$dir.log" 2>&1
}
seconds() { # NAME [drive options]
  local name=$1
  shift
  "$WORK/$name/drive" forward --reps "$REPS" --min-time "$MIN_TIME" "$@" 2>&1 |
    awk '/^seconds/ {print $2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {print a / b}'; }
bytes() { size -A "$WORK/$1/m.o" | awk '$1 ~ /^\.(text|data|rodata)/ {s += $2} END {print s}'; }
kernels() { # the kernel of each sparse product, in order (codegen/sparse.c's comment)
  grep -o 'nonzeros of B; [a-z]*' "$WORK/$1/m.c" | awk '{printf "%s%s", sep, $NF; sep = ","}'
}

echo "CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
for s in $SPARSITIES; do
  "$LATHE" prune "$MODEL" -w "$W" -s "$s" -o "$WORK/p$s.safetensors" >/dev/null 2>&1
done
printf '%-25s %12s %10s %12s %8s  %s\n' row seconds dense/this bytes smaller kernels
for n in $BATCHES; do
  build "dense$n" "$W" "$n" || { cat "$WORK/dense$n.log"; exit 1; }
  dense=$(seconds "dense$n")
  dense_img=$(seconds "dense$n" --images "$WORK/images.idx")
  db=$(bytes "dense$n")
  printf '%-25s %12.3e %10s %12d %8s  %s\n' "N=$n dense" "$dense" 1.00 "$db" 1.0 -
  printf '%-25s %12.3e %10s %12d %8s  %s\n' "N=$n dense, images" "$dense_img" 1.00 "$db" 1.0 -
  for s in $SPARSITIES; do
    build "p$s-$n" "$WORK/p$s.safetensors" "$n" || { cat "$WORK/p$s-$n.log"; continue; }
    t=$(seconds "p$s-$n")
    t_img=$(seconds "p$s-$n" --images "$WORK/images.idx")
    pb=$(bytes "p$s-$n")
    printf '%-25s %12.3e %10.2f %12d %8.1f  %s\n' "N=$n pruned $s" "$t" "$(ratio "$dense" "$t")" \
      "$pb" "$(ratio "$db" "$pb")" "$(kernels "p$s-$n")"
    printf '%-25s %12.3e %10.2f %12d %8.1f  %s\n' "N=$n pruned $s, images" "$t_img" \
      "$(ratio "$dense_img" "$t_img")" "$pb" "$(ratio "$db" "$pb")" "$(kernels "p$s-$n")"
  done
done
