#!/usr/bin/env bash
# Bring your own data, .npy and .npz: a 2000 x 20 tabular dataset with a 3-class label
# (tests/data/make_data.py, separable Gaussian blobs) trains with one `lathe train` command to
# >= 90% test accuracy, from a directory of .npy files and from an .npz; early stopping's
# decision is replayed on the recorded validation curve of the epoch log; `lathe predict`
# writes .npy and .csv predictions of the whole test set; bad inputs (a per-sample shape
# that does not fit the model input, a label outside [0, classes), arrays of different
# lengths) are clear errors that write nothing.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
M=$ROOT/tests/data/tabular.lathe
/usr/bin/python3 "$ROOT/tests/data/make_data.py" "$TMP"

"$LATHE" train "$M" --data "$TMP/cls" --val-split 0.1 --test "$TMP/cls_test" --epochs 30 \
  --seed 3 --early-stop 3 --log "$TMP/log.csv" --best "$TMP/best.safetensors" \
  --checkpoint "$TMP/last.safetensors" > "$TMP/out.txt" 2> "$TMP/err.txt"
cat "$TMP/out.txt"
grep -E "^epoch [0-9]+/30:" "$TMP/err.txt"
/usr/bin/python3 - "$TMP/out.txt" "$TMP/log.csv" "$TMP/err.txt" <<'PY'
import csv, re, sys
text = open(sys.argv[1]).read()
acc = float(re.search(r"test loss [\d.]+  test accuracy ([\d.]+)%", text).group(1))
assert acc >= 90.0, f"test accuracy {acc}% < 90%"
rows = list(csv.DictReader(open(sys.argv[2])))
losses = [float(r["val_loss"]) for r in rows]
# replay early stopping (patience 3, min_delta 0) on the recorded curve
best, best_epoch, wait, stop_at = None, 0, 0, None
for e, v in enumerate(losses, 1):
    if best is None or best - v > 0:
        best, best_epoch, wait = v, e, 0
    else:
        wait += 1
    if wait >= 3:
        stop_at = e
        break
assert stop_at == len(losses) or (stop_at is None and len(losses) == 30), (stop_at, losses)
err = open(sys.argv[3]).read()
if stop_at is not None:
    m = re.search(r"early stop after epoch (\d+): restored the weights of epoch (\d+)", err)
    assert m and int(m.group(1)) == stop_at and int(m.group(2)) == best_epoch, err
print(f"ok: test accuracy {acc}%, early stop at {stop_at} (best {best_epoch}) as replayed")
PY

# the restored weights are the best epoch's: eval of --best equals the final test report
"$LATHE" eval "$M" -w "$TMP/best.safetensors" --data "$TMP/cls_test" > "$TMP/eval.txt"
grep -F "$(head -1 "$TMP/eval.txt")" "$TMP/out.txt" > /dev/null

# .npz: the same arrays in one compressed archive
"$LATHE" train "$M" --data "$TMP/cls.npz" --val "$TMP/cls_test" --epochs 3 --seed 3 \
  > "$TMP/npz.txt" 2> /dev/null
/usr/bin/python3 -c "
import re,sys; a=float(re.search(r'val accuracy ([\d.]+)%', open('$TMP/npz.txt').read()).group(1))
assert a >= 90, a; print('ok: .npz val accuracy', a)"

# --lr, --batch (the const N = 32 becomes 64) and reduce-lr-on-plateau (patience 1): the log's
# lr_scale falls tenfold after each epoch that did not improve the validation loss
"$LATHE" train "$M" --data "$TMP/cls" --val "$TMP/cls_test" --epochs 5 --seed 3 --lr 0.05 \
  --batch 64 --reduce-lr-on-plateau 1 --log "$TMP/lr.csv" > /dev/null 2> "$TMP/lr.txt"
grep -q "epoch 1/5 .*/1984 " "$TMP/lr.txt" # 31 whole batches of 64 (62 of 32 would be 2000)
/usr/bin/python3 - "$TMP/lr.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
best, scale = None, 1.0
for r in rows:
    assert abs(float(r["lr_scale"]) - scale) < 1e-12, (r, scale)
    v = float(r["val_loss"])
    if best is None or v < best: best = v
    else: scale *= 0.1
print("ok: --lr/--batch, learning rate reduced on plateau as replayed:",
      [r["lr_scale"] for r in rows])
PY

