#!/usr/bin/env bash
# Fashion-MNIST exported to .npy (scripts/idx-to-npy.py: x f32 [n, 28, 28] scaled as the IDX
# reader scales, label i32) trains examples/cnn.lathe for one full epoch (60000 images, seed
# 3) to the same test accuracy as `--data fashion-mnist`: the same numbers in the same order
# with the same seed give the same shuffles and batches, so the epoch logs (every metric at
# full precision, times aside) and the trained checkpoints must be identical, not merely
# close. A truncated IDX file is an error of the converter. ~1-2 minutes on 2 busy cores.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
CNN=$ROOT/examples/cnn.lathe

# the converter: a cut IDX file is an error naming it, and nothing is written
mkdir "$TMP/cut"
cp /usr/share/datasets/fashion-mnist/* "$TMP/cut/"
gunzip -c /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz > "$TMP/whole"
head -c 5000 "$TMP/whole" > "$TMP/cut/t10k-images-idx3-ubyte" # not in a pipe: pipefail, SIGPIPE
rm "$TMP/cut/t10k-images-idx3-ubyte.gz"
if /usr/bin/python3 "$ROOT/scripts/idx-to-npy.py" "$TMP/cutout" "$TMP/cut" 2> "$TMP/cut.err"; then
  echo "accepted a truncated IDX file"; exit 1
fi
grep -F "cut/t10k-images-idx3-ubyte: 5000 bytes, expected 7840016 for dims [10000, 28, 28]" \
  "$TMP/cut.err" > /dev/null || { cat "$TMP/cut.err"; exit 1; }
[[ ! -e "$TMP/cutout" ]] || { echo "idx-to-npy.py wrote output for a bad input"; exit 1; }

/usr/bin/python3 "$ROOT/scripts/idx-to-npy.py" "$TMP/fm"
"$LATHE" train "$CNN" --data fashion-mnist --epochs 1 --seed 3 --log "$TMP/idx.csv" \
  --checkpoint "$TMP/idx.safetensors" > "$TMP/idx.txt" 2> /dev/null
"$LATHE" train "$CNN" --data "$TMP/fm/train" --val "$TMP/fm/test" --epochs 1 --seed 3 \
  --log "$TMP/npy.csv" --checkpoint "$TMP/npy.safetensors" > "$TMP/npy.txt" 2> /dev/null
echo "IDX:  $(cat "$TMP/idx.txt")"
echo ".npy: $(cat "$TMP/npy.txt")"
/usr/bin/python3 - "$TMP" <<'PY'
import csv, sys
d = sys.argv[1]
idx, npy = (list(csv.DictReader(open(f"{d}/{k}.csv"))) for k in ("idx", "npy"))
assert len(idx) == len(npy) == 1, (idx, npy)
a, b = idx[0], npy[0]
for k in ("seconds", "data_seconds"):
    del a[k], b[k]
assert a == b, f"the epoch logs differ:\nIDX  {a}\n.npy {b}"
acc = float(a["val_accuracy"])
assert acc > 0.80, f"one CNN epoch on Fashion-MNIST reached only {acc:.2%} test accuracy"
print(f"ok: identical epoch logs, test accuracy {acc:.2%}, loss {float(a['val_loss']):.4f}")
PY
cmp "$TMP/idx.safetensors" "$TMP/npy.safetensors"
echo "ok: identical trained weights from IDX and from .npy"
