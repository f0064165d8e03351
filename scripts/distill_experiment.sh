#!/usr/bin/env bash
# scripts/distill_experiment.sh — issue #20's distillation experiment: does an MLP distilled
# from the trained CNN (examples/distill/distill_mlp.lathe) beat the same MLP trained alone
# on Fashion-MNIST test accuracy, with the same epochs, over three seeds?
#
# Usage: scripts/distill_experiment.sh [OUTDIR]
#   LATHE=build-release/lathe   the lathe binary (a release build: the timings matter less
#                               than the accuracies, but a debug build is slow)
#   EPOCHS=2                    epochs of each student
#   TEACHER_EPOCHS=2            epochs of the CNN teacher (trained once, seed 0)
#   LIMIT=                      train on the first LIMIT samples only (empty: all 60000)
#   SEEDS="1 2 3"               the students' seeds (init and shuffle)
#   NICE=10                     the niceness every run gets
#   TEACHER=                    a trained teacher checkpoint to use instead of training one
# Steps: train examples/cnn.lathe to OUTDIR/cnn.safetensors (its test accuracy printed), then
# per seed train the distilled student and the student without its `distill` line (the same
# file otherwise: same inputs, layers, optimizer, epochs, batch), evaluating on the test
# split after the last epoch; prints every run and the mean and sample standard deviation.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LATHE=${LATHE:-$ROOT/build-release/lathe}
EPOCHS=${EPOCHS:-2}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-2}
LIMIT=${LIMIT:-}
SEEDS=${SEEDS:-1 2 3}
NICE=${NICE:-10}
TEACHER=${TEACHER:-}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
limit=()
[ -n "$LIMIT" ] && limit=(--limit "$LIMIT")

# the final epoch's val_accuracy (percent) from a --log CSV
final_accuracy() {
  /usr/bin/python3 - "$1" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("%.2f" % (100 * float(rows[-1]["val_accuracy"])))
PY
}

train() { # FILE SEED LOG [extra args]
  local file=$1 seed=$2 log=$3
  shift 3
  nice -n "$NICE" "$LATHE" train "$file" --data fashion-mnist --val fashion-mnist \
    --epochs "$EPOCHS" --seed "$seed" "${limit[@]}" --log "$log" "$@" >"$log.out" 2>&1 ||
    { cat "$log.out" >&2; exit 1; }
}

echo "lathe: $LATHE; students: $EPOCHS epochs, seeds $SEEDS; teacher: $TEACHER_EPOCHS epochs" \
  "${LIMIT:+; first $LIMIT training samples}"
start=$(date +%s)
if [ -n "$TEACHER" ]; then
  cp "$TEACHER" "$OUT/cnn.safetensors"
  echo "teacher: $TEACHER"
else
  EPOCHS=$TEACHER_EPOCHS train "$ROOT/examples/cnn.lathe" 0 "$OUT/teacher.csv" \
    --checkpoint "$OUT/cnn.safetensors"
  echo "teacher (examples/cnn.lathe): test accuracy $(final_accuracy "$OUT/teacher.csv")%" \
    "($(($(date +%s) - start)) s)"
fi

# the student with absolute teacher paths, and the same file without its distill statement
sed -e "s|\"../cnn.lathe\"|\"$ROOT/examples/cnn.lathe\"|" \
  -e "s|\"cnn.safetensors\"|\"$OUT/cnn.safetensors\"|" \
  "$ROOT/examples/distill/distill_mlp.lathe" >"$OUT/distilled.lathe"
sed -e '/^  distill /d' "$OUT/distilled.lathe" >"$OUT/alone.lathe"
grep -q '^  distill ' "$OUT/distilled.lathe"

declare -A acc
for kind in alone distilled; do
  for seed in $SEEDS; do
    t0=$(date +%s)
    train "$OUT/$kind.lathe" "$seed" "$OUT/$kind.$seed.csv"
    acc[$kind]+="$(final_accuracy "$OUT/$kind.$seed.csv") "
    echo "$kind seed $seed: test accuracy $(final_accuracy "$OUT/$kind.$seed.csv")%" \
      "($(($(date +%s) - t0)) s)"
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
