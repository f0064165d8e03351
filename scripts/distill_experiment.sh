#!/usr/bin/env bash
# scripts/distill_experiment.sh — issue #20's distillation experiment: does an MLP distilled
# from the trained CNN (examples/distill/distill_mlp.lathe) beat the same MLP trained alone
# on Fashion-MNIST test accuracy, with the same epochs, over three seeds?
#
# Usage: scripts/distill_experiment.sh [OUTDIR]
#   LATHE=build-release/lathe   the lathe binary (a release build)
#   TEACHER_EPOCHS=10           epochs of the CNN teacher (examples/cnn.lathe, seed 0)
#   TEACHER=                    a trained teacher checkpoint to use instead of training one
#   TEMPERATURE=4               T of the distill statement
#   ALPHAS="0.5 0.9"            the alphas to choose from on the validation split
#   SELECT_EPOCHS=5             epochs of each selection run
#   SELECT_SEED=1               the seed of the selection runs (init, shuffle and the split)
#   VAL_SPLIT=0.1               the fraction of the 60,000 training images held out (by
#                               `lathe train --val-split`, stratified) for the selection
#   SELECT_TEACHER_EPOCHS=      the selection's teacher: examples/cnn.lathe trained this many
#                               epochs (seed 0) instead of the teacher above
#   SELECT_TEACHER=             ... or this checkpoint
#   ALPHA=                      skip the selection and use this alpha
#   SELECT_ONLY=                1: stop after the selection (no teacher of its own needed
#                               when the selection has one)
#   EPOCHS=10                   epochs of each student of the comparison
#   SEEDS="1 2 3"               the comparison's seeds (init and shuffle)
#   JOBS=1                      runs at once (the results do not depend on it)
#   LIMIT=                      every run on the first LIMIT training samples only (a smoke
#                               test of the script; empty: all 60,000)
#   NICE=10                     the niceness every run gets
# Steps:
#  1. train the teacher to OUTDIR/cnn.safetensors (its test accuracy printed);
#  2. choose alpha without the test set: per alpha, the distilled student trained on the
#     training images minus a held-out VAL_SPLIT, accuracy on the held-out images after the
#     last epoch; the best alpha wins (ties: the first). The student alone runs on the same
#     split for reference;
#  3. per seed, the distilled student (T, the chosen alpha) and the student without its
#     `distill` line (the same file otherwise: inputs, layers, Adam 1e-3, batch 64, epochs,
#     seed; tests/distill_seed.sh checks that the seed gives both the same init and data
#     order) on all 60,000 training images, test accuracy on the 10,000 test images after
#     the last epoch; prints every run and the mean and sample standard deviation.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LATHE=${LATHE:-$ROOT/build-release/lathe}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-10}
TEACHER=${TEACHER:-}
TEMPERATURE=${TEMPERATURE:-4}
ALPHAS=${ALPHAS:-0.5 0.9}
SELECT_EPOCHS=${SELECT_EPOCHS:-5}
SELECT_SEED=${SELECT_SEED:-1}
VAL_SPLIT=${VAL_SPLIT:-0.1}
SELECT_TEACHER_EPOCHS=${SELECT_TEACHER_EPOCHS:-}
SELECT_TEACHER=${SELECT_TEACHER:-}
ALPHA=${ALPHA:-}
SELECT_ONLY=${SELECT_ONLY:-}
EPOCHS=${EPOCHS:-10}
SEEDS=${SEEDS:-1 2 3}
JOBS=${JOBS:-1}
LIMIT=${LIMIT:-}
NICE=${NICE:-10}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
limit=()
[ -z "$LIMIT" ] || limit=(--limit "$LIMIT")
start=$(date +%s)

# the final epoch's val_accuracy (percent) from a --log CSV
final_accuracy() {
  /usr/bin/python3 - "$1" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("%.2f" % (100 * float(rows[-1]["val_accuracy"])))
PY
}

# train FILE SEED EPOCHS LOG [extra args]: one run, its output in LOG.out, its time in LOG.time
train() {
  local file=$1 seed=$2 epochs=$3 log=$4 t0
  shift 4
  t0=$(date +%s)
  nice -n "$NICE" "$LATHE" train "$file" --data fashion-mnist --epochs "$epochs" \
    --seed "$seed" "${limit[@]}" --log "$log" "$@" >"$log.out" 2>&1 ||
    { cat "$log.out" >&2; return 1; }
  echo $(($(date +%s) - t0)) >"$log.time"
}

# run in the background, at most JOBS at once; `wait_all` fails if any run failed
pids=()
spawn() {
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 2; done
  "$@" &
  pids+=($!)
}
wait_all() {
  local pid failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  pids=()
  [ "$failed" = 0 ] || { echo "a run failed" >&2; exit 1; }
}

# teacher NAME EPOCHS: examples/cnn.lathe trained to OUT/NAME.safetensors
teacher() {
  train "$ROOT/examples/cnn.lathe" 0 "$2" "$OUT/$1.csv" --val fashion-mnist \
    --checkpoint "$OUT/$1.safetensors"
}

