#!/usr/bin/env bash
# bench/thread_split.sh LATHE [THREADS] — the work of each thread of the CNN batch-64 train
# step (examples/cnn.lathe, Adam) built with --threads THREADS (default 2), counted, not timed:
# instructions under callgrind, which are the same on a busy machine as on a quiet one.
#
# The 1-thread step (lathe compile without --threads) and the THREADS-thread step (built with
# -fopenmp, OMP_WAIT_POLICY=passive so that waiting threads count nothing) each run under
# `valgrind --tool=callgrind --separate-threads=yes`, through bench/drive.c with a tiny
# --min-time (three calls). From the inclusive counts per call of <model>_train and of each
# OpenMP region (an outlined function `*._omp_fn.N`, one per parallel loop of the generated C):
#   serial  = the main thread's instructions in the step outside every region
#   span    = serial + the sum over the regions of the busiest thread's instructions
#   bound   = the 1-thread step's instructions / span
# the speed-up the split allows when every instruction costs the same time (Amdahl's law with
# the split's own imbalance); the hardware's own limit is bench/parallel_bound.sh's. Limits: a
# region's count sums its calls (lathe_gemm_direct's region serves every GEMM of the step), so
# imbalances of opposite sign in two calls of one region cancel; instructions are not cycles
# (a memory-bound loop costs more per instruction). Needs valgrind and python3. Takes about
# 2 minutes on a quiet 2-core machine, 5 on a busy one. Prints one line per region and the bound.
set -euo pipefail
LATHE=$(realpath "$1")
THREADS=${2:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-cc}
command -v valgrind >/dev/null || { echo "thread_split: valgrind not found" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# build DIR [lathe compile options...]: the CNN's train step and bench/drive.c, in DIR
build() {
  local dir=$1
  shift
  "$LATHE" compile "$ROOT/examples/cnn.lathe" -o "$dir" -D N=64 "$@" >"$dir.log" 2>&1 ||
    { cat "$dir.log" >&2; exit 1; }
  "$CC" -std=c11 -O3 -march=native -fno-math-errno -g -fopenmp -pthread -I"$dir" \
    -DMODEL_HEADER='"cnn.h"' -DMODEL_INFO=cnn_info "$ROOT/bench/drive.c" "$dir/cnn.c" \
    -o "$dir/drive" -lm
}
# count DIR THREADS: callgrind files DIR/cg.out (one thread) or DIR/cg.out-NN (per thread)
count() {
  OMP_NUM_THREADS=$2 OMP_WAIT_POLICY=passive valgrind --tool=callgrind --separate-threads=yes \
    --callgrind-out-file="$1/cg.out" "$1/drive" train --reps 1 --min-time 1e-9 --int-range 10 \
    >"$1/run.log" 2>&1 || { cat "$1/run.log" >&2; exit 1; }
}
build "$TMP/t1"
build "$TMP/tn" --threads "$THREADS"
count "$TMP/t1" 1
count "$TMP/tn" "$THREADS"

python3 - "$TMP" <<'EOF'
import glob, re, subprocess, sys

def inclusive(path):
    """{function: (inclusive instructions, calls)} from callgrind_annotate's caller tree"""
    out = subprocess.run(['callgrind_annotate', '--inclusive=yes', '--tree=caller',
                          '--threshold=100', path], capture_output=True, text=True).stdout
    fns, calls = {}, 0
    for line in out.splitlines():
        caller = re.match(r'\s*[\d,]+ \([ \d.]+%\)\s+<.* \((\d+)x\)', line)
        if caller:
            calls += int(caller.group(1))
            continue
        # a function has two blocks: under its file's full path with its callers, then under
        # the relative path without them
        own = re.match(r'\s*([\d,]+) \([ \d.]+%\)\s+\*\s+\S*?:(\S+)( \[)?', line)
        if own:
            name, prev = own.group(2), fns.get(own.group(2), (0, 0))[1]
            fns[name] = (int(own.group(1).replace(',', '')), max(calls, prev, 1))
        if not line.strip():
            calls = 0
    return fns

tmp = sys.argv[1]
one = inclusive(tmp + '/t1/cg.out')
step1 = one['cnn_train'][0] / one['cnn_train'][1]
per_thread = [inclusive(p) for p in sorted(glob.glob(tmp + '/tn/cg.out-*'))]
steps = per_thread[0]['cnn_train'][1]
regions = sorted({f for t in per_thread for f in t if '._omp_fn.' in f},
                 key=lambda f: -max(t.get(f, (0, 1))[0] for t in per_thread))
count = lambda t, f: t.get(f, (0, 1))[0] / steps
main = per_thread[0]['cnn_train'][0] / steps
serial = main - sum(count(per_thread[0], f) for f in regions)
span = serial
print(f'1 thread: {step1:,.0f} instructions per step; {len(per_thread)} threads (per step):')
print(f'  {"region":34s} ' + ' '.join(f'{"thread " + str(i):>12s}'
                                      for i in range(len(per_thread))))
for f in regions:
    c = [count(t, f) for t in per_thread]
    span += max(c)
    print(f'  {f:34s} ' + ' '.join(f'{x:12,.0f}' for x in c))
work = serial + sum(count(t, f) for t in per_thread for f in regions)
print(f'  serial (main thread outside the regions): {serial:,.0f} '
      f'({serial / span:.1%} of the span)')
print(f'  imbalance (span - serial - parallel work / threads): '
      f'{span - serial - (work - serial) / len(per_thread):,.0f}')
print(f'  span {span:,.0f}; bound {step1 / span:.3f}x')
EOF
