#!/usr/bin/env bash
# bench/gpt_decode.sh LATHE [--record FILE] — tokens per second of the GPT decode step at
# batch 1 on one thread (issue #22, docs/gpt.md): lathe's generated step against PyTorch eager
# (bench/torch_gpt.py) and ONNX Runtime (npm onnxruntime-node, bench/gpt_ort.js) on the same
# step exported to ONNX, all with the same random weights and a KV cache of TMAX = 64 rows.
#
#   1. bench/torch_gpt.py weights: random weights from a fixed seed as safetensors with lathe's
#      param names, and PyTorch's step logits over a random 64-token prompt (checked there
#      against PyTorch's full causal forward);
#   2. lathe: `model gpt_step` of examples/gpt.lathe (`--model gpt_step`; batch 1, the KV cache
#      in the model's state); twice: the weights as
#      params (loaded from the safetensors file) and baked into the C (--weights --bake; a bake
#      lathe cannot compile is shown as n/a with its error); each built with bench/gpt_drive.c,
#      which CHECKS the step's logits at every position against PyTorch's (1e-4 of the largest
#      logit; a failed check stops the run, exit 1) and times it;
#   3. PyTorch eager, the same attention (all 64 rows, rows after pos masked); also over the
#      first pos + 1 rows only (`--attention prefix`), what an eager user would write;
#   4. ONNX Runtime on the step exported by torch.onnx (opset 17, caches as inputs and outputs),
#      checked against PyTorch's logits like lathe's, then timed.
# Positions run 0..63 and around; each number is the median seconds per step over BENCH_REPS
# (default 5) runs of BENCH_MIN_TIME (default 0.3) seconds after warm-up. Prints the CPU, a
# table of seconds per token, tokens/s and lathe's speed-up, and the ratio to the faster peer
# (issue #22's goal: >= 2). --record FILE appends `key value` lines for bench/run.sh.
# Environment: BENCH_REPS, BENCH_MIN_TIME, CC, PYTHON (default /usr/bin/python3),
# ORT_NODE_MODULES (default bench/node/node_modules), BENCH_TARGET (lathe compile --target).
# Measurement only: no time is asserted; a check that fails, or a peer that cannot run, is an
# error (exit 1) with the reason.
set -uo pipefail
if [[ $# -lt 1 || ! -x "$1" ]] || [[ $# -ne 1 && ($# -ne 3 || "$2" != --record) ]]; then
  echo "usage: bench/gpt_decode.sh PATH/TO/lathe [--record FILE]" >&2
  exit 2
fi
LATHE=$(realpath "$1")
RECORD=${3:-}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
REPS=${BENCH_REPS:-5}
MIN_TIME=${BENCH_MIN_TIME:-0.3}
CC=${CC:-cc}
PYTHON=${PYTHON:-/usr/bin/python3}
ORT_MODULES=${ORT_NODE_MODULES:-$BENCH/node/node_modules}
TARGET_ARGS=()
[[ -n ${BENCH_TARGET:-} ]] && TARGET_ARGS=(--target "$BENCH_TARGET")
MARCH=native # lathe's C is built for the target's x86-64 level when it names one
[[ ${BENCH_TARGET:-} == x86-64-v[34] ]] && MARCH=$BENCH_TARGET
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lathe-gpt.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
W=$WORK/weights.safetensors
REF=$WORK/ref.bin

die() {
  echo "gpt_decode.sh: $1" >&2
  [[ -f ${2:-} ]] && sed 's/^/  /' "$2" >&2
  exit 1
}
log() { echo "gpt_decode: $*" >&2; }
# the value after KEY in a "KEY value ..." line of file $2
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' "$2"; }

# The lathe step: examples/gpt.lathe's gpt_step (picked with --model)
MODEL=$ROOT/examples/gpt.lathe CACHE="in the model's state (examples/gpt.lathe gpt_step)"
MODEL_ARGS=(--model gpt_step)

# usage: lathe_step NAME [lathe compile options]: build, check and time; prints the seconds
lathe_step() {
  local name=$1 dir=$WORK/$1
  shift
  "$LATHE" compile "$MODEL" "${MODEL_ARGS[@]}" -o "$dir" --prefix gpt_step \
    "${TARGET_ARGS[@]}" "$@" >"$dir.log" 2>&1 || die "lathe compile ($name) failed" "$dir.log"
  "$CC" -std=c11 -O3 -march="$MARCH" -fno-math-errno -I"$dir" -DMODEL_HEADER='"gpt_step.h"' \
    -DMODEL_INFO=gpt_step_info "$BENCH/gpt_drive.c" "$dir/gpt_step.c" -o "$dir/drive" -lm \
    >>"$dir.log" 2>&1 || die "building the lathe step ($name) failed" "$dir.log"
  "$dir/drive" --weights "$W" --ref "$REF" --reps "$REPS" --min-time "$MIN_TIME" \
    >"$dir.out" 2>>"$dir.log" || die "lathe's step ($name) failed" "$dir.log"
  field seconds "$dir.out"
}

log "weights and PyTorch's reference logits"
"$PYTHON" "$BENCH/torch_gpt.py" weights --with-state -o "$W" --ref "$REF" \
  >"$WORK/weights.log" 2>&1 || die "bench/torch_gpt.py weights failed" "$WORK/weights.log"
log "lathe, weights as params ($MODEL)"
lathe_params=$(lathe_step params) || exit 1
log "lathe, weights baked"
# a bake that does not compile is a row n/a with lathe's first error (the check stays fatal)
if ! lathe_baked=$(lathe_step baked --weights "$W" --bake 2>"$WORK/baked.why"); then
  grep -q 'CHECK FAILED' "$WORK/baked.why" && { cat "$WORK/baked.why" >&2; exit 1; }
  baked_why=$(grep -m 1 'error' "$WORK/baked.why" | sed "s|^ *||; s|$ROOT/||" | cut -c1-100)
  lathe_baked=""
fi
log "PyTorch eager"
for att in masked prefix; do
  "$PYTHON" "$BENCH/torch_gpt.py" time -w "$W" --attention "$att" --reps "$REPS" \
    --min-time "$MIN_TIME" >"$WORK/torch-$att.out" 2>"$WORK/torch-$att.log" ||
    die "bench/torch_gpt.py time --attention $att failed" "$WORK/torch-$att.log"
done
torch_masked=$(field seconds "$WORK/torch-masked.out")
torch_prefix=$(field seconds "$WORK/torch-prefix.out")
log "ONNX Runtime"
[[ -d $ORT_MODULES/onnxruntime-node ]] ||
  die "no onnxruntime-node in $ORT_MODULES: run scripts/install-deps.sh --bench"
"$PYTHON" "$BENCH/torch_gpt.py" export -w "$W" -o "$WORK/step.onnx" >"$WORK/ort.log" 2>&1 ||
  die "bench/torch_gpt.py export failed" "$WORK/ort.log"
NODE_PATH=$ORT_MODULES node "$BENCH/gpt_ort.js" "$WORK/step.onnx" --ref "$REF" --reps "$REPS" \
  --min-time "$MIN_TIME" >"$WORK/ort.out" 2>>"$WORK/ort.log" ||
  die "ONNX Runtime's step failed" "$WORK/ort.log"
ort=$(field seconds "$WORK/ort.out")

torch_version=$("$PYTHON" -c 'import torch; print(torch.__version__)')
ort_version=$(field version "$WORK/ort.out")
cpu=$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')
echo "CPU: $cpu ($(getconf _NPROCESSORS_ONLN) CPUs, 1 thread used); load average" \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "GPT decode step, batch 1, examples/gpt.lathe's shapes (V 96, D 128, 4 blocks, GQA 4/2," \
  "SwiGLU 352); the KV cache of 64 rows $CACHE"
echo "attention over all 64 cache rows, the rows after pos masked (unless said otherwise)"
checked() { [[ -f $1 ]] && field check_max_abs "$1" || echo n/a; }
echo "logits checked against PyTorch's at 64 positions: max |diff| lathe" \
  "$(checked "$WORK/params.out") (params), $(checked "$WORK/baked.out") (baked)," \
  "ONNX Runtime $(checked "$WORK/ort.out"), of max |logit| $(field max_logit "$WORK/params.out")"
printf '%-46s %14s %10s %12s\n' "" "s/token" "tokens/s" "lathe faster"
row() {
  awk -v n="$1" -v t="$2" -v l="$lathe_params" \
    'BEGIN { printf "%-46s %14.4g %10.0f %11.2fx\n", n, t, 1 / t, t / l }'
}
row "lathe (weights as params)" "$lathe_params"
if [[ -n $lathe_baked ]]; then
  row "lathe (weights baked, --bake)" "$lathe_baked"
else
  printf '%-46s n/a (%s)\n' "lathe (weights baked, --bake)" "$baked_why"
fi
row "PyTorch $torch_version eager" "$torch_masked"
row "PyTorch $torch_version eager, prefix attention" "$torch_prefix"
row "ONNX Runtime $ort_version (onnxruntime-node)" "$ort"
awk -v l="$lathe_params" -v a="$torch_masked" -v b="$torch_prefix" -v c="$ort" 'BEGIN {
  f = a; if (b < f) f = b; if (c < f) f = c
  printf "lathe (params) vs the faster peer: %.2fx (goal >= 2x)\n", f / l }'
if [[ -n $RECORD ]]; then
  {
    echo "lathe_seconds $lathe_params"
    [[ -n $lathe_baked ]] && echo "lathe_baked_seconds $lathe_baked"
    echo "torch_seconds $torch_masked"
    echo "torch_prefix_seconds $torch_prefix"
    echo "ort_seconds $ort"
    echo "torch_version $torch_version"
    echo "ort_version $ort_version"
  } >>"$RECORD"
fi
