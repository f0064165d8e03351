#!/usr/bin/env bash
# bench/parallel_bound.sh LATHE [ROUNDS] — how much of a second core this machine gives one
# program: the ceiling of any 2-thread speed-up of the CNN train step (issue #23's "2 threads
# >= 1.8x one thread"). Measurement only, on a quiet machine: nothing is asserted.
#
# The 1-thread CNN batch-64 train step (examples/cnn.lathe, built as bench/run.sh builds it)
# runs ROUNDS times (default 5) alone, then ROUNDS times as two copies at once, each pinned to
# its own core (taskset). Two independent copies share nothing but the hardware (caches past
# L2, memory bandwidth, the host's scheduling of the vCPUs), and no thread split can do better
# than they do: their throughput, 2 x t_alone / t_pair, bounds the 2-thread speed-up. The
# per-copy slow-down t_pair / t_alone is the hardware's share of what is lost; the rest of a
# real 2-thread run's gap (bench/run.sh's "threads" row) is the split's own (fork/join,
# imbalance, the serial parts).
set -euo pipefail
LATHE=$(realpath "$1")
ROUNDS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-cc}
(($(nproc) >= 2)) || { echo "parallel_bound: needs 2 cores, this machine has $(nproc)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "parallel_bound: taskset not found (util-linux)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=1
"$LATHE" compile "$ROOT/examples/cnn.lathe" -o "$TMP/gen" -D N=64 >"$TMP/log" 2>&1 ||
  { cat "$TMP/log" >&2; exit 1; }
"$CC" -std=c11 -O3 -march=native -fno-math-errno -I"$TMP/gen" -DMODEL_HEADER='"cnn.h"' \
  -DMODEL_INFO=cnn_info "$ROOT/bench/drive.c" "$TMP/gen/cnn.c" -o "$TMP/drive" -lm

# one timed run on CPU $1: the median seconds per train step that bench/drive.c prints
step() { taskset -c "$1" "$TMP/drive" train --reps 7 --min-time 0.2 --int-range 10 |
  awk '{ for (i = 1; i < NF; i++) if ($i == "seconds") print $(i + 1) }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1 /proc/loadavg)"
alone=() pair=()
for ((r = 0; r < ROUNDS; r++)); do
  alone+=("$(step 0)")
  step 0 >"$TMP/a" &
  step 1 >"$TMP/b" &
  wait
  pair+=("$(cat "$TMP/a")" "$(cat "$TMP/b")")
done
a=$(printf '%s\n' "${alone[@]}" | median)
p=$(printf '%s\n' "${pair[@]}" | median)
awk -v a="$a" -v p="$p" 'BEGIN {
  printf "train step alone:      %.3f ms (median of the rounds)\n", a * 1e3
  printf "train step beside one: %.3f ms (median over both copies)\n", p * 1e3
  printf "per-copy slow-down:    %.3fx\n", p / a
  printf "ceiling of a 2-thread speed-up on this machine: %.2fx\n", 2 * a / p
}'
echo "load at the end $(cut -d' ' -f1 /proc/loadavg)"
