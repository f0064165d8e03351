#!/usr/bin/env bash
# The "Bad input" list of issue 16, one case per item, through the CLI: each must exit 1 with
# an error naming the file (file:line and the column for CSV, the sample for arrays) and what
# was expected, and write nothing — no checkpoint, best checkpoint, log or plot from `train`,
# no predictions from `predict`, no metrics from `eval`. Also: a float label array of whole
# numbers is a valid class target (it binds to an i32 input and stratifies --val-split as
# the same ids in i32 would).
set -euo pipefail
LATHE=$(realpath "$1") # absolute: the test runs inside its temp dir
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
T=$ROOT/tests/data/tabular.lathe # x f32[32, 20], label i32[32], 3 classes
I=$ROOT/tests/data/tiny_cnn.lathe # x f32[8, 3, 16, 16], label i32[8]
cat > "$TMP/two.lathe" <<'EOF2'
import nn
const N = 2
model two(x: f32[N, 2], c: i32[N]) {
  logits = dense(x, 2)
  output probs = softmax(logits)
  loss = cross_entropy(logits, c)
}
train two { minimize loss  optimizer sgd(lr = 0.1) }
EOF2
C=$TMP/two.lathe
mkdir "$TMP/out" "$TMP/in"
/usr/bin/python3 - "$TMP/in" <<'PY'
import os, sys
import numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(5)
x = rng.normal(size=(64, 20)).astype(np.float32)
y = (np.arange(64) % 3).astype(np.int32)
def npy(name, **arrays):
    os.makedirs(f"{d}/{name}")
    for k, v in arrays.items():
        np.save(f"{d}/{name}/{k}.npy", v)
npy("good", x=x, label=y)
npy("short", x=x, label=y[:63])
npy("wide", x=x[:, :19], label=y)
npy("frac", x=x, label=y.astype(np.float32) + 0.5)
npy("whole", x=x, label=y.astype(np.float32))
npy("range", x=x, label=np.where(np.arange(64) == 41, 3, y).astype(np.int32))
xn, xi = x.copy(), x.copy()
xn[12, 5], xi[30, 0] = np.nan, -np.inf
npy("nan", x=xn, label=y)
npy("inf", x=xi, label=y)
npy("empty", x=x[:0], label=y[:0])
npy("few", x=x[:20], label=y[:20])
os.makedirs(f"{d}/nodata")
npy("trunc", x=x, label=y)
b = open(f"{d}/trunc/x.npy", "rb").read()
open(f"{d}/trunc/x.npy", "wb").write(b[:-40])
def csv(name, text):
    open(f"{d}/{name}.csv", "w").write(text)
csv("ragged", "a,b,c\n1,2,0\n3,4,1\n5,6\n")
csv("word", "a,b,c\n1,2,0\n3,four,1\n")
csv("cinf", "a,b,c\n1,2,0\n3,inf,1\n")
csv("header", "a,b,c\n")
csv("ok", "a,b,c\n1,2,0\n3,4,1\n5,6,1\n")
csv("neg", "a,b,c\n1,2,0\n3,4,-1\n")
for split in ("cutpng", "nulljpg"):
    for c in ("a", "b"):
        os.makedirs(f"{d}/{split}/{c}")
        for i in range(8):
            px = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
            Image.fromarray(px).save(f"{d}/{split}/{c}/{i}.png")
