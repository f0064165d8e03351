#!/usr/bin/env bash
# bench/run.sh — lathe next to its peers, in one run on this machine, on one thread:
#   1. the measured single-core f32 FMA peak (bench/peak.c)
#   2. sgemm n^3: lathe's generated matmul vs OpenBLAS cblas_sgemm (bench/sgemm_openblas.c)
#   3. examples/mlp.lathe: inference at batch 1 and 64, one Adam train step at batch 64,
#      lathe's generated C (bench/drive.c) vs PyTorch (bench/torch_mlp.py)
#   4. one Fashion-MNIST epoch: `lathe train` vs the same loop in PyTorch, with test accuracy
# and prints a markdown table (bench/table.py). Measurement only: no timing is ever asserted;
# a step that fails is shown as n/a with the reason, and the run goes on.
#
# usage: bench/run.sh PATH/TO/lathe
# environment: BENCH_REPS (timed runs per measurement, default 5), BENCH_MIN_TIME (seconds
#   per timed run, default 0.2), BENCH_SIZES (sgemm sizes, default "64 256 512 1024"),
#   BENCH_EPOCH=0 (skip the Fashion-MNIST epoch), CC (default cc), PYTHON (default
#   /usr/bin/python3), FASHION_MNIST (default /usr/share/datasets/fashion-mnist).
set -uo pipefail

if [[ $# -ne 1 || ! -x "$1" ]]; then
  echo "usage: bench/run.sh PATH/TO/lathe   (an executable lathe binary)" >&2
  exit 2
fi
LATHE=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
CC=${CC:-cc}
PYTHON=${PYTHON:-/usr/bin/python3}
REPS=${BENCH_REPS:-5}
MIN_TIME=${BENCH_MIN_TIME:-0.2}
SIZES=${BENCH_SIZES:-"64 256 512 1024"}
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
CFLAGS=(-std=c11 -O3 -march=native)

# one thread everywhere
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lathe-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RESULTS="$WORK/results.tsv" # row <TAB> field <TAB> value, read by bench/table.py
: >"$RESULTS"

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
log() { echo "bench: $*" >&2; }
# the value after KEY in a "KEY value KEY value" line of file $2
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' "$2"; }
# why a step failed, for an n/a cell: the first line of its log that says "error", else its
# last non-empty line, else its exit status
# usage: why LOG [STATUS]
why() {
  local line
  line=$(grep -i -m 1 'error' "$1" 2>/dev/null)
  [[ -n "$line" ]] || line=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1)
  line=${line//"$WORK/"/}
  line=$(printf '%s' "$line" | tr '\t\r' '  ' | cut -c1-120)
  if [[ -n "$line" ]]; then echo "$line"
  elif [[ ${2:-0} -gt 128 ]]; then echo "killed by signal $(($2 - 128))"
  else echo "exit status ${2:-unknown}"; fi
}
now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }

# ---- 1. FMA peak ------------------------------------------------------------------------------
# Measured at the start and at the end of the run (a busy machine lowers it); the higher of
# the two is the peak of the table, both are in the notes.
# usage: run_peak start|end
run_peak() {
  log "FMA peak ($1 of the run)"
  if [[ ! -x "$WORK/peak" ]] &&
     ! "$CC" "${CFLAGS[@]}" -ffp-contract=fast "$BENCH/peak.c" -o "$WORK/peak" 2>"$WORK/peak.log"
  then
    record peak peer_error "$(why "$WORK/peak.log")"
    return
  fi
  if ! "$WORK/peak" --reps "$REPS" --min-time "$MIN_TIME" >"$WORK/peak-$1.out" \
         2>>"$WORK/peak.log"; then
    record peak peer_error "$(why "$WORK/peak.log" $?)"
    return
  fi
  record peak "gflops_$1" "$(field peak_gflops "$WORK/peak-$1.out")"
  record peak "detail_$1" "$(grep '^fma_' "$WORK/peak-$1.out" | sed 's/_gflops / /' |
                             paste -sd, - | sed 's/,/, /g')"
}

