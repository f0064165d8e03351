#!/usr/bin/env python3
"""tests/data/make_data.py OUT_DIR — the synthetic datasets of the data tests, from a fixed seed.

OUT_DIR/cls/{x,label}.npy      2000 x 20 f32 features, 3 separable classes (Gaussian blobs)
OUT_DIR/cls_test/{x,label}.npy 600 more samples of the same distribution
OUT_DIR/cls.npz                the training arrays as one .npz archive (compressed)
OUT_DIR/reg.csv, reg_test.csv  8 features f0..f7 and a target y = w.x + 0.5 + noise (sd 0.1);
                               reg.csv also has a string column 'note' (not a feature)
OUT_DIR/names.csv              4 numeric features and a string label (cat/dog/eel) per row
OUT_DIR/ml/{x,tags}.npy        1200 x 12 f32 features and 5 yes/no labels (f32 0/1) per row,
OUT_DIR/ml_test/{x,tags}.npy   label j = [w_j.x + b_j + noise > 0]: from common (b 1.5) to
                               rare (b -2.5); 400 test rows (an own seed: the arrays above
                               stay as they were)
"""
import os
import sys

import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(1234)
centers = rng.normal(0, 1.0, size=(3, 20)).astype(np.float32) * 0.5


def blobs(n):
    y = rng.integers(0, 3, size=n).astype(np.int32)
    x = (centers[y] + rng.normal(0, 1.0, size=(n, 20))).astype(np.float32)
    return x, y


for name, n in (("cls", 2000), ("cls_test", 600)):
    os.makedirs(f"{out}/{name}", exist_ok=True)
    x, y = blobs(n)
    np.save(f"{out}/{name}/x.npy", x)
    np.save(f"{out}/{name}/label.npy", y)
    if name == "cls":
        np.savez_compressed(f"{out}/cls.npz", x=x, label=y)

w = rng.normal(0, 1, size=8)


def regression(path, n, note):
    x = rng.normal(0, 1, size=(n, 8))
    y = x @ w + 0.5 + rng.normal(0, 0.1, size=n)
    with open(path, "w") as f:
        f.write(",".join(f"f{i}" for i in range(8)) + (",note" if note else "") + ",y\n")
        for i in range(n):
            extra = ',"a, quoted ""note"""' if note else ""
            f.write(",".join(f"{v:.6f}" for v in x[i]) + extra + f",{y[i]:.6f}\n")


regression(f"{out}/reg.csv", 1600, True)
regression(f"{out}/reg_test.csv", 400, False)

with open(f"{out}/names.csv", "w") as f:
    f.write("a,b,c,d,animal\n")
    for i in range(64):
        k = i % 3
        f.write(",".join(str(k + 0.1 * j) for j in range(4)) + "," + ["cat", "dog", "eel"][k] + "\n")

ml_rng = np.random.default_rng(4321)
ml_w = ml_rng.normal(0, 1, size=(12, 5))
ml_b = np.array([1.5, 0.5, 0.0, -1.0, -2.5])
for name, n in (("ml", 1200), ("ml_test", 400)):
    os.makedirs(f"{out}/{name}", exist_ok=True)
    x = ml_rng.normal(0, 1, size=(n, 12))
    tags = (x @ ml_w + ml_b + ml_rng.normal(0, 0.5, size=(n, 5)) > 0).astype(np.float32)
    np.save(f"{out}/{name}/x.npy", x.astype(np.float32))
    np.save(f"{out}/{name}/tags.npy", tags)