b = open(f"{d}/cutpng/a/3.png", "rb").read()
open(f"{d}/cutpng/a/3.png", "wb").write(b[: len(b) // 2])
open(f"{d}/nulljpg/b/9.jpg", "wb").close()
PY
cd "$TMP/in"
"$LATHE" train "$T" --data good --epochs 1 --checkpoint "$TMP/w.safetensors" > /dev/null 2>&1
"$LATHE" train "$C" --data ok.csv --epochs 1 --checkpoint "$TMP/w2.safetensors" > /dev/null 2>&1

O=$TMP/out
train_out=(--checkpoint "$O/c.safetensors" --best "$O/b.safetensors" --log "$O/log.csv"
  --plot "$O/p.svg")
n=0
expect() { # WANT, then the command: exit 1, WANT in its output, nothing in $O
  local want=$1 rc=0
  shift
  "$@" > "$TMP/msg.txt" 2>&1 || rc=$?
  if [[ $rc -ne 1 ]]; then echo "exit status $rc, expected 1: $*"; cat "$TMP/msg.txt"; exit 1; fi
  grep -F -- "$want" "$TMP/msg.txt" > /dev/null \
    || { echo "want: $want"; cat "$TMP/msg.txt"; exit 1; }
  if [[ -n $(ls -A "$O") ]]; then echo "wrote $(ls -A "$O"): $*"; exit 1; fi
  n=$((n + 1))
}
# a ragged or non-numeric CSV row
expect "ragged.csv:4: 2 fields, expected 3" "$LATHE" train "$C" --data ragged.csv "${train_out[@]}"
expect "word.csv:3: column 'b': expected a finite number, got 'four'" \
  "$LATHE" train "$C" --data word.csv "${train_out[@]}"
# a column that does not exist
expect "ok.csv: no column 'z' (--features)" \
  "$LATHE" train "$C" --data ok.csv --features a,z "${train_out[@]}"
expect "ok.csv:1: no column 'label' (--target) in the header" \
  "$LATHE" eval "$C" -w "$TMP/w2.safetensors" --data ok.csv --target label \
  --metrics-json "$O/m.json"
# arrays whose lengths differ
expect "short/label.npy has 63: arrays of a dataset must have the same length" \
  "$LATHE" train "$T" --data short "${train_out[@]}"
# a per-sample shape or a dtype that does not fit the input: which input, both shapes
W="input 'x' of entry 'train' takes f32[20] per sample (20 values) but array 'x' has f32[19]"
expect "wide/x.npy: $W (19 values)" \
  "$LATHE" train "$T" --data wide "${train_out[@]}"
expect "wide/x.npy: ${W/train/forward}" \
  "$LATHE" predict "$T" -w "$TMP/w.safetensors" --data wide/x.npy --out "$O/p.npy"
W="input 'label' of entry 'train' takes i32[] per sample (integers) but array 'label' has f32[]"
expect "frac/label.npy: $W with 0.5 at sample 0" \
  "$LATHE" train "$T" --data frac "${train_out[@]}"
# a label outside [0, classes), in the training set and in validation
expect "range/label.npy: sample 41 of 'label' has label 3; expected a class id in [0, 3)" \
  "$LATHE" train "$T" --data range "${train_out[@]}"
expect "range/label.npy: sample 41 of 'label' has label 3; expected a class id in [0, 3)" \
  "$LATHE" train "$T" --data good --val range "${train_out[@]}"
expect "neg.csv: sample 1 of 'c' has label -1; expected a class id in [0, 2)" \
  "$LATHE" eval "$C" -w "$TMP/w2.safetensors" --data neg.csv --metrics-json "$O/m.json"
# NaN or Inf in features
expect "nan/x.npy: sample 12 of 'x' has a NaN at position 5" \
  "$LATHE" train "$T" --data nan "${train_out[@]}"
expect "inf/x.npy: sample 30 of 'x' has an infinite value at position 0" \
  "$LATHE" predict "$T" -w "$TMP/w.safetensors" --data inf --out "$O/p.csv"
expect "cinf.csv:3: column 'b': expected a finite number, got 'inf'" \
  "$LATHE" train "$C" --data cinf.csv "${train_out[@]}"
# an unreadable or truncated file
expect "cutpng/a/3.png: corrupt or truncated PNG image" \
  "$LATHE" train "$I" --data cutpng "${train_out[@]}"
expect "nulljpg/b/9.jpg: corrupt or truncated JPEG image" \
  "$LATHE" train "$I" --data nulljpg "${train_out[@]}"
expect "trunc/x.npy: the shape [64, 20] of dtype f32 needs 5120 data bytes but there are 5080" \
  "$LATHE" train "$T" --data trunc "${train_out[@]}"
# an empty dataset or split
expect "header.csv: no data rows after the header" \
  "$LATHE" train "$C" --data header.csv "${train_out[@]}"
expect "empty/label.npy: dimension 0 of the shape is 0" \
  "$LATHE" train "$T" --data empty "${train_out[@]}"
expect "directory 'nodata' has no .npy files" \
  "$LATHE" train "$T" --data good --val nodata "${train_out[@]}"
expect "few: 20 training samples make no full batch of 32" \
  "$LATHE" train "$T" --data few --checkpoint "$O/c.safetensors" --log "$O/log.csv"
expect "few: 17 training samples make no full batch of 32" \
  "$LATHE" train "$T" --data few --val-split 0.1 "${train_out[@]}"
echo "ok: $n bad inputs, each a clear error naming the file, nothing written"

# whole floats as class ids: accepted, and the split is the one of the same ids in i32
mkdir ints
cp whole/x.npy ints/
/usr/bin/python3 -c "
import numpy as np; np.save('ints/label.npy', np.load('whole/label.npy').astype(np.int32))"
for d in whole ints; do
  "$LATHE" train "$T" --data $d --val-split 0.25 --epochs 1 --seed 4 --log "$TMP/$d.csv" \
    > /dev/null 2>&1
  cut -d, -f1-7 "$TMP/$d.csv" > "$TMP/$d.cut"
done
cmp "$TMP/whole.cut" "$TMP/ints.cut"
echo "ok: f32 whole-number labels train and split as i32 labels do"

# a learning rate that is not positive is a usage error (exit 2), not silently the model's
for lr in 0 -0.1 nan; do
  rc=0
  "$LATHE" train "$T" --data whole --epochs 1 --lr $lr > "$TMP/msg.txt" 2>&1 || rc=$?
  if [[ $rc -ne 2 ]] || ! grep -q -- "--lr and --batch must be positive" "$TMP/msg.txt"; then
    echo "--lr $lr: exit status $rc"; cat "$TMP/msg.txt"; exit 1
  fi
done
echo "ok: --lr 0, -0.1 and nan refused"