# student KIND ALPHA TEACHER_CKPT: OUT/KIND.lathe, the student at ALPHA distilled from the
# checkpoint (KIND alone: without its distill statement)
student() {
  sed -e "s|\"../cnn.lathe\"|\"$ROOT/examples/cnn.lathe\"|" \
    -e "s|\"cnn.safetensors\"|\"$3\"|" \
    -e "s|temperature [0-9.]* alpha [0-9.]*|temperature $TEMPERATURE alpha $2|" \
    "$ROOT/examples/distill/distill_mlp.lathe" >"$OUT/$1.lathe"
  if [ "${1%alone}" != "$1" ]; then
    sed -i -e '/^  distill /d' "$OUT/$1.lathe"
    if grep -q '^  distill ' "$OUT/$1.lathe"; then return 1; fi
  else
    grep -q "^  distill .*temperature $TEMPERATURE alpha $2 " "$OUT/$1.lathe"
  fi
}

echo "lathe: $LATHE; $(nproc) CPUs: $(lscpu | sed -n 's/^Model name: *//p')"
if [ -n "$SELECT_ONLY" ] && [ -n "$SELECT_TEACHER$SELECT_TEACHER_EPOCHS" ]; then
  TEACHER=none
elif [ -n "$TEACHER" ]; then
  cp "$TEACHER" "$OUT/cnn.safetensors"
  echo "teacher: $TEACHER"
else
  spawn teacher cnn "$TEACHER_EPOCHS"
fi
if [ -z "$ALPHA" ] && [ -n "$SELECT_TEACHER" ]; then
  cp "$SELECT_TEACHER" "$OUT/select_cnn.safetensors"
elif [ -z "$ALPHA" ] && [ -n "$SELECT_TEACHER_EPOCHS" ]; then
  spawn teacher select_cnn "$SELECT_TEACHER_EPOCHS"
fi
wait_all
[ -n "$TEACHER" ] || echo "teacher: examples/cnn.lathe, $TEACHER_EPOCHS epochs:" \
  "test accuracy $(final_accuracy "$OUT/cnn.csv")% ($(cat "$OUT/cnn.csv.time") s)"

if [ -z "$ALPHA" ]; then
  sel=$OUT/cnn.safetensors
  if [ -n "$SELECT_TEACHER$SELECT_TEACHER_EPOCHS" ]; then sel=$OUT/select_cnn.safetensors; fi
  [ -z "$SELECT_TEACHER_EPOCHS" ] || echo "selection teacher: $SELECT_TEACHER_EPOCHS epochs:" \
    "test accuracy $(final_accuracy "$OUT/select_cnn.csv")%"
  student select_alone 0 "$sel"
  spawn train "$OUT/select_alone.lathe" "$SELECT_SEED" "$SELECT_EPOCHS" \
    "$OUT/select_alone.csv" --val-split "$VAL_SPLIT"
  for a in $ALPHAS; do
    student "select_a$a" "$a" "$sel"
    spawn train "$OUT/select_a$a.lathe" "$SELECT_SEED" "$SELECT_EPOCHS" \
      "$OUT/select_a$a.csv" --val-split "$VAL_SPLIT"
  done
  wait_all
  echo "selection: $SELECT_EPOCHS epochs, seed $SELECT_SEED, accuracy on the $VAL_SPLIT" \
    "of the training images held out (not the test set):"
  echo "  MLP alone: $(final_accuracy "$OUT/select_alone.csv")%"
  best=-1
  for a in $ALPHAS; do
    acc=$(final_accuracy "$OUT/select_a$a.csv")
    echo "  distilled, T $TEMPERATURE, alpha $a: $acc% ($(cat "$OUT/select_a$a.csv.time") s)"
    if /usr/bin/python3 -c "import sys; sys.exit(not float('$acc') > float('$best'))"; then
      best=$acc
      ALPHA=$a
    fi
  done
  echo "chosen: alpha $ALPHA"
fi
if [ -n "$SELECT_ONLY" ]; then
  echo "outputs in $OUT ($(($(date +%s) - start)) s in all)"
  exit 0
fi

student alone 0 "$OUT/cnn.safetensors"
student distilled "$ALPHA" "$OUT/cnn.safetensors"
echo "comparison: $EPOCHS epochs, seeds $SEEDS, T $TEMPERATURE, alpha $ALPHA"
for kind in alone distilled; do
  for seed in $SEEDS; do
    spawn train "$OUT/$kind.lathe" "$seed" "$EPOCHS" "$OUT/$kind.$seed.csv" \
      --val fashion-mnist
  done
done
wait_all
declare -A acc
for kind in alone distilled; do
  for seed in $SEEDS; do
    acc[$kind]+="$(final_accuracy "$OUT/$kind.$seed.csv") "
    echo "$kind seed $seed: test accuracy $(final_accuracy "$OUT/$kind.$seed.csv")%" \
      "($(cat "$OUT/$kind.$seed.csv.time") s)"
  done
done

/usr/bin/python3 - "${acc[alone]}" "${acc[distilled]}" <<'PY'
import statistics, sys
alone, distilled = ([float(v) for v in a.split()] for a in sys.argv[1:3])
for name, v in (("MLP alone", alone), ("MLP distilled", distilled)):
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    print("%-14s mean %.2f%%  sd %.2f  min %.2f  max %.2f  (n = %d)"
          % (name, statistics.mean(v), sd, min(v), max(v), len(v)))
gain = statistics.mean(distilled) - statistics.mean(alone)
print("distillation: %+.2f points" % gain)
PY
echo "outputs in $OUT ($(($(date +%s) - start)) s in all)"
