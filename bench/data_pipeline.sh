#!/usr/bin/env bash
# bench/data_pipeline.sh LATHE [EPOCHS] — the data pipeline's share of an MLP training epoch
# on Fashion-MNIST stored as .npy (issue #16 asks for <= 5%).
#
# Exports the 60000 training images (f32 [28, 28] each, scaled to [0, 1]) and labels to .npy
# once (scripts/idx-to-npy.py into out/fmnist-npy/, memory-mapped by the reader), trains
# examples/mlp.lathe (f32 [784] per sample: the same 784 values) on them with --log, and
# prints, per epoch, the epoch's training time, the time spent gathering batches (the data
# pipeline: index lookups, row copies out of the mapped file, dtype conversion) and its
# share. Measurement only: nothing is asserted. Needs a quiet machine for meaningful numbers.
set -euo pipefail
LATHE=${1:?usage: bench/data_pipeline.sh LATHE [EPOCHS]}
EPOCHS=${2:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/out/fmnist-npy
# the export of scripts/idx-to-npy.py: the same f32 pixels as --data fashion-mnist
[[ -f $OUT/train/x.npy ]] || /usr/bin/python3 "$ROOT/scripts/idx-to-npy.py" "$OUT"
"$LATHE" train "$ROOT/examples/mlp.lathe" --data "$OUT/train" --epochs "$EPOCHS" \
  --log "$OUT/log.csv" > /dev/null 2>&1
/usr/bin/python3 - "$OUT/log.csv" <<'PY'
import csv, sys
print("| epoch | epoch seconds | data pipeline seconds | data share |")
print("|---|---|---|---|")
for r in csv.DictReader(open(sys.argv[1])):
    s, d = float(r["seconds"]), float(r["data_seconds"])
    print(f"| {r['epoch']} | {s:.3f} | {d:.4f} | {100 * d / s:.2f}% |")
PY
