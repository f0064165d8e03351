#!/usr/bin/env bash
# bench/dyn_batch.sh LATHE — the run-time batch's cost (issue 17, docs/dynamic-batch.md): the
# same model compiled with `-D N=dynamic(max=64)` and with a fixed batch, timed by
# bench/drive.c in one run, side by side:
#   MLP inference   dynamic at n = 64 vs -D N=64     (goal: within 5%)
#   MLP inference   dynamic at n = 1  vs -D N=1      (goal: within 15%)
#   MLP train step  dynamic at n = 64 vs -D N=64
#   CNN, LSTM and GRU inference / train step, the same pairs
# Prints one line per pair: both medians and dynamic/fixed (above 1 = the dynamic build is
# slower). Environment: BENCH_REPS (default 7), BENCH_MIN_TIME (seconds per timed run, 0.3).
set -uo pipefail
LATHE=$(realpath "${1:-build/lathe}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${BENCH_REPS:-7}
MIN_TIME=${BENCH_MIN_TIME:-0.3}
CC=${CC:-cc}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# build NAME MODEL DEFINE: compile and link bench/drive.c into $WORK/NAME/drive
build() {
  local dir=$WORK/$1
  "$LATHE" compile "$2" -o "$dir" -D "$3" --prefix m >"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -I"$dir" -DMODEL_HEADER='"m.h"' \
      -DMODEL_INFO=m_info "$ROOT/bench/drive.c" "$dir/m.c" -o "$dir/drive" -lm >>"$dir.log" 2>&1
}

# seconds NAME ENTRY [drive options]: the median, or "-" (the reason on stderr)
seconds() {
  local name=$1 dir=$WORK/$1 entry=$2
  shift 2
  if [[ -x $dir/drive ]] &&
    "$dir/drive" "$entry" --reps "$REPS" --min-time "$MIN_TIME" "$@" >"$dir.$entry.out" 2>&1; then
    awk '/^seconds/ {print $2}' "$dir.$entry.out"
  else
    echo "  ($name $entry: $(cat "$dir.log" "$dir.$entry.out" 2>/dev/null | grep -m1 error))" >&2
    echo -
  fi
}

row() { # LABEL DYN_SECONDS FIXED_SECONDS GOAL
  if [[ $2 == - || $3 == - ]]; then
    printf '%-34s %12s %12s %8s   %s\n' "$1" "$2" "$3" "-" "$4"
  else
    printf '%-34s %12.3e %12.3e %8.3f   %s\n' "$1" "$2" "$3" "$(awk -v a="$2" -v b="$3" 'BEGIN {print a / b}')" "$4"
  fi
}

echo "CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
printf '%-34s %12s %12s %8s   %s\n' "row" "dynamic s" "fixed s" "dyn/fix" "goal"
for model in mlp cnn lstm gru; do
  file=$ROOT/examples/$model.lathe
  build "${model}_dyn" "$file" 'N=dynamic(max=64)'
  build "${model}_64" "$file" N=64
  build "${model}_1" "$file" N=1
  row "$model inference, n = 64" "$(seconds ${model}_dyn forward --batch 64)" \
    "$(seconds ${model}_64 forward)" "<= 1.05"
  row "$model inference, n = 1" "$(seconds ${model}_dyn forward --batch 1)" \
    "$(seconds ${model}_1 forward)" "<= 1.15"
  row "$model train step, n = 64" "$(seconds ${model}_dyn train --batch 64 --int-range 10)" \
    "$(seconds ${model}_64 train --int-range 10)" "<= 1.05"
done
