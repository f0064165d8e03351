#!/usr/bin/env bash
# `lathe eval` metrics equal scikit-learn's to 1e-6 on the same predictions: a classifier's
# accuracy, per-class precision/recall/F1/support, macro and weighted averages and confusion
# matrix (classification_report, confusion_matrix), and a regressor's MSE, RMSE, MAE and R²;
# the predictions come from `lathe predict` with the same weights. Also: the confusion matrix
# SVG of `eval --plot`, and eval's printed table agreeing with its JSON.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 "$ROOT/tests/data/make_data.py" "$TMP"
C=$ROOT/tests/data/tabular.lathe
R=$ROOT/tests/data/regress.lathe

# one epoch only: an imperfect classifier, so every class has errors to count
"$LATHE" train "$C" --data "$TMP/cls" --epochs 1 --limit 320 --seed 9 \
  --checkpoint "$TMP/c.safetensors" > /dev/null 2>&1
"$LATHE" eval "$C" -w "$TMP/c.safetensors" --data "$TMP/cls_test" \
  --metrics-json "$TMP/c.json" --plot "$TMP/cm.svg" > "$TMP/c.txt"
"$LATHE" predict "$C" -w "$TMP/c.safetensors" --data "$TMP/cls_test" --out "$TMP/c.npy" 2> /dev/null
grep -q "<svg" "$TMP/cm.svg"
"$LATHE" train "$R" --data "$TMP/reg.csv" --features 0:8 --target y --epochs 1 --limit 160 \
  --seed 9 --checkpoint "$TMP/r.safetensors" > /dev/null 2>&1
"$LATHE" eval "$R" -w "$TMP/r.safetensors" --data "$TMP/reg_test.csv" --target y \
  --metrics-json "$TMP/r.json" > /dev/null
"$LATHE" predict "$R" -w "$TMP/r.safetensors" --data "$TMP/reg_test.csv" --target y \
  --out "$TMP/r.npy" 2> /dev/null

/usr/bin/python3 - "$TMP" <<'PY'
import csv, json, sys
import numpy as np
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix,
                             mean_absolute_error, mean_squared_error, r2_score)
d = sys.argv[1]
def close(a, b, what):
    assert abs(a - b) <= 1e-6, f"{what}: lathe {a} vs sklearn {b}"

m = json.load(open(f"{d}/c.json"))
y = np.load(f"{d}/cls_test/label.npy"); p = np.load(f"{d}/c.npy").argmax(1)
rep = classification_report(y, p, output_dict=True, zero_division=0)
close(m["accuracy"], accuracy_score(y, p), "accuracy")
for k, prec, rec, f1, sup in m["classes"]:
    r = rep[str(k)]
    close(prec, r["precision"], f"precision {k}"); close(rec, r["recall"], f"recall {k}")
    close(f1, r["f1-score"], f"f1 {k}"); assert sup == r["support"]
close(m["precision"], rep["macro avg"]["precision"], "macro precision")
close(m["recall"], rep["macro avg"]["recall"], "macro recall")
close(m["f1"], rep["macro avg"]["f1-score"], "macro f1")
for i, key in enumerate(("precision", "recall", "f1-score")):
    close(m["weighted"][i], rep["weighted avg"][key], f"weighted {key}")
cm = confusion_matrix(y, p)
assert (np.array(m["confusion"]).reshape(cm.shape) == cm).all(), (m["confusion"], cm)
text = open(f"{d}/c.txt").read()
for row, label in zip(cm, range(len(cm))):  # the printed matrix too
    assert (f"{label:>12}" + "".join(f" {v:8d}" for v in row)) in text, text
print(f"ok: classification report and confusion matrix = sklearn (accuracy {m['accuracy']:.4f})")

m = json.load(open(f"{d}/r.json"))
rows = list(csv.DictReader(open(f"{d}/reg_test.csv")))
t = np.array([float(r["y"]) for r in rows], np.float32).astype(np.float64)
q = np.load(f"{d}/r.npy")[:, 0].astype(np.float64)
close(m["mse"], mean_squared_error(t, q), "mse")
close(m["rmse"], mean_squared_error(t, q, squared=False), "rmse")
close(m["mae"], mean_absolute_error(t, q), "mae")
close(m["r2"], r2_score(t, q), "r2")
print(f"ok: regression metrics = sklearn (r2 {m['r2']:.6f})")
PY
