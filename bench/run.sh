#!/usr/bin/env bash
# bench/run.sh — lathe next to its peers, in one run on this machine, on one thread:
#   1. the measured single-core f32 FMA peak (bench/peak.c)
#   2. sgemm n^3: lathe's generated matmul vs OpenBLAS cblas_sgemm (bench/sgemm_openblas.c)
#   3. examples/mlp.lathe: inference at batch 1 and 64, one Adam train step at batch 64,
#      lathe's generated C (bench/drive.c) vs PyTorch (bench/torch_mlp.py)
#   4. examples/cnn.lathe (inference at batch 1 and 64, Adam train step at 64),
#      bench/models/lstm.lathe and bench/models/transformer_block.lathe (Adam train steps),
#      lathe's generated C vs PyTorch (bench/torch_models.py)
#   4b. MLP and CNN inference at batch 1 and 64, lathe vs ONNX Runtime (npm onnxruntime-node,
#      bench/ort_peer.js) on the same models exported to ONNX (bench/export_onnx.py)
#   4c. the GPT decode step with its KV cache at batch 1 (bench/gpt_decode.sh): lathe vs PyTorch
#      eager and vs ONNX Runtime, logits checked against PyTorch's
#   5. the CNN train step on 2 threads vs 1 (when `lathe compile` has --threads)
#   6. one Fashion-MNIST epoch of the MLP and of the CNN: `lathe train` vs the same loop in
#      PyTorch, with test accuracy
# and prints a markdown table (bench/table.py). Measurement only: no timing is ever asserted;
# a step that fails is shown as n/a with the reason, and the run goes on.
#
# usage: bench/run.sh [--target TARGET] PATH/TO/lathe
#   --target T: lathe compile --target for every per-call row (native, generic, x86-64-v3,
#     x86-64-v4, aarch64; default native), and, for x86-64-v3 / x86-64-v4, lathe's C built with
#     -march=T instead of -march=native and the peers restricted to the same instructions where
#     they allow it: OpenBLAS (OPENBLAS_CORETYPE=Haswell for v3, SkylakeX for v4), PyTorch's
#     own kernels (ATEN_CPU_CAPABILITY=avx2 / avx512) and its oneDNN (ONEDNN_MAX_CPU_ISA).
#     ONNX Runtime (onnxruntime-node) has no such switch (MLAS picks its kernels by CPUID);
#     the table says whether its rows are comparable on this CPU. Same as BENCH_TARGET=T.
# environment: BENCH_REPS (timed runs per measurement, default 5), BENCH_MIN_TIME (seconds
#   per timed run, default 0.2), BENCH_SIZES (sgemm sizes, default "64 256 512 1024"),
#   BENCH_EPOCH=0 (skip the Fashion-MNIST epochs), BENCH_ROWS (the groups to run, default
#   "sgemm mlp cnn ort gpt lstm transformer threads epoch"), BENCH_TARGET (lathe compile
#   --target of the per-call rows, e.g. x86-64-v3; default lathe's: native), CC (default cc),
#   PYTHON (default /usr/bin/python3), FASHION_MNIST (default /usr/share/datasets/fashion-mnist),
#   ORT_NODE_MODULES (where onnxruntime-node is, default bench/node/node_modules).
set -uo pipefail

