#!/bin/bash
# bench/passes.sh — what the optimizing passes buy on the train steps of the MLP and the CNN
# (and any other model given with MODELS="mlp cnn transformer").
# usage: bash bench/passes.sh [path/to/lathe] [repo-root]
# Per model, from `lathe dump --kernels / --memplan --entry train`:
#   - kernels at -O0 and at -O3 (issue 5: at least 2x fewer at -O3);
#   - the -O3 arena against the sum of the intermediates: of the -O3 graph itself (every
#     buffer its plan places, so fusion's register-only values are not counted) and of the
#     -O0 graph (every intermediate of the unoptimized step);
# then the CPU time per train step of the generated C (cc -O3 -march=native; 300 steps of the
# MLP, 20 of the CNN, best of ROUNDS=3, the variants timed in turns): -O0, -O3 with fusion
# disabled (--disable fuse), and -O3.
set -euo pipefail
LATHE=${1:-build/lathe}
ROOT=${2:-$(cd "$(dirname "$0")/.." && pwd)}
MODELS=${MODELS:-mlp cnn}
CC=${CC:-cc}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

kernels() { # model opt
  "$LATHE" dump --kernels --entry train "$2" "$ROOT/examples/$1.lathe" |
    sed -n 's/^; entry train: \([0-9]*\) kernels/\1/p'
}
arena() { # model opt -> "arena sum"
  "$LATHE" dump --memplan --entry train "$2" "$ROOT/examples/$1.lathe" |
    sed -n 's/^arena \([0-9]*\) bytes; sum of [0-9]* buffers \([0-9]*\) bytes.*/\1 \2/p'
}
values() { # model opt -> bytes of every value the train step computes (no sources, constants
  # or reshape views), whether it ends up in a buffer or in a register
  "$LATHE" dump --after memplan --entry train "$2" "$ROOT/examples/$1.lathe" | awk '
    /^  %[0-9]+ = / && $3 !~ /^(input|param|state|const|reshape)$/ {
      t = $0; sub(/.* : /, "", t); sub(/\].*/, "", t)
      size = t ~ /^f64|^i64/ ? 8 : t ~ /^u8/ ? 1 : 4
      sub(/^[a-z0-9]+\[/, "", t); n = split(t, d, ", "); e = 1
      for (i = 1; i <= n; i++) if (d[i] != "") e *= d[i]
      total += e * size
    }
    END { print total }'
}
# A fixed-step driver through the generated descriptor: warm-up, then STEPS calls of the train
# entry; prints the process CPU time per step in ms (clock(): on this shared 2-core machine
# wall time swings with other jobs' load, CPU time much less).
cat >"$WORK/steps.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include MODEL_HEADER
static void *zeroed(size_t bytes) {
  size_t n = (bytes + 127) / 64 * 64;
  return memset(aligned_alloc(64, n), 0, n);
}
int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 10;
  const lathe_model_info *info = &MODEL_INFO;
  const lathe_entry_info *e = NULL;
  for (int i = 0; i < info->n_entries; i++)
    if (strcmp(info->entries[i].name, "train") == 0) e = &info->entries[i];
  if (!e || e->n_args > 64) return 1;
  void *args[64], *p = zeroed(info->params_bytes), *s = zeroed(info->state_bytes);
  info->init(p, s, 1);
  for (int i = 0; i < e->n_args; i++) {
    const lathe_arg_info *a = &e->args[i];
    args[i] = a->role == LATHE_ARG_PARAMS ? p : a->role == LATHE_ARG_STATE ? s
            : zeroed(a->role == LATHE_ARG_WORKSPACE ? e->workspace_bytes : a->tensor->bytes);
    if (a->role == LATHE_ARG_INPUT && a->tensor->dtype == LATHE_F32)
      for (size_t k = 0; k < a->tensor->bytes / 4; k++)
        ((float *)args[i])[k] = (float)(k % 97) / 97;
  }
  double loss = 0;
  for (int k = 0; k < 3; k++) e->call(args, &loss);
  clock_t t0 = clock();
  for (int k = 0; k < steps; k++) e->call(args, &loss);
  printf("%.3f\n", (double)(clock() - t0) / CLOCKS_PER_SEC * 1e3 / steps);
  return loss == loss ? 0 : 1;
}
C
build() { # model variant lathe-flags...
  local m=$1 d=$WORK/$1-$2
  shift 2
  mkdir -p "$d"
  "$LATHE" compile "$@" "$ROOT/examples/$m.lathe" -o "$d" >/dev/null 2>&1
  $CC -std=gnu11 -O3 -march=native -I"$d" -DMODEL_HEADER="\"$m.h\"" -DMODEL_INFO="${m}_info" \
    "$WORK/steps.c" "$d/$m.c" -o "$d/run" -lm
}
step_ms() { # model variant: the smallest of the ROUNDS measurements
  sort -n "$WORK/$1-$2.times" | head -1
}
time_round() { # model variant steps (the variants are timed in turns, so load hits them alike)
  "$WORK/$1-$2/run" "$3" >>"$WORK/$1-$2.times"
}

for m in $MODELS; do
  k0=$(kernels "$m" -O0)
  k3=$(kernels "$m" -O3)
  read -r a0 s0 <<<"$(arena "$m" -O0)"
  read -r a3 s3 <<<"$(arena "$m" -O3)"
  echo "$m train step:"
  awk -v k0="$k0" -v k3="$k3" 'BEGIN {
    printf "  kernels: %d at -O0, %d at -O3 (%.1fx fewer)\n", k0, k3, k0 / k3 }'
  awk -v a="$a0" -v s="$s0" 'BEGIN {
    printf "  -O0 arena %d bytes = %.1f%% of its %d bytes of intermediates\n", a, 100 * a / s, s }'
  awk -v a="$a3" -v s="$s3" -v s0="$s0" 'BEGIN {
    printf "  -O3 arena %d bytes = %.1f%% of its own %d bytes of buffers,", a, 100 * a / s, s
    printf " %.1f%% of the -O0 intermediates\n", 100 * a / s0 }'
  v3=$(values "$m" -O3)
  awk -v a="$a3" -v v="$v3" 'BEGIN {
    printf "  -O3 arena = %.1f%% of the %d bytes of all values the -O3 step computes\n",
      100 * a / v, v }'
  build "$m" O0 -O0
  build "$m" O3nofuse -O3 --disable fuse
  build "$m" O3 -O3
  for r in $(seq "${ROUNDS:-3}"); do
    for v in O0 O3nofuse O3; do time_round "$m" $v "$([ "$m" = mlp ] && echo 300 || echo 20)"; done
  done
  echo "  CPU time per train step (best of ${ROUNDS:-3}): -O0 $(step_ms "$m" O0) ms," \
    "-O3 unfused $(step_ms "$m" O3nofuse) ms, -O3 fused $(step_ms "$m" O3) ms"
done
