#!/usr/bin/env bash
# scripts/prune_experiment.sh — issue #20's structured-pruning experiment: how much test
# accuracy does the CNN of examples/cnn.lathe lose on Fashion-MNIST when half the output
# channels of both its convolutions are pruned during training and fine-tuned (goal: <= 1
# point against the dense CNN trained as long)?
#
# Usage: scripts/prune_experiment.sh [OUTDIR]
#   LATHE=build-release/lathe   the lathe binary (a debug build is slow)
#   EPOCHS=3                    epochs of each run (the dense and the pruned CNN alike)
#   SPARSITY=0.5                the fraction of each convolution's output channels pruned
#   PARAMS="c1.w, c2.w"         the pruned weights (the two conv layers)
#   BEGIN=0 END=937 EVERY=94    the schedule in steps (937 steps = one epoch at batch 64):
#                               the sparsity rises polynomially from 0 at BEGIN to SPARSITY
#                               at END, the masks recomputed every EVERY steps, then held;
#                               the epochs after END are the fine-tuning
#   SEED=0                      init and shuffle seed of both runs
#   LIMIT=                      train on the first LIMIT samples only (empty: all 60000)
#   NICE=10                     the niceness every run gets
#   DENSE=                      a dense run's directory from an earlier call (its
#                               dense.csv and dense.safetensors) instead of training it again
# Steps: train examples/cnn.lathe (dense) and the same file with a `prune` statement in its
# train block for EPOCHS epochs each, evaluating on the test split after every epoch; then
# check the pruned checkpoint's channels are zero. The accuracies are the trainer's
# evaluation of the masked weights after each epoch; tests/prune_channels.sh checks that the
# baked, physically smaller model computes the same outputs as the masked one.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LATHE=${LATHE:-$ROOT/build-release/lathe}
EPOCHS=${EPOCHS:-3}
SPARSITY=${SPARSITY:-0.5}
PARAMS=${PARAMS:-c1.w, c2.w}
BEGIN=${BEGIN:-0}
END=${END:-937}
EVERY=${EVERY:-94}
SEED=${SEED:-0}
LIMIT=${LIMIT:-}
NICE=${NICE:-10}
DENSE=${DENSE:-}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
limit=()
[ -n "$LIMIT" ] && limit=(--limit "$LIMIT")

# every epoch's val_accuracy (percent) from a --log CSV, the last one last
accuracies() {
  /usr/bin/python3 - "$1" <<'PY'
import csv, sys
rows = csv.DictReader(open(sys.argv[1]))
print(" ".join("%.2f" % (100 * float(r["val_accuracy"])) for r in rows))
PY
}

train() { # FILE NAME
  local t0
  t0=$(date +%s)
  nice -n "$NICE" "$LATHE" train "$1" --data fashion-mnist --val fashion-mnist \
    --epochs "$EPOCHS" --seed "$SEED" "${limit[@]}" --log "$OUT/$2.csv" \
    --checkpoint "$OUT/$2.safetensors" >"$OUT/$2.out" 2>&1 || { cat "$OUT/$2.out" >&2; exit 1; }
  echo "$2: test accuracy per epoch $(accuracies "$OUT/$2.csv") ($(($(date +%s) - t0)) s)"
}

echo "lathe: $LATHE; $EPOCHS epochs, seed $SEED; prune $PARAMS channels($SPARSITY," \
  "begin $BEGIN, end $END, every $EVERY)${LIMIT:+; first $LIMIT training samples}"
start=$(date +%s)
line="  prune $PARAMS channels(sparsity = $SPARSITY, begin = $BEGIN, end = $END, every = $EVERY)"
sed -e "s|^  optimizer adam(lr = 1e-3)\$|&\n$line|" "$ROOT/examples/cnn.lathe" >"$OUT/pruned.lathe"
grep -q '^  prune ' "$OUT/pruned.lathe"
# `import nn` resolves against the model file's directory and the library path
cp "$ROOT/examples/cnn.lathe" "$OUT/dense.lathe"

# the two runs side by side (each is one process; on a shared machine this halves the wait)
if [ -n "$DENSE" ]; then
  [ "$DENSE" -ef "$OUT" ] || cp "$DENSE/dense.csv" "$DENSE/dense.safetensors" "$OUT/"
  echo "dense: test accuracy per epoch $(accuracies "$OUT/dense.csv") (from $DENSE)"
else
  train "$OUT/dense.lathe" dense &
  dense_pid=$!
fi
train "$OUT/pruned.lathe" pruned
[ -z "$DENSE" ] && { wait "$dense_pid" || exit 1; }

# the pruned checkpoint: every pruned conv has round(SPARSITY * O) all-zero output channels
/usr/bin/python3 - "$OUT/pruned.safetensors" "$SPARSITY" <<'PY'
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
for name in ("c1.w", "c2.w"):
    t = head[name]
    a, b = t["data_offsets"]
    w = np.frombuffer(raw[8 + n + a:8 + n + b], np.float32).reshape(t["shape"])
    zero = int((np.abs(w).reshape(w.shape[0], -1).sum(1) == 0).sum())
    want = int(np.round(float(sys.argv[2]) * w.shape[0]))
    print("%s %s: %d of %d output channels zero" % (name, list(w.shape), zero, w.shape[0]))
    if zero < want:
        sys.exit("expected at least %d zero channels in %s" % (want, name))
PY

/usr/bin/python3 - "$(accuracies "$OUT/dense.csv")" "$(accuracies "$OUT/pruned.csv")" <<'PY'
import sys
dense, pruned = (float(a.split()[-1]) for a in sys.argv[1:3])
print("dense %.2f%%  pruned %.2f%%  loss %.2f points" % (dense, pruned, dense - pruned))
PY
echo "outputs in $OUT ($(($(date +%s) - start)) s in all)"