usage() { echo "usage: bench/run.sh [--target TARGET] PATH/TO/lathe   (an executable lathe binary)"; }
while [[ $# -gt 0 ]]; do
  case $1 in
  -h | --help) usage; sed -n '2,/^set -uo pipefail/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0 ;;
  --target) [[ $# -ge 2 ]] || { usage >&2; exit 2; }; BENCH_TARGET=$2; shift 2 ;;
  --target=*) BENCH_TARGET=${1#--target=}; shift ;;
  -*) echo "bench/run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  *) break ;;
  esac
done
if [[ $# -ne 1 || ! -x "$1" ]]; then
  usage >&2
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
# the flags `lathe train` builds models with (runtime/loader.c), for lathe's code and the C peers
CFLAGS=(-std=c11 -O3 -march=native -fno-math-errno)
# what lathe's generated C is built with: the same, but for an x86-64 level --target, that level
LATHE_CFLAGS=("${CFLAGS[@]}")
ROWS=${BENCH_ROWS:-"sgemm mlp cnn ort gpt lstm transformer threads epoch"}
# lathe compile --target for every per-call row (default: lathe's own default, native)
TARGET_ARGS=()
[[ -n ${BENCH_TARGET:-} ]] && TARGET_ARGS=(--target "$BENCH_TARGET") && export BENCH_TARGET
# the peers held to the same instructions where they have a switch for it (the header above)
case ${BENCH_TARGET:-} in
x86-64-v3)
  LATHE_CFLAGS=(-std=c11 -O3 -march=x86-64-v3 -fno-math-errno)
  export OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \
    DNNL_MAX_CPU_ISA=AVX2 ;;
x86-64-v4)
  LATHE_CFLAGS=(-std=c11 -O3 -march=x86-64-v4 -fno-math-errno)
  export OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx512 ONEDNN_MAX_CPU_ISA=AVX512_CORE \
    DNNL_MAX_CPU_ISA=AVX512_CORE ;;
esac

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
# Measured at the start and at the end of the run (a busy machine lowers it), for every vector
# width this CPU runs; the table's "% of FMA peak" uses the width lathe's generated code uses
# (code_lanes), the higher of the two measurements of it; the notes give every width.
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
  local lanes
  for lanes in $(sed -n 's/^fma_f32x\([0-9]*\)_gflops .*/\1/p' "$WORK/peak-$1.out"); do
    record peak "gflops_x${lanes}_$1" "$(field "fma_f32x${lanes}_gflops" "$WORK/peak-$1.out")"
  done
  record peak "detail_$1" "$(grep '^fma_' "$WORK/peak-$1.out" | sed 's/_gflops / /' |
                             paste -sd, - | sed 's/,/, /g')"
}

# The vector width (floats) of the kernels lathe generates for this machine and BENCH_TARGET:
# the vector_size of a small matmul's generated C; 0 for scalar code (the generic target).
code_lanes() {
  local dir="$WORK/lanes" bytes
  mkdir -p "$dir"
  printf '%s\n' 'model mm(a: f32[64, 64], b: f32[64, 64]) { output c = a @ b }' >"$dir/mm.lathe"
  "$LATHE" compile "$dir/mm.lathe" -o "$dir/out" "${TARGET_ARGS[@]}" >"$dir.log" 2>&1 || return
  bytes=$(grep -o 'vector_size([0-9]*' "$dir/out/mm.c" | head -n 1 | tr -dc 0-9)
  echo $((${bytes:-0} / 4))
}

# ---- 2. sgemm ---------------------------------------------------------------------------------
# Builds bench/drive.c against the C that `lathe compile` writes for model NAME from FILE.
# usage: build_lathe_driver NAME FILE OUTDIR [-D X=V]...   (log in OUTDIR.log)
build_lathe_driver() {
  local name=$1 file=$2 dir=$3
  shift 3
  "$LATHE" compile "$file" -o "$dir" "${TARGET_ARGS[@]}" "$@" >"$dir.log" 2>&1 &&
    "$CC" "${LATHE_CFLAGS[@]}" -I"$dir" -DMODEL_HEADER="\"$name.h\"" -DMODEL_INFO="${name}_info" \
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
  local torch_name=$TORCH_NAME n
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
  # and with errno-setting math (no -fno-math-errno): sqrtf in the Adam update stays scalar
  dir="$WORK/mlp64-errno"
  mkdir -p "$dir"
  if [[ -f "$WORK/mlp64/mlp.c" ]] &&
     "$CC" -std=c11 -O3 -march=native -I"$WORK/mlp64" -DMODEL_HEADER='"mlp.h"' \
       -DMODEL_INFO=mlp_info "$BENCH/drive.c" "$WORK/mlp64/mlp.c" -o "$dir/drive" -lm \
       >"$dir.log" 2>&1 &&
     "$dir/drive" train --reps "$REPS" --min-time "$MIN_TIME" >"$dir.out" 2>>"$dir.log"; then
    record "$row" lathe_errno_seconds "$(field seconds "$dir.out")"
  fi
}

