#!/usr/bin/env bash
# A short training run of examples/cnn.lathe on a slice of Fashion-MNIST (2 epochs x 6400
# samples, 200 Adam steps through conv2d/max_pool2d and their gradients): the training loss
# must fall, the first epoch must beat chance, and test accuracy must clear 70%.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$LATHE" train "$ROOT/examples/cnn.lathe" --data fashion-mnist --epochs 2 --limit 6400 \
  --seed 3 2>&1 | tee "$TMP/log.txt"
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
