#!/usr/bin/env bash
# examples/transformer.lathe on the generated `reverse` task (16 tokens of a 16-word vocabulary,
# output = input reversed; chance is 6.25% per token): 2 epochs x 4096 sequences (256 Adam
# steps). Measured: 99.9-100% token accuracy after epoch 1 for seeds 1-4. The bar: the loss
# falls, epoch 2 clears 95% per-token test accuracy. Also checks the `sort` task binds and
# beats chance, and that bad --data specs are clear usage errors.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
M=$ROOT/examples/transformer.lathe

"$LATHE" train "$M" --data reverse --epochs 2 --limit 4096 --seed 5 2>&1 | tee "$TMP/log.txt"
"$LATHE" train "$M" --data sort=16,16 --epochs 1 --limit 2048 --seed 5 2>&1 | tee "$TMP/sort.txt"
/usr/bin/python3 - "$TMP/log.txt" "$TMP/sort.txt" <<'PY'
import re, sys
pat = r"epoch (\d+)/(\d+): train loss ([\d.]+)  test loss ([\d.]+)  test accuracy ([\d.]+)%"
epochs = re.findall(pat, open(sys.argv[1]).read())
assert len(epochs) == 2, epochs
l1, l2, acc = float(epochs[0][2]), float(epochs[1][2]), float(epochs[1][4])
print(f"reverse: train loss {l1} -> {l2}, token accuracy {acc}%")
assert l2 < l1, "training loss did not fall"
assert acc > 95.0, "reverse: token accuracy below 95%"
s = re.findall(pat, open(sys.argv[2]).read())
assert len(s) == 1, s
print(f"sort: token accuracy {s[0][4]}%")
assert float(s[0][4]) > 20.0, "sort: no better than chance (6.25%)"
PY

for bad in reverse=16 reverse=0,16 sort=16,1 reverse=16,16,x; do
  set +e
  "$LATHE" train "$M" --data "$bad" 2> "$TMP/err.txt"; rc=$?
  set -e
  cat "$TMP/err.txt"
  [[ $rc -eq 1 ]] && grep -q "LEN,VOCAB" "$TMP/err.txt"
done
# a task whose length does not match the model's input is a binding error, not a crash
set +e
"$LATHE" train "$M" --data reverse=8,16 2> "$TMP/err.txt"; rc=$?
set -e
cat "$TMP/err.txt"
[[ $rc -eq 1 ]] && grep -q "takes i32\[16\] per sample (16 values) but array 'x' has i32\[8\]" "$TMP/err.txt"