# ---- 2. sgemm ---------------------------------------------------------------------------------
# Builds bench/drive.c against the C that `lathe compile` writes for model NAME from FILE.
# usage: build_lathe_driver NAME FILE OUTDIR [-D X=V]...   (log in OUTDIR.log)
build_lathe_driver() {
  local name=$1 file=$2 dir=$3
  shift 3
  "$LATHE" compile "$file" -o "$dir" "$@" >"$dir.log" 2>&1 &&
    "$CC" "${CFLAGS[@]}" -I"$dir" -DMODEL_HEADER="\"$name.h\"" -DMODEL_INFO="${name}_info" \
      "$BENCH/drive.c" "$dir/$name.c" -o "$dir/drive" -lm >>"$dir.log" 2>&1
}

# usage: run_driver ROW DIR ENTRY [drive options]   records lathe_seconds or lathe_error
run_driver() {
  local row=$1 dir=$2 entry=$3
  shift 3
  local out="$dir-$entry"
  if "$dir/drive" "$entry" --reps "$REPS" --min-time "$MIN_TIME" "$@" >"$out.out" 2>"$out.log"
  then
    record "$row" lathe_seconds "$(field seconds "$out.out")"
  else
    record "$row" lathe_error "$(why "$out.log" $?)"
  fi
}

run_sgemm() {
  local model="$WORK/mm.lathe" blas="OpenBLAS cblas_sgemm"
  printf 'const M = 64\nconst K = 64\nconst N = 64\n%s\n' \
    'model mm(a: f32[M, K], b: f32[K, N]) { output c = a @ b }' >"$model"
  local cf
  cf=$(pkg-config --cflags --libs openblas 2>/dev/null || echo "-lopenblas")
  local built=1
  # shellcheck disable=SC2086
  "$CC" "${CFLAGS[@]}" "$BENCH/sgemm_openblas.c" -o "$WORK/sgemm" $cf >"$WORK/sgemm.log" 2>&1 ||
    built=0
  local v
  v=$(dpkg-query -W -f='${Version}' libopenblas-dev 2>/dev/null | sed 's/[-+].*//')
  [[ -n "$v" ]] && blas="OpenBLAS $v cblas_sgemm"
  for n in $SIZES; do
    local row="sgemm $n^3" dir="$WORK/mm$n"
    log "$row"
    record "$row" flops $((2 * n * n * n))
    record "$row" peer_name "$blas"
    if build_lathe_driver mm "$model" "$dir" -D M="$n" -D K="$n" -D N="$n"; then
      run_driver "$row" "$dir" forward --check-matmul
    else
      record "$row" lathe_error "$(why "$dir.log" $?)"
    fi
    if [[ $built == 1 ]] &&
       "$WORK/sgemm" --reps "$REPS" --min-time "$MIN_TIME" "$n" >"$WORK/sgemm$n.out" \
         2>>"$WORK/sgemm.log"; then
      record "$row" peer_seconds "$(awk '{print $3}' "$WORK/sgemm$n.out")"
    else
      record "$row" peer_error "$(why "$WORK/sgemm.log" $?)"
    fi
  done
}

# ---- 3. MLP per call --------------------------------------------------------------------------
# matmul flops of the MLP per sample: 784*256 + 256*128 + 128*10 multiply-adds
MLP_MACS=234752
# the train step: forward + weight gradients (2x forward) + input gradients of layers 2 and 3
MLP_TRAIN_MACS=$((3 * MLP_MACS - 784 * 256))

torch_peer() { # usage: torch_peer ROW MODE BATCH
  local row=$1 out="$WORK/torch-$2-$3"
  if "$PYTHON" "$BENCH/torch_mlp.py" "$2" --batch "$3" --reps "$REPS" --min-time "$MIN_TIME" \
       >"$out.out" 2>"$out.log"; then
    record "$row" peer_seconds "$(field seconds "$out.out")"
  else
    record "$row" peer_error "$(why "$out.log" $?)"
  fi
}

