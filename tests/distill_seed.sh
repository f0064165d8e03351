#!/usr/bin/env bash
# tests/distill_seed.sh — `lathe train --seed` reaches a distilled student as it reaches the same
# model trained alone (issue #20's experiment compares the two seed by seed): the student's
# init and the data order depend on the seed only, not on the `distill` statement.
#   1. alpha 0 (the loss is the hard loss alone; the teacher is compiled in but weighs nothing)
#      trains exactly as the file without its `distill` line, for seeds 1 and 2: same init,
#      same shuffle, same updates;
#   2. seeds 1 and 2 give different params, alone and distilled (alpha 0.9), and a seed run
#      twice gives the same params (the distilled students of scripts/distill_experiment.sh
#      at 5 epochs ended within 0.02 points of each other over three seeds; this says the
#      seeds did differ).
set -euo pipefail
LATHE=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/distill
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
CMP=$ROOT/tests/compare_safetensors.py

mkdir -p "$TMP/data"
/usr/bin/python3 - "$FIX" "$TMP/data" <<'PY'
import sys, numpy as np
x, label = np.load(sys.argv[1] + "/x.npy"), np.load(sys.argv[1] + "/label.npy")
rng = np.random.default_rng(7)  # 40 distinct samples, 5 batches of 8: the order matters
x = np.tile(x, (5, 1)) + rng.normal(0, 0.1, (40, 12))
np.save(sys.argv[2] + "/x.npy", x.astype(np.float32))
np.save(sys.argv[2] + "/label.npy", np.tile(label, 5))
PY
# the student with absolute teacher paths at alpha 0.9 and 0, and without its distill line
sed -e "s|\"teacher.lathe\"|\"$ROOT/tests/distill/teacher.lathe\"|" \
  -e "s|\"../fixtures/distill/teacher.safetensors\"|\"$FIX/teacher.safetensors\"|" \
  "$ROOT/tests/distill/student.lathe" >"$TMP/distilled.lathe"
sed -e 's/alpha 0\.9/alpha 0/' "$TMP/distilled.lathe" >"$TMP/alpha0.lathe"
sed -e '/^  distill /d' "$TMP/distilled.lathe" >"$TMP/alone.lathe"
grep -q 'alpha 0$' "$TMP/alpha0.lathe"
if grep -q '^  distill ' "$TMP/alone.lathe"; then echo "FAIL: alone.lathe distills" && exit 1; fi

train() { # NAME SEED OUT [args]
  local name=$1 seed=$2 out=$3
  shift 3
  "$LATHE" train "$TMP/$name.lathe" --lib "$ROOT/lib" --data "$TMP/data" --epochs 2 \
    --seed "$seed" --checkpoint "$TMP/$out.safetensors" "$@" >"$TMP/$out.txt" 2>&1 ||
    { cat "$TMP/$out.txt"; exit 1; }
}
differ() { # A B: some param differs
  if /usr/bin/python3 "$CMP" "$TMP/$1.safetensors" "$TMP/$2.safetensors" 0 >"$TMP/cmp.txt"; then
    echo "FAIL: $1 and $2 have the same params"
    cat "$TMP/cmp.txt"
    exit 1
  fi
  echo "ok: $1 and $2 differ"
}

for seed in 1 2; do
  train alone $seed alone$seed
  train alpha0 $seed alpha0_$seed
  train distilled $seed distilled$seed
  echo "seed $seed: alpha 0 against the student alone"
  /usr/bin/python3 "$CMP" "$TMP/alpha0_$seed.safetensors" "$TMP/alone$seed.safetensors" 0
done
differ alone1 alone2
differ distilled1 distilled2
differ alpha0_1 distilled1
train distilled 1 distilled1_again
echo "seed 1 twice:"
/usr/bin/python3 "$CMP" "$TMP/distilled1_again.safetensors" "$TMP/distilled1.safetensors" 0
