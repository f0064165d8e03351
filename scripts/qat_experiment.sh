#!/usr/bin/env bash
# scripts/qat_experiment.sh — issue #19's QAT accuracy experiment (docs/int8.md "QAT"): for
# examples/mlp.lathe and examples/cnn.lathe on Fashion-MNIST, per seed,
#   1. f32:      train EPOCHS epochs (the float model);
#   2. f32 + 1:  from that checkpoint, QAT_EPOCHS more float epochs at QAT_LR (the control:
#                the same extra training without quantization);
#   3. QAT:      from the same checkpoint, QAT_EPOCHS epochs at QAT_LR of the model with
#                `quantize` added to its train block (fine-tuning, as PyTorch's and TF MOT's
#                QAT guides do: prepare a trained float model, train a few more steps);
#   4. int8:     `lathe quantize` of the QAT checkpoint (no calibration: the tracked ranges),
#                evaluated on the test split by its compiled integer C.
# Prints every run and, per model, the mean and sample standard deviation of each column.
#
# Usage: scripts/qat_experiment.sh [OUTDIR]
#   LATHE=build-rel/lathe   the lathe binary (a release build)
#   EPOCHS=3                f32 epochs;  QAT_EPOCHS=1, QAT_LR=1e-4: the fine-tuning
#   SEEDS="1 2 3"  MODELS="mlp cnn"  NICE=10  LIMIT= (first LIMIT training samples only)
#   STAGE=all | f32         f32: only the float runs (a rerun skips runs whose files exist)
#   PARALLEL=0              1: the control (2.) and QAT (3.) of a seed run at the same time
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LATHE=${LATHE:-$ROOT/build-rel/lathe}
EPOCHS=${EPOCHS:-3}
QAT_EPOCHS=${QAT_EPOCHS:-1}
QAT_LR=${QAT_LR:-1e-4}
SEEDS=${SEEDS:-1 2 3}
MODELS=${MODELS:-mlp cnn}
NICE=${NICE:-10}
LIMIT=${LIMIT:-}
STAGE=${STAGE:-all}
PARALLEL=${PARALLEL:-0}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
limit=()
[ -n "$LIMIT" ] && limit=(--limit "$LIMIT")

# the final epoch's val_accuracy (percent) from a --log CSV
final_accuracy() {
  /usr/bin/python3 -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1])));
print("%.2f" % (100 * float(r[-1]["val_accuracy"])))' "$1"
}

run() { # LOG then the command; skipped when LOG.done exists
  local log=$1
  shift
  [ -e "$log.done" ] && return 0
  nice -n "$NICE" "$@" >"$log.out" 2>&1 || { cat "$log.out" >&2; exit 1; }
  touch "$log.done"
}

train() { # FILE SEED EPOCHS LOG [extra args]
  local file=$1 seed=$2 epochs=$3 log=$4
  shift 4
  run "$log" "$LATHE" train "$file" --data fashion-mnist --val fashion-mnist --epochs "$epochs" \
    --seed "$seed" "${limit[@]}" --log "$log" "$@"
}

# int8 test accuracy from `lathe eval` (its "accuracy" line, in percent)
eval_accuracy() { # FILE WEIGHTS LOG
  run "$3" "$LATHE" eval "$1" --weights "$2" --data fashion-mnist
  /usr/bin/python3 -c 'import re,sys; t=open(sys.argv[1]).read();
m=re.search(r"accuracy\s*[:=]?\s*([0-9.]+)\s*(%?)", t); v=float(m.group(1));
print("%.2f" % (v if m.group(2) else 100 * v))' "$3.out"
}

echo "lathe: $LATHE; f32 $EPOCHS epochs; QAT $QAT_EPOCHS epoch(s) at lr $QAT_LR; seeds $SEEDS" \
  "${LIMIT:+; first $LIMIT training samples}"
lscpu | grep -E '^(Model name|CPU\(s\))' || true
declare -A col
for model in $MODELS; do
  src=$ROOT/examples/$model.lathe
  # the QAT model: the example with `quantize` in its train block
  sed -e 's/^  minimize loss$/  minimize loss\n  quantize/' "$src" >"$OUT/$model-qat.lathe"
  grep -q '^  quantize$' "$OUT/$model-qat.lathe"
  for seed in $SEEDS; do
    base=$OUT/$model.s$seed
    t0=$(date +%s)
    train "$src" "$seed" "$EPOCHS" "$base.f32.csv" --checkpoint "$base.f32.safetensors"
    f32=$(final_accuracy "$base.f32.csv")
    if [ "$STAGE" = f32 ]; then
      echo "$model seed $seed: f32 $f32% ($(($(date +%s) - t0)) s)"
      continue
    fi
    more=$((EPOCHS + QAT_EPOCHS))
    cp "$base.f32.safetensors" "$base.ft.start.safetensors"
    cp "$base.f32.safetensors" "$base.qat.start.safetensors"
    train "$src" "$seed" "$more" "$base.ft.csv" --resume "$base.ft.start.safetensors" \
      --lr "$QAT_LR" --checkpoint "$base.ft.safetensors" &
    ft=$!
    [ "$PARALLEL" = 1 ] || wait "$ft" # its exit status: a failed run stops the script
    train "$OUT/$model-qat.lathe" "$seed" "$more" "$base.qat.csv" \
      --resume "$base.qat.start.safetensors" --lr "$QAT_LR" --checkpoint "$base.qat.safetensors"
    [ "$PARALLEL" != 1 ] || wait "$ft"
    run "$base.convert" "$LATHE" quantize "$OUT/$model-qat.lathe" \
      --weights "$base.qat.safetensors" -o "$base.int8"
    ft=$(final_accuracy "$base.ft.csv")
    qat=$(final_accuracy "$base.qat.csv")
    int8=$(eval_accuracy "$base.int8.lathe" "$base.int8.safetensors" "$base.int8.eval")
    col[$model.f32]+="$f32 " col[$model.ft]+="$ft " col[$model.qat]+="$qat "
    col[$model.int8]+="$int8 "
    echo "$model seed $seed: f32 $f32%  f32+$QAT_EPOCHS $ft%  QAT (fake-quant) $qat%" \
      " int8 $int8%  ($(($(date +%s) - t0)) s)"
  done
done
[ "$STAGE" = f32 ] && exit 0
stats() { /usr/bin/python3 -c 'import statistics as s,sys; v=[float(x) for x in sys.argv[1:]];
print("%.2f ± %.2f" % (s.mean(v), s.stdev(v) if len(v) > 1 else 0))' "$@"; }
for model in $MODELS; do
  # shellcheck disable=SC2086
  echo "$model mean ± sd: f32 $(stats ${col[$model.f32]})" \
    " f32+$QAT_EPOCHS $(stats ${col[$model.ft]})  QAT $(stats ${col[$model.qat]})" \
    " int8 $(stats ${col[$model.int8]})"
done