run_mlp() {
  local torch_name="PyTorch"
  torch_name="PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
  local n
  for n in 1 64; do
    local dir="$WORK/mlp$n" row="MLP inference, batch $n"
    log "$row"
    record "$row" flops $((2 * n * MLP_MACS))
    record "$row" peer_name "$torch_name"
    if build_lathe_driver mlp "$ROOT/examples/mlp.lathe" "$dir" -D N="$n"; then
      run_driver "$row" "$dir" forward
    else
      record "$row" lathe_error "$(why "$dir.log" $?)"
    fi
    torch_peer "$row" infer "$n"
  done
  local row="MLP train step (Adam), batch 64"
  log "$row"
  record "$row" flops $((2 * 64 * MLP_TRAIN_MACS))
  record "$row" peer_name "$torch_name"
  if [[ -x "$WORK/mlp64/drive" ]]; then
    run_driver "$row" "$WORK/mlp64" train --int-range 10
  else
    record "$row" lathe_error "not built: see MLP inference, batch 64"
  fi
  torch_peer "$row" train 64
  # the same train step built with portable flags (cc -O2, no -march): what a product build might use
  local dir="$WORK/mlp64-O2"
  mkdir -p "$dir"
  if [[ -f "$WORK/mlp64/mlp.c" ]] &&
     "$CC" -std=c11 -O2 -I"$WORK/mlp64" -DMODEL_HEADER='"mlp.h"' -DMODEL_INFO=mlp_info \
       "$BENCH/drive.c" "$WORK/mlp64/mlp.c" -o "$dir/drive" -lm >"$dir.log" 2>&1 &&
     "$dir/drive" train --reps "$REPS" --min-time "$MIN_TIME" >"$dir.out" 2>>"$dir.log"; then
    record "$row" lathe_o2_seconds "$(field seconds "$dir.out")"
  fi
}

# ---- 4. one Fashion-MNIST epoch ---------------------------------------------------------------
run_epoch() {
  local row="Fashion-MNIST epoch (MLP, batch 64, Adam)" t0
  log "$row (this takes a while)"
  record "$row" peer_name "PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
  t0=$(now)
  if "$LATHE" train "$ROOT/examples/mlp.lathe" --data "fashion-mnist=$DATA" --epochs 1 \
       >"$WORK/epoch-lathe.out" 2>"$WORK/epoch-lathe.log"; then
    record "$row" lathe_seconds "$(since "$t0")"
    record "$row" lathe_accuracy \
      "$(grep -o 'test accuracy [0-9.]*' "$WORK/epoch-lathe.out" | awk '{print $3}')"
  else
    record "$row" lathe_error "$(why "$WORK/epoch-lathe.log" $?)"
  fi
  # what part of lathe's wall time is compiling the model (lathe compile + the loader's cc)
  t0=$(now)
  if "$LATHE" compile "$ROOT/examples/mlp.lathe" -o "$WORK/epoch-c" >/dev/null 2>&1 &&
     "$CC" -std=c99 -O2 -shared -fPIC "$WORK/epoch-c/mlp.c" -o "$WORK/epoch-c/mlp.so" -lm 2>/dev/null; then
    record "$row" lathe_compile_seconds "$(since "$t0")"
  fi
  t0=$(now)
  if "$PYTHON" "$BENCH/torch_mlp.py" epoch --data "$DATA" >"$WORK/epoch-torch.out" \
       2>"$WORK/epoch-torch.log"; then
    record "$row" peer_seconds "$(since "$t0")"
    record "$row" peer_accuracy "$(field test_accuracy "$WORK/epoch-torch.out")"
    record "$row" peer_loop_seconds "$(field epoch_seconds "$WORK/epoch-torch.out")"
  else
    record "$row" peer_error "$(why "$WORK/epoch-torch.log" $?)"
  fi
}

# ---- the run ----------------------------------------------------------------------------------
machine=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
echo "# lathe benchmark — $(date -u '+%Y-%m-%d %H:%M UTC') — ${machine:-unknown CPU}," \
  "$(getconf _NPROCESSORS_ONLN) CPUs, 1 thread used, $("$CC" --version | head -n 1)"
echo
record run loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
run_peak start
run_sgemm
run_mlp
if [[ ${BENCH_EPOCH:-1} != 0 ]]; then run_epoch; fi
run_peak end
record run loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
"$PYTHON" "$BENCH/table.py" "$RESULTS"
