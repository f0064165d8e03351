#!/bin/bash
# bench/passes.sh — what the optimizing passes buy on the MLP train step.
# usage: bash bench/passes.sh [path/to/lathe] [repo-root]
# Prints, at -O0 and -O3: kernels and arena bytes of the train entry (lathe dump --kernels /
# --memplan), then the time per train step of the generated C (cc -O2, -std=gnu11 for the driver), unfused vs fused.
set -euo pipefail
LATHE=${1:-build/lathe}
ROOT=${2:-$(cd "$(dirname "$0")/.." && pwd)}
MODEL=$ROOT/examples/mlp.lathe
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for O in 0 3; do
  k=$("$LATHE" dump --kernels --entry train -O$O "$MODEL" | sed -n 's/^; entry train: \([0-9]*\) kernels/\1/p')
  plan=$("$LATHE" dump --memplan --entry train -O$O "$MODEL" | grep '^arena')
  echo "-O$O: $k kernels; $plan"
done

cat > "$WORK/drive.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "mlp.h"
int main(void) {
  static mlp_params p; static mlp_state s; static float x[64 * 784]; static int32_t y[64];
  void *ws = aligned_alloc(64, (MLP_TRAIN_WORKSPACE_BYTES + 63) / 64 * 64 + 64);
  mlp_init(&p, &s, 1);
  for (int i = 0; i < 64 * 784; i++) x[i] = (float)((i * 7919) % 255) / 255.0f;
  for (int i = 0; i < 64; i++) y[i] = i % 10;
  float loss = 0;
  for (int i = 0; i < 3; i++) loss = mlp_train(&p, &s, x, y, ws);
  int steps = 30;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < steps; i++) loss = mlp_train(&p, &s, x, y, ws);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / steps;
  printf("%.3f ms per train step (loss %.4f)\n", ms, loss);
  free(ws);
  return 0;
}
C
for O in 0 3; do
  mkdir -p "$WORK/O$O"
  "$LATHE" compile -O$O "$MODEL" -o "$WORK/O$O" >/dev/null
  cc -std=gnu11 -O2 -I"$WORK/O$O" "$WORK/O$O/mlp.c" "$WORK/drive.c" -o "$WORK/O$O/run" -lm
  printf -- "-O%s (%s): " "$O" "$([ $O = 0 ] && echo unfused || echo fused)"
  "$WORK/O$O/run"
done
