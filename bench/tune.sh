#!/usr/bin/env bash
# bench/tune.sh — the cost model alone vs the tuned schedules (docs/tuning.md), on one thread:
# for examples/mlp.lathe and examples/cnn.lathe, inference at batch 64 (forward) and one Adam
# train step (train):
#   1. `lathe compile --no-tune-cache`: every kernel schedule from the cost model;
#   2. `lathe tune` (into a fresh cache of this run, --budget seconds per model), then
#      `lathe compile` again: the schedules from the tune cache;
# each built with bench/drive.c (cc -std=c11 -O3 -march=native, as bench/run.sh) and timed
# (median of BENCH_REPS runs).
# Prints a markdown table with the tuned/model ratio. The goal (issue 23): the cost model
# within 15% of the tuned choice, i.e. model / tuned <= 1.15. Measurement only: nothing is
# asserted; run it on a quiet machine.
#
# usage: bench/tune.sh PATH/TO/lathe
# environment: BENCH_REPS (default 5), BENCH_MIN_TIME (seconds per timed run, default 0.2),
#   BENCH_TUNE_BUDGET (seconds of `lathe tune` per model, default 60), BENCH_TARGET (lathe
#   compile --target, default native), CC (default cc), BENCH_MODELS (default "mlp cnn").
set -uo pipefail
if [[ $# -ne 1 || ! -x "$1" ]]; then
  echo "usage: bench/tune.sh PATH/TO/lathe   (an executable lathe binary)" >&2
  exit 2
fi
LATHE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CC=${CC:-cc}
REPS=${BENCH_REPS:-5}
MIN_TIME=${BENCH_MIN_TIME:-0.2}
BUDGET=${BENCH_TUNE_BUDGET:-60}
MODELS=${BENCH_MODELS:-mlp cnn}
TARGET_ARGS=()
[[ -n "${BENCH_TARGET:-}" ]] && TARGET_ARGS=(--target "$BENCH_TARGET")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export LATHE_CACHE_DIR=$WORK/cache # this run's tune cache only
unset LATHE_NO_TUNE_CACHE LATHE_NO_CACHE

# build NAME DIR [compile options]: DIR/drive over `lathe compile` of examples/NAME.lathe
build() {
  local name=$1 dir=$2
  shift 2
  "$LATHE" compile "$ROOT/examples/$name.lathe" -o "$dir" "${TARGET_ARGS[@]}" "$@" \
    >"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -I"$dir" -DMODEL_HEADER="\"$name.h\"" \
      -DMODEL_INFO="${name}_info" "$ROOT/bench/drive.c" "$dir/$name.c" -o "$dir/drive" -lm \
      >>"$dir.log" 2>&1
}

# seconds DIR ENTRY: the median seconds per call, or n/a
seconds() {
  "$1/drive" "$2" --reps "$REPS" --min-time "$MIN_TIME" 2>>"$1.log" |
    awk '/^seconds/ { print $2; found = 1 } END { if (!found) print "n/a" }'
}

echo "| model | entry | cost model (ms) | tuned (ms) | model / tuned | kernels tuned |"
echo "|---|---|---|---|---|---|"
for name in $MODELS; do
  build "$name" "$WORK/$name-model" --no-tune-cache || {
    echo "| $name | | n/a: $(tail -n 3 "$WORK/$name-model.log" | tr '\n' ' ') | | | |"
    continue
  }
  "$LATHE" tune "$ROOT/examples/$name.lathe" --budget "$BUDGET" "${TARGET_ARGS[@]}" \
    2>"$WORK/$name-tune.log"
  kept=$(grep -c "^    kept " "$WORK/$name-tune.log")
  build "$name" "$WORK/$name-tuned" || {
    echo "| $name | | | n/a: $(tail -n 3 "$WORK/$name-tuned.log" | tr '\n' ' ') | | |"
    continue
  }
  for entry in forward train; do
    m=$(seconds "$WORK/$name-model" $entry)
    t=$(seconds "$WORK/$name-tuned" $entry)
    awk -v n="$name" -v e="$entry" -v m="$m" -v t="$t" -v k="$kept" 'BEGIN {
      if (m == "n/a" || t == "n/a") {
        printf "| %s | %s | %s | %s | n/a | %s |\n", n, e, m, t, k
        exit
      }
      printf "| %s | %s | %.3f | %.3f | %.2f | %s |\n", n, e, m * 1e3, t * 1e3, m / t, k }'
  done
done
echo
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
echo "cpu: $cpu; tune budget ${BUDGET} s per model"