# predict: every test sample, .npy probabilities and .csv labels
"$LATHE" predict "$M" -w "$TMP/best.safetensors" --data "$TMP/cls_test/x.npy" --out "$TMP/p.npy"
"$LATHE" predict "$M" -w "$TMP/best.safetensors" --data "$TMP/cls_test/x.npy" --out "$TMP/p.csv"
/usr/bin/python3 - "$TMP" <<'PY'
import csv, sys
import numpy as np
d = sys.argv[1]
p = np.load(f"{d}/p.npy"); y = np.load(f"{d}/cls_test/label.npy")
assert p.shape == (600, 3), p.shape
assert np.allclose(p.sum(1), 1, atol=1e-5)
rows = list(csv.reader(open(f"{d}/p.csv")))
assert rows[0] == ["label", "p0", "p1", "p2"] and len(rows) == 601, rows[:2]
labels = np.array([int(r[0]) for r in rows[1:]])
assert (labels == p.argmax(1)).all()
print("ok: predict, accuracy", (labels == y).mean())
PY

# bad inputs: a clear message, exit 1, nothing written
expect_error() { # WANT, then the command
  local want=$1
  shift
  if "$@" > "$TMP/bad.txt" 2>&1; then echo "accepted: $*"; exit 1; fi
  grep -F -- "$want" "$TMP/bad.txt" > /dev/null || { cat "$TMP/bad.txt"; exit 1; }
  [[ ! -e "$TMP/none.safetensors" && ! -e "$TMP/none.csv" ]] || { echo "wrote output"; exit 1; }
}
mkdir -p "$TMP/wide" "$TMP/badlabel" "$TMP/short"
/usr/bin/python3 - "$TMP" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
np.save(f"{d}/wide/x.npy", np.zeros((100, 19), np.float32))
np.save(f"{d}/wide/label.npy", np.zeros(100, np.int32))
np.save(f"{d}/badlabel/x.npy", np.zeros((100, 20), np.float32))
np.save(f"{d}/badlabel/label.npy", np.arange(100, dtype=np.int32) % 4)
np.save(f"{d}/short/x.npy", np.zeros((100, 20), np.float32))
np.save(f"{d}/short/label.npy", np.zeros(99, np.int32))
PY
common=(--epochs 1 --checkpoint "$TMP/none.safetensors" --log "$TMP/none.csv")
expect_error "input 'x' of entry 'train' takes f32[20] per sample (20 values) but array 'x' has f32[19]" \
  "$LATHE" train "$M" --data "$TMP/wide" "${common[@]}"
expect_error "has label 3; expected a class id in [0, 3)" \
  "$LATHE" train "$M" --data "$TMP/badlabel" --val-split 0.2 "${common[@]}"
expect_error "arrays of a dataset must have the same length" \
  "$LATHE" train "$M" --data "$TMP/short" "${common[@]}"
expect_error "not found" "$LATHE" train "$M" --data "$TMP/nothing.npy" "${common[@]}"
echo "ok: bad inputs rejected with clear errors, nothing written"

# Fashion-MNIST exported to .npy (x [784] f32 per sample, label i32) trains exactly as the IDX
# path: the same shuffles, the same batches, the same test figures
/usr/bin/python3 - "$TMP/fm" <<'PY'
import gzip, os, sys
import numpy as np
src, out = "/usr/share/datasets/fashion-mnist", sys.argv[1]
os.makedirs(out)
def idx(name):
    p = f"{src}/{name}"
    return gzip.open(p + ".gz").read() if os.path.exists(p + ".gz") else open(p, "rb").read()
img = np.frombuffer(idx("train-images-idx3-ubyte"), np.uint8, offset=16)[: 1280 * 784]
lab = np.frombuffer(idx("train-labels-idx1-ubyte"), np.uint8, offset=8)[:1280]
np.save(f"{out}/x.npy", (img.reshape(-1, 784) / np.float32(255)).astype(np.float32))
np.save(f"{out}/label.npy", lab.astype(np.int32))
PY
MLP=$ROOT/examples/mlp.lathe
"$LATHE" train "$MLP" --data "$TMP/fm" --val fashion-mnist --epochs 1 --seed 2 2> /dev/null \
  | sed 's/val /test /g' > "$TMP/fm_npy.txt"
"$LATHE" train "$MLP" --data fashion-mnist --limit 1280 --epochs 1 --seed 2 2> /dev/null \
  > "$TMP/fm_idx.txt"
cmp "$TMP/fm_npy.txt" "$TMP/fm_idx.txt"
echo "ok: Fashion-MNIST as .npy trains exactly as from IDX: $(cat "$TMP/fm_idx.txt")"
