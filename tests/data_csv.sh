#!/usr/bin/env bash
# Bring your own data, CSV: a regressor trained from a CSV (8 features chosen by position, a
# quoted string column left out, the target by name) reaches test R² >= 0.95 on a
# linear-plus-noise target (tests/data/make_data.py); string class labels map to ids in
# sorted order, saved beside the checkpoint as CKPT.classes and used by `predict --out csv`;
# malformed CSVs (a ragged row, a non-numeric or NaN feature, a missing column) are errors
# naming file:line and the column, and write nothing.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 "$ROOT/tests/data/make_data.py" "$TMP"
R=$ROOT/tests/data/regress.lathe

"$LATHE" train "$R" --data "$TMP/reg.csv" --features 0:8 --target y --val-split 0.1 \
  --test "$TMP/reg_test.csv" --epochs 8 --seed 5 --checkpoint "$TMP/reg.safetensors" \
  --log "$TMP/log.jsonl" > "$TMP/out.txt" 2> /dev/null
cat "$TMP/out.txt"
/usr/bin/python3 - "$TMP" <<'PY'
import json, re, sys
d = sys.argv[1]
r2 = float(re.search(r"test loss [\d.]+  mse \S+  rmse \S+  mae \S+  r2 ([\d.-]+)",
                     open(f"{d}/out.txt").read()).group(1))
assert r2 >= 0.95, f"test R2 {r2} < 0.95"
log = [json.loads(l) for l in open(f"{d}/log.jsonl")]
assert len(log) == 8 and all("val_r2" in e and "val_mse" in e for e in log), log[:1]
print(f"ok: CSV regressor test R2 {r2}; JSON-lines log of {len(log)} epochs")
PY

# string labels: cat/dog/eel → 0/1/2, the mapping beside the checkpoint, names in predict
cat > "$TMP/animals.lathe" <<'EOF2'
import nn
const N = 8
model animals(x: f32[N, 4], animal: i32[N]) {
  logits = dense(x, 3)
  output probs = softmax(logits)
  loss = cross_entropy(logits, animal)
}
train animals { minimize loss  optimizer adam(lr = 5e-2) }
EOF2
"$LATHE" train "$TMP/animals.lathe" --data "$TMP/names.csv" --epochs 30 \
  --checkpoint "$TMP/a.safetensors" > /dev/null 2>&1
printf 'cat\ndog\neel\n' | cmp - "$TMP/a.safetensors.classes"
"$LATHE" predict "$TMP/animals.lathe" -w "$TMP/a.safetensors" --data "$TMP/names.csv" \
  --out "$TMP/a.csv" 2> /dev/null
head -4 "$TMP/a.csv" | cut -d, -f1 | tr '\n' ' ' | grep -F "label cat dog eel" > /dev/null
echo "ok: string labels mapped, saved beside the checkpoint and named by predict"

# files with fewer classes (no cat), or no label column, keep training's ids and names: eval
# and --val number dog/eel as 1/2 from CKPT.classes and the training file (a file-local
# numbering would make them 0/1 and every prediction wrong); predict on features alone
# (4 columns: the model's 4 features, no target) names its labels from CKPT.classes
grep -v ",cat$" "$TMP/names.csv" > "$TMP/nocat.csv"
cut -d, -f1-4 "$TMP/nocat.csv" > "$TMP/features.csv"
"$LATHE" eval "$TMP/animals.lathe" -w "$TMP/a.safetensors" --data "$TMP/names.csv" \
  > "$TMP/all.txt"
"$LATHE" eval "$TMP/animals.lathe" -w "$TMP/a.safetensors" --data "$TMP/nocat.csv" \
  > "$TMP/nocat.txt"
grep -q "test accuracy 100.00%  (64 samples)" "$TMP/all.txt" || { cat "$TMP/all.txt"; exit 1; }
grep -q "test accuracy 100.00%  (42 samples)" "$TMP/nocat.txt" || { cat "$TMP/nocat.txt"; exit 1; }
"$LATHE" train "$TMP/animals.lathe" --data "$TMP/names.csv" --val "$TMP/nocat.csv" --epochs 30 \
  > "$TMP/val.txt" 2> /dev/null
grep -q "val accuracy 100.00%" "$TMP/val.txt" || { cat "$TMP/val.txt"; exit 1; }
"$LATHE" predict "$TMP/animals.lathe" -w "$TMP/a.safetensors" --data "$TMP/features.csv" \
  --out "$TMP/f.csv" 2> /dev/null
[[ $(tail -n +2 "$TMP/f.csv" | cut -d, -f1 | sort | uniq -c | tr -s ' ') == " 21 dog
 21 eel" ]] || { head "$TMP/f.csv"; exit 1; }
sed 's/,eel$/,fox/' "$TMP/nocat.csv" > "$TMP/fox.csv"
if "$LATHE" eval "$TMP/animals.lathe" -w "$TMP/a.safetensors" --data "$TMP/fox.csv" \
  > "$TMP/fox.txt" 2>&1; then echo "accepted an unknown class"; exit 1; fi
grep -qF "fox.csv: class 'fox' is not one of the 3 classes of $TMP/a.safetensors.classes" \
  "$TMP/fox.txt" || { cat "$TMP/fox.txt"; exit 1; }
echo "ok: a subset of the classes, or none, keeps training's ids and names"

expect_error() { # WANT, then the command
  local want=$1
  shift
  if "$@" > "$TMP/bad.txt" 2>&1; then echo "accepted: $*"; exit 1; fi
  grep -F -- "$want" "$TMP/bad.txt" > /dev/null || { cat "$TMP/bad.txt"; exit 1; }
  [[ ! -e "$TMP/none.safetensors" ]] || { echo "wrote a checkpoint"; exit 1; }
}
head -5 "$TMP/reg_test.csv" > "$TMP/ragged.csv"
echo "1,2,3" >> "$TMP/ragged.csv"
head -3 "$TMP/reg_test.csv" > "$TMP/word.csv"
echo "1,2,3,4,five,6,7,8,9" >> "$TMP/word.csv"
head -3 "$TMP/reg_test.csv" > "$TMP/nan.csv"
echo "1,2,3,4,nan,6,7,8,9" >> "$TMP/nan.csv"
c=(--epochs 1 --checkpoint "$TMP/none.safetensors")
expect_error "ragged.csv:6: 3 fields, expected 9" "$LATHE" train "$R" --data "$TMP/ragged.csv" "${c[@]}"
expect_error "word.csv:4: column 'f4': expected a finite number, got 'five'" \
  "$LATHE" train "$R" --data "$TMP/word.csv" "${c[@]}"
expect_error "nan.csv:4: column 'f4': expected a finite number, got 'nan'" \
  "$LATHE" train "$R" --data "$TMP/nan.csv" "${c[@]}"
expect_error "no column 'price' (--target)" \
  "$LATHE" train "$R" --data "$TMP/reg_test.csv" --target price "${c[@]}"
echo "ok: malformed CSVs rejected with file:line, nothing written"
