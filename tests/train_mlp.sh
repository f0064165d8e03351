#!/usr/bin/env bash
# A short training run of examples/mlp.lathe on a slice of Fashion-MNIST (2 x 9600 samples,
# 300 Adam steps): the loss must fall and test accuracy must clear 70%. Then resume: one
# epoch + --resume to epoch 2 must give bit-identical weights to two epochs straight.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
M=$ROOT/examples/mlp.lathe

"$LATHE" train "$M" --data fashion-mnist --epochs 2 --limit 9600 --seed 7 \
  --checkpoint "$TMP/two.safetensors" --plot "$TMP/curves.svg" 2>&1 | tee "$TMP/log.txt"
grep -q "<svg" "$TMP/curves.svg"
/usr/bin/python3 - "$TMP/log.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
epochs = re.findall(r"epoch (\d+)/2: train loss ([\d.]+)  test loss ([\d.]+)  test accuracy ([\d.]+)%", text)
assert len(epochs) == 2, text
l1, l2 = float(epochs[0][1]), float(epochs[1][1])
acc = float(epochs[1][3])
print(f"train loss {l1} -> {l2}, test accuracy {acc}%")
assert l2 < l1, "training loss did not fall"
assert l1 < 2.0, "first-epoch loss is no better than chance (ln 10 = 2.30)"
assert acc > 70.0, "test accuracy below 70%"
PY

"$LATHE" train "$M" --data fashion-mnist --epochs 1 --limit 9600 --seed 7 \
  --checkpoint "$TMP/one.safetensors" > /dev/null 2>&1
"$LATHE" train "$M" --data fashion-mnist --epochs 2 --limit 9600 --seed 7 \
  --resume "$TMP/one.safetensors" --checkpoint "$TMP/resumed.safetensors" > /dev/null 2>&1
cmp "$TMP/two.safetensors" "$TMP/resumed.safetensors"
echo "ok: resumed run is bit-identical to the uninterrupted one"

"$LATHE" eval "$M" --weights "$TMP/two.safetensors" --data fashion-mnist

# dataset errors are clear messages with exit status 1, not crashes
mkdir -p "$TMP/bad"
printf 'garbage' > "$TMP/bad/train-images-idx3-ubyte"
cp /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz "$TMP/bad/"
set +e
"$LATHE" train "$M" --data fashion-mnist="$TMP/bad" 2> "$TMP/err.txt"; rc=$?
set -e
cat "$TMP/err.txt"
[[ $rc -eq 1 ]] && grep -q "train-images-idx3-ubyte" "$TMP/err.txt"
set +e
"$LATHE" train "$M" --data fashion-mnist="$TMP/nowhere" 2> "$TMP/err.txt"; rc=$?
set -e
cat "$TMP/err.txt"
[[ $rc -eq 1 ]] && grep -q "not found" "$TMP/err.txt"