# ---- 4. CNN, LSTM, Transformer per call ------------------------------------------------------
# matmul/conv multiply-adds per sample of examples/cnn.lathe: conv1 32x26x26x(1x3x3), conv2
# 64x11x11x(32x3x3), dense 1600x128 and 128x10
CNN_CONV1_MACS=194688
CNN_MACS=$((CNN_CONV1_MACS + 2230272 + 204800 + 1280))
# the train step: forward + weight gradients (2x forward) + input gradients of every layer but
# conv1 (its input is the data)
CNN_TRAIN_MACS=$((3 * CNN_MACS - CNN_CONV1_MACS))
# bench/models/lstm.lathe per sample: T = 32 steps of x @ wx (64x512) and h @ wh (128x512),
# then 128x10; train: 3x forward less the input gradient of x @ wx
LSTM_X_MACS=$((32 * 64 * 512))
LSTM_MACS=$((LSTM_X_MACS + 32 * 128 * 512 + 1280))
LSTM_TRAIN_MACS=$((3 * LSTM_MACS - LSTM_X_MACS))
# bench/models/transformer_block.lathe per token (T = 64, D = 128): 4 projections DxD, scores
# and context (2 x T x D), feed-forward 2 x D x 512; train: 3x forward less the input
# gradients of the query/key/value projections (their input is the data)
TF_QKV_MACS=$((3 * 128 * 128))
TF_MACS=$((TF_QKV_MACS + 128 * 128 + 2 * 64 * 128 + 2 * 128 * 512))
TF_TRAIN_MACS=$((3 * TF_MACS - TF_QKV_MACS))

torch_model_peer() { # usage: torch_model_peer ROW MODEL MODE [torch_models.py options]
  local row=$1 out
  out="$WORK/torch-$(printf '%s' "$1" | tr -c 'A-Za-z0-9' '_')"
  shift
  if "$PYTHON" "$BENCH/torch_models.py" "$@" --reps "$REPS" --min-time "$MIN_TIME" \
       >"$out.out" 2>"$out.log"; then
    record "$row" peer_seconds "$(field seconds "$out.out")"
  else
    record "$row" peer_error "$(why "$out.log" $?)"
  fi
}

# One row: lathe's ENTRY of model NAME built from FILE into DIR (unless DIR/drive exists) vs
# torch_models.py. usage: model_row ROW FLOPS NAME FILE DIR ENTRY "DEFINES" TORCH_ARGS...
model_row() {
  local row=$1 flops=$2 name=$3 file=$4 dir=$5 entry=$6 defines=$7
  shift 7
  log "$row"
  record "$row" flops "$flops"
  record "$row" peer_name "$TORCH_NAME"
  # shellcheck disable=SC2086
  if [[ -x "$dir/drive" ]] || build_lathe_driver "$name" "$file" "$dir" $defines; then
    run_driver "$row" "$dir" "$entry" --int-range 10
  else
    record "$row" lathe_error "$(why "$dir.log" $?)"
  fi
  torch_model_peer "$row" "$@"
}

run_cnn() {
  local cnn="$ROOT/examples/cnn.lathe" n
  for n in 1 64; do
    model_row "CNN inference, batch $n" $((2 * n * CNN_MACS)) cnn "$cnn" "$WORK/cnn$n" forward \
      "-D N=$n" cnn infer --batch "$n"
  done
  model_row "CNN train step (Adam), batch 64" $((2 * 64 * CNN_TRAIN_MACS)) cnn "$cnn" \
    "$WORK/cnn64" train "-D N=64" cnn train --batch 64
}

run_lstm() {
  model_row "LSTM train step (Adam), T 32, batch 32, 64-128-10" $((2 * 32 * LSTM_TRAIN_MACS)) \
    lstm_bench "$BENCH/models/lstm.lathe" "$WORK/lstm" train "" lstm train --batch 32
}

run_transformer() {
  model_row "Transformer encoder block train step (Adam), d 128, 4 heads, ff 512, T 64, batch 8" \
    $((2 * 8 * 64 * TF_TRAIN_MACS)) transformer_block "$BENCH/models/transformer_block.lathe" \
    "$WORK/tf" train "" transformer train --batch 8
}

