#!/usr/bin/env bash
# Bring your own data into an ONNX model: two untrained PyTorch exports
# (tests/data/export_onnx.py) train straight from the .onnx with --loss and --optimizer on
# the user's files: a 3-class MLP (dynamic batch fixed with -D batch=32) from .npy files to
# >= 90% test accuracy, with eval's report equal to the --test report and predict writing
# every sample; a regressor from CSV (features by position, target by name) to test
# R² >= 0.95. Both options appear in `train --help` and `eval --help`, and a .onnx trained or
# evaluated without --loss is a usage error that says which losses there are.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 "$ROOT/tests/data/make_data.py" "$TMP"
/usr/bin/python3 "$ROOT/tests/data/export_onnx.py" "$TMP" 2> /dev/null

for cmd in train eval; do
  "$LATHE" $cmd --help > "$TMP/help.txt"
  grep -qE "^  --loss L, --optimizer O +for a .onnx FILE" "$TMP/help.txt" \
    || { echo "--loss/--optimizer missing from $cmd --help"; exit 1; }
done

C=("$TMP/tabular.onnx" -D batch=32 --loss cross_entropy)
"$LATHE" train "${C[@]}" --optimizer "adam(lr = 1e-2)" \
  --data "$TMP/cls/x.npy,$TMP/cls/label.npy" --val-split 0.1 --test "$TMP/cls_test" \
  --epochs 4 --seed 3 --checkpoint "$TMP/c.safetensors" > "$TMP/c.txt" 2> "$TMP/c.err"
grep -E "^epoch [0-9]/4: train loss [0-9.]+  val loss [0-9.]+  val accuracy" "$TMP/c.err"
"$LATHE" eval "${C[@]}" -w "$TMP/c.safetensors" --data "$TMP/cls_test" > "$TMP/eval.txt"
"$LATHE" predict "${C[@]}" -w "$TMP/c.safetensors" --data "$TMP/cls_test/x.npy" \
  --out "$TMP/p.npy" 2> /dev/null
/usr/bin/python3 - "$TMP" <<'PY'
import re, sys
import numpy as np
d = sys.argv[1]
out, ev = open(f"{d}/c.txt").read(), open(f"{d}/eval.txt").read()
acc = float(re.search(r"test loss [\d.]+  test accuracy ([\d.]+)%", out).group(1))
assert acc >= 90.0, f"ONNX MLP test accuracy {acc}% < 90%"
report = out[out.index("test loss"):]
assert ev == report, f"eval's report differs from train --test's:\n{ev}\n---\n{report}"
p, y = np.load(f"{d}/p.npy"), np.load(f"{d}/cls_test/label.npy")
assert p.shape == (600, 3), p.shape
assert abs((p.argmax(1) == y).mean() * 100 - acc) < 0.01, "predict's logits disagree with eval"
print(f"ok: ONNX classifier from .npy, test accuracy {acc}%; eval and predict agree")
PY

R=("$TMP/regress.onnx" --loss mse)
"$LATHE" train "${R[@]}" --optimizer "adam(lr = 2e-2)" --data "$TMP/reg.csv" --features 0:8 \
  --target y --val-split 0.1 --test "$TMP/reg_test.csv" --epochs 6 --seed 5 \
  --checkpoint "$TMP/r.safetensors" > "$TMP/r.txt" 2> /dev/null
"$LATHE" eval "${R[@]}" -w "$TMP/r.safetensors" --data "$TMP/reg_test.csv" --target y \
  > "$TMP/reval.txt"
cat "$TMP/reval.txt"
/usr/bin/python3 - "$TMP" <<'PY'
import re, sys
d = sys.argv[1]
line = open(f"{d}/reval.txt").read()
r2 = float(re.search(r"r2 ([\d.-]+)", line).group(1))
assert r2 >= 0.95, f"ONNX regressor test R2 {r2} < 0.95"
assert line.strip() in open(f"{d}/r.txt").read(), "eval differs from train --test"
print(f"ok: ONNX regressor from CSV, test R2 {r2}")
PY

for cmd in train eval; do
  opt=(--checkpoint "$TMP/none.safetensors")
  [[ $cmd == eval ]] && opt=(-w "$TMP/c.safetensors" --metrics-json "$TMP/none.safetensors")
  if "$LATHE" $cmd "$TMP/tabular.onnx" -D batch=32 --data "$TMP/cls" "${opt[@]}" \
    > "$TMP/bad.txt" 2>&1; then
    echo "$cmd accepted a .onnx without --loss"; exit 1
  fi
  grep -F "is an ONNX model, which has no loss: give --loss cross_entropy" "$TMP/bad.txt" \
    > /dev/null || { cat "$TMP/bad.txt"; exit 1; }
done
[[ ! -e "$TMP/none.safetensors" ]]
echo "ok: --loss/--optimizer in train and eval --help; a .onnx without --loss is a usage error"
