#!/usr/bin/env bash
# bench/data_pipeline.sh LATHE [EPOCHS] — the data pipeline's share of an MLP training epoch
# on Fashion-MNIST stored as .npy (issue #16 asks for <= 5%).
#
# Exports the 60000 training images (f32 [784] each, scaled to [0, 1]) and labels to .npy once
# (out/fmnist-npy/, memory-mapped by the reader), trains examples/mlp.lathe on them
# with --log, and prints, per epoch, the epoch's training time, the time spent gathering
# batches (the data pipeline: index lookups, row copies out of the mapped file, dtype
# conversion) and its share. Measurement only: nothing is asserted. Needs a quiet machine
# for meaningful numbers.
set -euo pipefail
LATHE=${1:?usage: bench/data_pipeline.sh LATHE [EPOCHS]}
EPOCHS=${2:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/out/fmnist-npy
mkdir -p "$OUT"
if [[ ! -f "$OUT/x.npy" ]]; then
  /usr/bin/python3 - "$OUT" <<'PY'
import gzip, os, sys
import numpy as np
src, out = "/usr/share/datasets/fashion-mnist", sys.argv[1]
def idx(name):
    path = f"{src}/{name}"
    data = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
    return data
img = np.frombuffer(idx("train-images-idx3-ubyte"), np.uint8, offset=16).reshape(-1, 784)
lab = np.frombuffer(idx("train-labels-idx1-ubyte"), np.uint8, offset=8)
np.save(f"{out}/x.npy", (img / 255.0).astype(np.float32))
np.save(f"{out}/label.npy", lab.astype(np.int32))
PY
fi
"$LATHE" train "$ROOT/examples/mlp.lathe" --data "$OUT" --epochs "$EPOCHS" \
  --log "$OUT/log.csv" > /dev/null 2>&1
/usr/bin/python3 - "$OUT/log.csv" <<'PY'
import csv, sys
print("| epoch | epoch seconds | data pipeline seconds | data share |")
print("|---|---|---|---|")
for r in csv.DictReader(open(sys.argv[1])):
    s, d = float(r["seconds"]), float(r["data_seconds"])
    print(f"| {r['epoch']} | {s:.3f} | {d:.4f} | {100 * d / s:.2f}% |")
PY