# ---- 4b. ONNX Runtime: MLP and CNN inference at batch 1 and 64 -------------------------------
# The same models exported from their PyTorch twins (bench/export_onnx.py, softmax output),
# run by onnxruntime-node on one thread (bench/ort_peer.js); lathe's forward entry is timed
# again right before, so each pair is measured side by side.
ORT_MODULES=${ORT_NODE_MODULES:-$BENCH/node/node_modules}

# usage: ort_row MODEL LABEL BATCH SHAPE FLOPS   (MODEL: mlp or cnn, from examples/MODEL.lathe)
ort_row() {
  local model=$1 n=$3 shape=$4 flops=$5
  local row="$2 inference, batch $n, vs ONNX Runtime" dir="$WORK/$model$n"
  local out="$WORK/ort-$model$n"
  log "$row"
  record "$row" flops "$flops"
  record "$row" peer_name "$ORT_NAME"
  if [[ -x "$dir/drive" ]] ||
     build_lathe_driver "$model" "$ROOT/examples/$model.lathe" "$dir" -D N="$n"; then
    run_driver "$row" "$dir" forward
  else
    record "$row" lathe_error "$(why "$dir.log" $?)"
  fi
  if [[ -z $ORT_NAME ]]; then
    record "$row" peer_error "no onnxruntime-node in $ORT_MODULES: scripts/install-deps.sh --bench"
  elif "$PYTHON" "$BENCH/export_onnx.py" "$model" --batch "$n" -o "$out.onnx" >"$out.log" 2>&1 &&
       NODE_PATH="$ORT_MODULES" node "$BENCH/ort_peer.js" "$out.onnx" --shape "$shape" \
         --reps "$REPS" --min-time "$MIN_TIME" >"$out.out" 2>>"$out.log"; then
    record "$row" peer_seconds "$(field seconds "$out.out")"
  else
    record "$row" peer_error "$(why "$out.log" $?)"
  fi
}

run_ort() {
  local v n
  v=$(NODE_PATH="$ORT_MODULES" node -p "require('onnxruntime-node/package.json').version" \
        2>/dev/null)
  ORT_NAME=${v:+"ONNX Runtime $v (onnxruntime-node, 1 thread)"}
  for n in 1 64; do
    ort_row mlp MLP "$n" "$n,784" $((2 * n * MLP_MACS))
  done
  for n in 1 64; do
    ort_row cnn CNN "$n" "$n,1,28,28" $((2 * n * CNN_MACS))
  done
}

# ---- 4c. the GPT decode step: lathe vs PyTorch and ONNX Runtime (bench/gpt_decode.sh) --------
# One run of bench/gpt_decode.sh (which checks lathe's and ORT's logits against PyTorch's and
# times all three at batch 1, attention over the 64 masked cache rows); two rows of the table.
# Multiply-adds per token: per block the projections D x (D + 2 x 64 + D) and the MLP 3 x D x
# 352, attention 4 heads x 64 rows x 32 dims x 2 (scores and context); the head D x 96.
GPT_MACS=$((4 * (128 * 384 + 3 * 128 * 352 + 4 * 64 * 32 * 2) + 128 * 96))

run_gpt() {
  local out="$WORK/gpt" torch_row="GPT decode step (KV cache), batch 1" row status=0
  local ort_row="GPT decode step (KV cache), batch 1, vs ONNX Runtime"
  log "GPT decode step (bench/gpt_decode.sh)"
  BENCH_REPS=$REPS BENCH_MIN_TIME=$MIN_TIME ORT_NODE_MODULES=$ORT_MODULES \
    bash "$BENCH/gpt_decode.sh" "$LATHE" --record "$out.rec" >"$out.out" 2>"$out.log" ||
    status=$?
  for row in "$torch_row" "$ort_row"; do
    record "$row" flops $((2 * GPT_MACS))
    if [[ $status == 0 ]]; then
      record "$row" lathe_seconds "$(field lathe_seconds "$out.rec")"
    else
      record "$row" lathe_error "$(why "$out.log" "$status")"
      record "$row" peer_error "see the lathe cell"
    fi
  done
  local v
  v=$(field ort_version "$out.rec" 2>/dev/null)
  record "$torch_row" peer_name "$TORCH_NAME eager"
  record "$ort_row" peer_name "ONNX Runtime ${v:+$v }(onnxruntime-node, 1 thread)"
  if [[ $status == 0 ]]; then
    record "$torch_row" peer_seconds "$(field torch_seconds "$out.rec")"
    record "$ort_row" peer_seconds "$(field ort_seconds "$out.rec")"
  fi
}

