#!/usr/bin/env bash
# Bring your own data, multi-label: 5 yes/no labels per row (tests/data/make_data.py, ml/ as
# x.npy and tags.npy f32 0/1) train a sigmoid MLP (tests/data/multilabel.lathe, binary
# cross-entropy) through `lathe train --task multilabel` with per-epoch validation figures;
# `lathe eval --task multilabel` reports per-label F1, macro F1 and exact-match accuracy equal
# to scikit-learn's f1_score and accuracy_score (to 1e-6) on the predictions `lathe predict`
# writes with the same weights (a probability > 0.5 is a yes); without --task the same model
# is a regressor; a non-0/1 target is an error naming the file.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 "$ROOT/tests/data/make_data.py" "$TMP"
M=$ROOT/tests/data/multilabel.lathe

"$LATHE" train "$M" --data "$TMP/ml" --val "$TMP/ml_test" --task multilabel --epochs 4 \
  --seed 1 --checkpoint "$TMP/w.safetensors" --log "$TMP/log.csv" > "$TMP/out.txt" \
  2> "$TMP/err.txt"
grep -E "^epoch [0-9]/4: train loss [0-9.]+  val loss [0-9.]+  val accuracy [0-9.]+%  val f1 " \
  "$TMP/err.txt"
grep -E "^val exact-match accuracy [0-9.]+%  val f1 [0-9.]+  val loss " "$TMP/out.txt"
"$LATHE" eval "$M" -w "$TMP/w.safetensors" --data "$TMP/ml_test" --task multilabel \
  --metrics-json "$TMP/m.json" > "$TMP/eval.txt"
cat "$TMP/eval.txt"
"$LATHE" predict "$M" -w "$TMP/w.safetensors" --data "$TMP/ml_test" --out "$TMP/p.npy" \
  2> /dev/null
/usr/bin/python3 - "$TMP" <<'PY'
import csv, json, re, sys
import numpy as np
from sklearn.metrics import accuracy_score, f1_score
d = sys.argv[1]
def close(a, b, what):
    assert abs(a - b) <= 1e-6, f"{what}: lathe {a} vs sklearn {b}"

m = json.load(open(f"{d}/m.json"))
y = np.load(f"{d}/ml_test/tags.npy").astype(int)
p = np.load(f"{d}/p.npy")
assert m["task"] == "multilabel" and p.shape == y.shape == (400, 5), (m["task"], p.shape)
assert 0 <= p.min() and p.max() <= 1, "sigmoid outputs are probabilities"
yp = (p > 0.5).astype(int)
per = f1_score(y, yp, average=None, zero_division=0)
assert len(m["label_f1"]) == 5, m
for j, (a, b) in enumerate(zip(m["label_f1"], per)):
    close(a, b, f"f1 of label {j}")
close(m["f1"], f1_score(y, yp, average="macro", zero_division=0), "macro f1")
close(m["accuracy"], accuracy_score(y, yp), "exact-match accuracy")
text = open(f"{d}/eval.txt").read()
for j, b in enumerate(per):  # the printed table, to its 4 decimals
    assert f"label {j} f1 {b:.4f}" in text, (j, b, text)
assert len(set(np.round(per, 4))) > 1, "labels of different difficulty, different F1s"
assert m["f1"] > 0.8, f"macro f1 {m['f1']} <= 0.8: the model did not learn"
log = list(csv.DictReader(open(f"{d}/log.csv")))
close(float(log[-1]["val_f1"]), m["f1"], "the last epoch's logged val_f1 = eval's")
print("ok: multi-label per-label F1", np.round(per, 4), "macro", round(m["f1"], 4),
      "exact-match", m["accuracy"], "= sklearn")
PY

# without --task, a float target of the output's shape is regression
"$LATHE" eval "$M" -w "$TMP/w.safetensors" --data "$TMP/ml_test" > "$TMP/reg.txt"
grep -qE "^test loss [0-9.]+  mse .* r2 " "$TMP/reg.txt"
echo "ok: the same model without --task reports regression metrics"

# a target that is not 0 or 1: an error naming the file, the sample and the label; no output
mkdir -p "$TMP/soft"
/usr/bin/python3 - "$TMP" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
x, t = np.load(f"{d}/ml/x.npy"), np.load(f"{d}/ml/tags.npy")
t[37, 2] = 0.7
np.save(f"{d}/soft/x.npy", x)
np.save(f"{d}/soft/tags.npy", t)
PY
if "$LATHE" train "$M" --data "$TMP/soft" --task multilabel --epochs 1 \
  --checkpoint "$TMP/none.safetensors" > "$TMP/bad.txt" 2>&1; then
  echo "accepted a 0.7 multi-label target"; exit 1
fi
grep -F "soft/tags.npy: sample 37 of 'tags' has 0.7 at label 2; expected 0 or 1" "$TMP/bad.txt" \
  > /dev/null || { cat "$TMP/bad.txt"; exit 1; }
[[ ! -e "$TMP/none.safetensors" ]] || { echo "wrote a checkpoint"; exit 1; }
echo "ok: a non-0/1 multi-label target is rejected naming file, sample and label"
