#!/usr/bin/env bash
# bench/mpi_scaling.sh LATHE [STEPS] — data-parallel scaling of the CNN train step on MPI
# (docs/distributed.md). Measurement only, on a quiet machine: nothing is asserted.
#
# examples/cnn.lathe at batch 64 compiled with --split-step, driven by examples/mpi/main.c
# (grad, one MPI_Allreduce of the contiguous gradients, apply) on 1 and 2 ranks (one core
# each: OMP_NUM_THREADS=1, --bind-to core), STEPS steps (default 50) after 5 warm-up steps.
# Prints samples/s, the step and allreduce times per step, the speed-up of 2 ranks, and a
# model of 8 and 64 ranks: a ring allreduce moves 2 (K - 1) / K x the gradient bytes per rank
# in 2 (K - 1) messages, so with the compute time T_c of one rank's step (1-rank run), the
# bandwidth B (2-rank run: bytes / allreduce time) and a per-message latency L,
#   T(K) = T_c + 2 (K - 1) / K x bytes / B + 2 (K - 1) L,  speed-up S(K) = K T_c / T(K).
# L defaults to 5 us (shared memory; LATENCY_US=50 for a 10 GbE cluster, whose B is also lower:
# BANDWIDTH_GBS overrides the measured one).
# BUCKETS=BYTES also compiles the model with --buckets BYTES and runs 2 ranks a third time with
# --overlap (each bucket's MPI_Iallreduce started as grad finishes it, waited before apply;
# its "allreduce" column is then the wait left after grad).
set -euo pipefail
LATHE=$(realpath "$1")
STEPS=${2:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v mpicc >/dev/null || { echo "mpicc not found (openmpi-bin libopenmpi-dev)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$LATHE" compile --split-step ${BUCKETS:+--buckets "$BUCKETS"} "$ROOT/examples/cnn.lathe" \
  -o "$TMP/gen" 2>/dev/null
mpicc -std=c11 -O3 -march=native -fno-math-errno -I"$TMP/gen" -DLATHE_MODEL_H='"cnn.h"' \
  -DLATHE_MODEL_INFO=cnn_info "$ROOT/examples/mpi/main.c" "$TMP/gen/cnn.c" -lm -o "$TMP/cnn"
run() { # run K [FLAGS]: the --time line of K ranks
  local k=$1
  shift
  mpirun --bind-to core -np "$k" "$TMP/cnn" --steps 5 "$@" >/dev/null
  mpirun --bind-to core -np "$k" "$TMP/cnn" --steps "$STEPS" --time "$@" | grep '^time:'
}
one=$(run 1)
two=$(run 2)
echo "$one"
echo "$two"
if [[ -n ${BUCKETS:-} ]]; then
  echo "overlapped ($BUCKETS-byte buckets): $(run 2 --overlap)"
fi
/usr/bin/python3 - "$one" "$two" "${LATENCY_US:-5}" "${BANDWIDTH_GBS:-}" <<'PY'
import re, sys
def parse(line):
    v = dict(zip(["rate", "step", "reduce", "bytes"],
                 map(float, re.search(r"([\d.]+) samples/s, step ([\d.]+) ms, allreduce "
                                      r"([\d.]+) ms of (\d+)", line).groups())))
    return v
one, two = parse(sys.argv[1]), parse(sys.argv[2])
lat = float(sys.argv[3]) * 1e-6
tc = (one["step"] - one["reduce"]) * 1e-3          # compute of one rank's step
bw = float(sys.argv[4]) * 1e9 if sys.argv[4] else two["bytes"] / (two["reduce"] * 1e-3)
print("| ranks | samples/s | step ms | allreduce ms | speed-up |")
print("|---|---|---|---|---|")
for k, v in ((1, one), (2, two)):
    print(f"| {k} (measured) | {v['rate']:.0f} | {v['step']:.2f} | {v['reduce']:.3f} "
          f"| {v['rate'] / one['rate']:.2f} |")
for k in (8, 64):
    t = tc + 2 * (k - 1) / k * two["bytes"] / bw + 2 * (k - 1) * lat
    print(f"| {k} (model) | {k * 64 / t:.0f} | {t * 1e3:.2f} | {(t - tc) * 1e3:.3f} "
          f"| {k * tc / t:.2f} |")
print(f"\nmodel: T_c = {tc * 1e3:.2f} ms, {two['bytes'] / 1e6:.2f} MB of gradients, "
      f"B = {bw / 1e9:.2f} GB/s, L = {lat * 1e6:.0f} us")
PY