# ---- 5. threads: the CNN batch-64 train step on 2 threads vs 1 --------------------------------
# Only when `lathe compile` has a --threads option; the generated C is then built with
# -fopenmp -pthread and run with OMP_NUM_THREADS=2. The peer column is lathe's own 1-thread
# build (the ratio is the speed-up); the notes give PyTorch on 2 threads.
run_threads() {
  local row="CNN train step (Adam), batch 64, lathe 2 threads vs 1" dir="$WORK/cnn64-t2"
  log "$row"
  record "$row" flops $((2 * 64 * CNN_TRAIN_MACS))
  record "$row" peer_name "lathe, 1 thread"
  if ! "$LATHE" compile --help 2>&1 | grep -q -e '--threads'; then
    record "$row" lathe_error "no --threads yet"
    record "$row" peer_error "no --threads yet"
    return
  fi
  if ! "$LATHE" compile "$ROOT/examples/cnn.lathe" -o "$dir" -D N=64 --threads 2 \
         "${TARGET_ARGS[@]}" >"$dir.log" 2>&1
  then
    record "$row" lathe_error "$(why "$dir.log" $?)"
  elif ! grep -q 'Pragma("omp' "$dir/cnn.c"; then
    record "$row" lathe_error "lathe compile --threads 2 wrote no OpenMP pragma for this model"
  elif "$CC" "${LATHE_CFLAGS[@]}" -fopenmp -pthread -I"$dir" -DMODEL_HEADER='"cnn.h"' \
       -DMODEL_INFO=cnn_info "$BENCH/drive.c" "$dir/cnn.c" -o "$dir/drive" -lm >>"$dir.log" 2>&1
  then
    OMP_NUM_THREADS=2 run_driver "$row" "$dir" train --int-range 10
  else
    record "$row" lathe_error "$(why "$dir.log" $?)"
  fi
  # the 1-thread build of the CNN rows (built here when those rows did not run)
  if [[ ! -x "$WORK/cnn64/drive" ]] &&
     ! build_lathe_driver cnn "$ROOT/examples/cnn.lathe" "$WORK/cnn64" -D N=64; then
    record "$row" peer_error "$(why "$WORK/cnn64.log" $?)"
  elif "$WORK/cnn64/drive" train --reps "$REPS" --min-time "$MIN_TIME" >"$dir-t1.out" \
         2>"$dir-t1.log"; then
    record "$row" peer_seconds "$(field seconds "$dir-t1.out")"
  else
    record "$row" peer_error "$(why "$dir-t1.log" $?)"
  fi
  local out="$WORK/torch-cnn-train-t2"
  if OMP_NUM_THREADS=2 "$PYTHON" "$BENCH/torch_models.py" cnn train --threads 2 --reps "$REPS" \
       --min-time "$MIN_TIME" >"$out.out" 2>"$out.log"; then
    record "$row" torch_threads_seconds "$(field seconds "$out.out")"
  fi
}

# ---- 6. one Fashion-MNIST epoch ---------------------------------------------------------------
# Runs COMMAND and records the CPU time (user + sys) it used as FIELD of ROW: on a busy machine
# the wall time grows with the other processes, the CPU time much less. Returns its status.
# usage: cpu_timed ROW FIELD COMMAND...   (redirections apply to COMMAND)
cpu_timed() {
  local row=$1 key=$2 status=0 TIMEFORMAT='%3U %3S' times
  shift 2
  { times=$({ time "$@" 1>&3 2>&4; } 2>&1); } 3>&1 4>&2 || status=$?
  [[ $status == 0 ]] && record "$row" "$key" "$(awk '{ print $1 + $2 }' <<<"$times")"
  return "$status"
}

