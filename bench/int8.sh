#!/usr/bin/env bash
# bench/int8.sh [LATHE] — int8 inference against lathe's f32 and against ONNX Runtime's int8,
# one thread, batch 64, one run (issue 19; docs/int8.md, "Against ONNX Runtime's int8"). For
# the MLP and the CNN (examples/mlp.lathe, examples/cnn.lathe, random f32 weights of
# bench/int8_weights.py):
#   - lathe f32: the example, baked;
#   - lathe int8: the model `lathe quantize --quantize-last` writes (calibrated on 256 random
#     inputs), baked, twice: full-range weights (AVX2 runs the exact s16 tile) and
#     --reduce-range 7-bit weights (the u8 x s8 vpmaddubsw tile). Same input (f32), same
#     output (softmax) as the f32 model: quantize, every layer int8, dequantize, softmax;
#   - ONNX Runtime int8 (npm onnxruntime-node, bench/node/, one intra-op thread; timed by
#     bench/ort_peer.js): the same int8 models exported by bench/int8_onnx.py (QDQ form, uint8
#     activations, the same int8 weights, int32 biases, scales and zero points), as
#     full-range U8U8 (weights + 128: ORT's exact kernels), full-range U8S8 (its vpmaddubsw
#     kernels, which saturate with full-range weights) and 7-bit U8S8; the 7-bit models also
#     as a QOperator file (QLinearConv, com.microsoft's QGemm), which ORT runs with the same
#     kernels as the QDQ one after its fusions: the row shows that the form costs nothing.
# Before timing, each ORT model's int8 logits on one batch (bench/int8_ort.js) are compared with
# lathe's (`lathe run` of the int8 model with its logits as an output): the largest difference
# in quanta is printed, and above BENCH_INT8_MAX_QUANTA (default 3) the run stops with exit 1,
# except for full-range U8S8, whose saturation is reported, not stopped on. ORT's own log must
# show every Conv and Gemm fused into an integer kernel (bench/int8_onnx.py fused).
# Timing by bench/drive.c (cc -O3 -march=native, lathe's native target) and ort_peer.js:
# BENCH_REPS rounds (default 7), each running every binary once for BENCH_MIN_TIME seconds
# (default 0.3) after warm-up, in turn (alternated), and the median per binary. Prints seconds
# per batch, f32 / int8 (above 1: int8 is faster), ORT / lathe (above 1: lathe is faster),
# and the code + data bytes (`size`: .text, .data, .rodata*) of the baked MLPs.
# Goals (issue 19): >= 1.3x f32 on an AVX2 CPU, >= 2.5x with AVX-512 VNNI; the int8 MLP <= 30%
# of the f32 MLP's bytes. Environment: BENCH_REPS, BENCH_MIN_TIME, BENCH_INT8_MAX_QUANTA, CC,
# ORT_NODE_MODULES (default bench/node/node_modules: scripts/install-deps.sh --bench).
set -uo pipefail
LATHE=$(realpath "${1:-build/lathe}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${BENCH_REPS:-7}
MIN_TIME=${BENCH_MIN_TIME:-0.3}
MAXQ=${BENCH_INT8_MAX_QUANTA:-3}
CC=${CC:-cc}
PY=/usr/bin/python3
ORT_MODULES=${ORT_NODE_MODULES:-$ROOT/bench/node/node_modules}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

build() { # NAME MODEL WEIGHTS: bake, link bench/drive.c, and an object for `size`
  local dir=$WORK/$1
  "$LATHE" compile "$2" --weights "$3" --bake -o "$dir" --prefix m >"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -I"$dir" -DMODEL_HEADER='"m.h"' \
      -DMODEL_INFO=m_info "$ROOT/bench/drive.c" "$dir/m.c" -o "$dir/drive" -lm >>"$dir.log" 2>&1 &&
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -c "$dir/m.c" -o "$dir/m.o" \
      >>"$dir.log" 2>&1 ||
    { cat "$dir.log" >&2; fail "build of $1"; }
}
quantize() { # NET TAG [--reduce-range]: lathe quantize's int8 model, built; its logits on check
  local q=$WORK/q$1_$2
  "$LATHE" quantize "$ROOT/examples/$1.lathe" --weights "$WORK/w/$1.safetensors" \
    --calibrate "$WORK/w/cal_$1" --quantize-last "${@:3}" -o "$q" --report-json "$q.json" \
    >"$q.qlog" 2>&1 || { cat "$q.qlog" >&2; fail "lathe quantize of $1 ($2)"; }
  build "q$1_$2" "$q.lathe" "$q.safetensors"
  sed -E 's/^(  output probs( = .*)?)$/\1\n  output logits/' "$q.lathe" >"${q}_check.lathe"
  "$LATHE" run "${q}_check.lathe" --weights "$q.safetensors" --input "x=$WORK/w/check_$1.npy" \
    --out "$q.out" >"$q.rlog" 2>&1 || { cat "$q.rlog" >&2; fail "lathe run of $1 ($2)"; }
}
ort_model() { # NET TAG KIND(u8u8|u8s8|u8s8qop) LIMIT: export, check fusions, outputs
  local q=$WORK/q$1_$2 o=$WORK/ort_$1_$2_$3 type=int8 form=qdq d
  [ "$3" = u8u8 ] && type=uint8
  [ "$3" = u8s8qop ] && form=qop
  for d in "" "_check"; do
    $PY "$ROOT/bench/int8_onnx.py" export "$q.lathe" "$q.safetensors" "$q.json" \
      -o "$o$d.onnx" --weight-type "$type" --form "$form" ${d:+--int8-output logits} ||
      fail "export of $o$d"
  done
  NODE_PATH="$ORT_MODULES" node "$ROOT/bench/int8_ort.js" "${o}_check.onnx" \
    --input "$WORK/w/check_$1.npy" --out "$o.out" --log >/dev/null 2>"$o.log" ||
    { tail -5 "$o.log" >&2; fail "ONNX Runtime on $o"; }
  $PY "$ROOT/bench/int8_onnx.py" fused "${o}_check.onnx" "$o.log" >"$o.fused" ||
    { cat "$o.fused" >&2; fail "ONNX Runtime did not run $1 ($2, $3) in int8"; }
  $PY "$ROOT/bench/int8_onnx.py" compare "$q.out" "$o.out" logits --max-quanta "$4" \
    >"$o.cmp" || fail "ONNX Runtime's $1 ($2 weights, $3) against lathe's: $(cat "$o.cmp")"
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : \
  (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
bytes() { size -A "$WORK/$1/m.o" | awk '$1 ~ /^\.(text|data|rodata)/ {s += $2} END {print s}'; }
once() { # NAME: one timed run (lathe's drive, or ORT's peer on ort_*.onnx), seconds per batch
  local s
  case $1 in
    ort_*) s=$(NODE_PATH="$ORT_MODULES" node "$ROOT/bench/ort_peer.js" "$WORK/$1.onnx" \
                 --shape "$2" --reps 1 --min-time "$MIN_TIME" 2>&1 | awk '/^seconds/ {print $2}');;
    *) s=$("$WORK/$1/drive" forward --reps 1 --min-time "$MIN_TIME" --int-range 10 2>&1 |
             awk '/^seconds/ {print $2}');;
  esac
  [ -n "$s" ] || fail "$1 did not run"
  echo "$s" >>"$WORK/$1.times"
}

$PY "$ROOT/bench/int8_weights.py" "$WORK/w" || exit 1
ORT=1
if ! command -v node >/dev/null; then ORT="n/a (no node: scripts/install-deps.sh --bench)"
elif [ ! -d "$ORT_MODULES/onnxruntime-node" ]; then
  ORT="n/a (no onnxruntime-node in $ORT_MODULES: scripts/install-deps.sh --bench)"
fi
for net in mlp cnn; do
  build "$net" "$ROOT/examples/$net.lathe" "$WORK/w/$net.safetensors"
  quantize "$net" full
  quantize "$net" 7bit --reduce-range
  [ "$ORT" = 1 ] || continue
  ort_model "$net" full u8u8 "$MAXQ"
  ort_model "$net" full u8s8 127
  ort_model "$net" 7bit u8s8 "$MAXQ"
  ort_model "$net" 7bit u8s8qop "$MAXQ"
done
grep -q "exact s16 tile" "$WORK/qmlp_full/m.c" && grep -q "u8 x s8 vpmaddubsw tile" \
  "$WORK/qmlp_7bit/m.c" || echo "note: this machine's target has no AVX2 tiles (not x86-64-v3/v4)"

for net in mlp cnn; do
  shape=64,784
  [ "$net" = cnn ] && shape=64,1,28,28
  runs=("$net" "q${net}_full" "q${net}_7bit")
  [ "$ORT" = 1 ] && runs+=("ort_${net}_full_u8u8" "ort_${net}_full_u8s8" "ort_${net}_7bit_u8s8"
                          "ort_${net}_7bit_u8s8qop")
  for ((r = 0; r < REPS; r++)); do
    for b in "${runs[@]}"; do once "$b" "$shape"; done
  done
done
t() { median <"$WORK/$1.times"; }

echo "CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')," \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(grep -o -m1 'Target: [^ ]*' "$WORK/mlp/m.c") (lathe's native target)"
printf '%-34s %12s %9s\n' "batch 64, one thread" seconds f32/int8
for net in mlp cnn; do
  f=$(t "$net")
  printf '%-34s %12.3e %9s\n' "$net f32" "$f" 1.00
  for tag in full 7bit; do
    printf '%-34s %12.3e %9s\n' "$net int8 ($tag weights)" "$(t "q${net}_$tag")" \
      "$(ratio "$f" "$(t "q${net}_$tag")")"
  done
done
if [ "$ORT" = 1 ]; then
  v=$(NODE_PATH="$ORT_MODULES" node -p "require('onnxruntime-node/package.json').version")
  printf '\n%-42s %11s %11s %9s %10s\n' "vs ONNX Runtime $v int8" "ORT s" "lathe s" \
    ORT/lathe "max quanta"
  for net in mlp cnn; do
    for run in full_u8u8 full_u8s8 7bit_u8s8 7bit_u8s8qop; do
      tag=${run%_*} kind=${run#*_}
      kind=${kind^^} && kind=${kind/QOP/, QOperator file}
      read -r q n all <"$WORK/ort_${net}_$run.cmp"
      printf '%-42s %11.3e %11.3e %9s %10s\n' "$net $tag weights, ORT $kind" \
        "$(t "ort_${net}_$run")" "$(t "q${net}_$tag")" \
        "$(ratio "$(t "ort_${net}_$run")" "$(t "q${net}_$tag")")" "$q ($n/$all)"
    done
  done
  for net in mlp cnn; do
    echo "ORT's fusions ($net): $(tr '\n' ';' <"$WORK/ort_${net}_7bit_u8s8.fused")"
  done
else
  echo "ONNX Runtime rows: $ORT"
fi
fb=$(bytes mlp)
printf '\n%-34s %12s %9s\n' "baked MLP, code + data" bytes int8/f32
printf '%-34s %12d %9s\n' "mlp f32" "$fb" 1.00
printf '%-34s %12d %9s\n' "mlp int8" "$(bytes qmlp_full)" "$(ratio "$(bytes qmlp_full)" "$fb")"