# usage: run_epoch ROW MODEL_FILE MODEL_NAME PEER_COMMAND...
run_epoch() {
  local row=$1 file=$2 name=$3 t0 tag
  shift 3
  tag=$name
  log "$row (this takes a while)"
  record "$row" peer_name "$TORCH_NAME"
  t0=$(now)
  if cpu_timed "$row" lathe_cpu_seconds "$LATHE" train "$file" --data "fashion-mnist=$DATA" \
       --epochs 1 >"$WORK/epoch-$tag-lathe.out" 2>"$WORK/epoch-$tag-lathe.log"; then
    record "$row" lathe_seconds "$(since "$t0")"
    record "$row" lathe_accuracy \
      "$(grep -o 'test accuracy [0-9.]*' "$WORK/epoch-$tag-lathe.out" | awk '{print $3}')"
  else
    record "$row" lathe_error "$(why "$WORK/epoch-$tag-lathe.log" $?)"
  fi
  # what part of lathe's wall time is compiling the model (lathe compile + the loader's cc)
  t0=$(now)
  if "$LATHE" compile "$file" -o "$WORK/epoch-$tag-c" >/dev/null 2>&1 &&
     "$CC" -std=c99 -O2 -shared -fPIC "$WORK/epoch-$tag-c/$name.c" \
       -o "$WORK/epoch-$tag-c/$name.so" -lm 2>/dev/null; then
    record "$row" lathe_compile_seconds "$(since "$t0")"
  fi
  t0=$(now)
  if cpu_timed "$row" peer_cpu_seconds "$PYTHON" "$@" --data "$DATA" \
       >"$WORK/epoch-$tag-torch.out" 2>"$WORK/epoch-$tag-torch.log"; then
    record "$row" peer_seconds "$(since "$t0")"
    record "$row" peer_accuracy "$(field test_accuracy "$WORK/epoch-$tag-torch.out")"
    record "$row" peer_loop_seconds "$(field epoch_seconds "$WORK/epoch-$tag-torch.out")"
  else
    record "$row" peer_error "$(why "$WORK/epoch-$tag-torch.log" $?)"
  fi
}

# ---- the run ----------------------------------------------------------------------------------
machine=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
echo "# lathe benchmark — $(date -u '+%Y-%m-%d %H:%M UTC') — ${machine:-unknown CPU}," \
  "$(getconf _NPROCESSORS_ONLN) CPUs, 1 thread used, $("$CC" --version | head -n 1)"
echo
record run loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
record run target "${BENCH_TARGET:-native}"
# ONNX Runtime cannot be restricted: its rows compare like with like only when the target is
# native or the CPU has no wider vectors than the target allows
ort_isa=comparable
if [[ ${BENCH_TARGET:-native} == x86-64-v3 ]] && grep -qw avx512f /proc/cpuinfo; then
  ort_isa="not comparable: this CPU has AVX-512, which ONNX Runtime uses and x86-64-v3 lacks"
elif [[ ${BENCH_TARGET:-native} == generic ]]; then
  ort_isa="not comparable: ONNX Runtime uses this CPU's vector instructions, generic C none"
fi
record run ort_isa "$ort_isa"
run_peak start
record peak code_lanes "$(code_lanes)"
TORCH_NAME="PyTorch $("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
want() { [[ " $ROWS " == *" $1 "* ]]; }
want sgemm && run_sgemm
want mlp && run_mlp
want cnn && run_cnn
want ort && run_ort
want gpt && run_gpt
want lstm && run_lstm
want transformer && run_transformer
want threads && run_threads
if want epoch && [[ ${BENCH_EPOCH:-1} != 0 ]]; then
  run_epoch "Fashion-MNIST epoch (MLP, batch 64, Adam)" "$ROOT/examples/mlp.lathe" mlp \
    "$BENCH/torch_mlp.py" epoch
  run_epoch "Fashion-MNIST epoch (CNN, batch 64, Adam)" "$ROOT/examples/cnn.lathe" cnn \
    "$BENCH/torch_models.py" cnn epoch
fi
run_peak end
record run loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
"$PYTHON" "$BENCH/table.py" "$RESULTS"
