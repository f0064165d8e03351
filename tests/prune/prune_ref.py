#!/usr/bin/python3
"""tests/prune/prune_ref.py — the NumPy oracle of `lathe prune` (ir/prune.c, docs/compression.md).

  prune_ref.py make CKPT               write a checkpoint for tests/prune/model.lathe: weights
                                       drawn from few levels, so magnitudes tie often
  prune_ref.py check CKPT OUT SPEC...  OUT must be CKPT pruned as SPEC says, bit for bit

SPEC: magnitude S [global] | channels S l1|l2 | nofm N M, then the pruned param names.
Ties are pruned in flat-index order (a stable argsort), the count is round(S * size) with
halves to even (Python's round, as torch.nn.utils.prune). A dense weight [I, O] has its
output channels in columns (axis 1), a conv weight [O, C, kh, kw] in rows (axis 0); N:M
groups run along the other axis. Every tensor not named must be unchanged.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
import safetensors_py  # noqa: E402

SHAPES = {"c1.w": (6, 2, 3, 3), "c1.b": (6,), "d1.w": (24, 8), "d1.b": (8,),
          "out.w": (8, 4), "out.b": (4,)}


def make(path):
    rng = np.random.default_rng(20)
    levels = np.float32([-0.5, -0.25, -0.125, 0.125, 0.25, 0.5, 0.0625, -0.0625, 1.0])
    t = {k: rng.choice(levels, size=s).astype(np.float32) for k, s in SHAPES.items()}
    safetensors_py.save(path, t)


def as_matrix(name, w):
    """(matrix view, axis of the output channels)"""
    if w.ndim == 4:
        return w.reshape(w.shape[0], -1), 0
    return w, 1


def magnitude_masks(ws, s):
    flat = np.concatenate([np.abs(w).ravel().astype(np.float64) for w in ws])
    k = round(s * flat.size)
    keep = np.ones(flat.size, dtype=bool)
    keep[np.argsort(flat, kind="stable")[:k]] = False
    out, at = [], 0
    for w in ws:
        out.append(keep[at:at + w.size].reshape(w.shape))
        at += w.size
    return out


def channel_mask(name, w, s, norm):
    m, axis = as_matrix(name, w)
    a = np.abs(m.astype(np.float64)) if norm == "l1" else m.astype(np.float64) ** 2
    score = a.sum(axis=0 if axis == 1 else 1)
    k = round(s * score.size)
    keep = np.ones(score.size, dtype=bool)
    keep[np.argsort(score, kind="stable")[:k]] = False
    mask = np.broadcast_to(keep[None, :] if axis == 1 else keep[:, None], m.shape)
    return mask.reshape(w.shape)


def nofm_mask(name, w, n, mm):
    m, axis = as_matrix(name, w)
    g = m.T if axis == 1 else m  # rows = channels, groups along the row
    a = np.abs(g.astype(np.float64)).reshape(g.shape[0], -1, mm)
    # keep the n largest of each group; ties: the lower index wins (stable sort of -|w|)
    order = np.argsort(-a, axis=2, kind="stable")
    keep = np.zeros_like(a, dtype=bool)
    np.put_along_axis(keep, order[:, :, :n], True, axis=2)
    keep = keep.reshape(g.shape)
    return (keep.T if axis == 1 else keep).reshape(w.shape)


def check(ckpt, out, spec):
    src, got = safetensors_py.load(ckpt), safetensors_py.load(out)
    kind = spec[0]
    if kind == "magnitude":
        s, glob = float(spec[1]), len(spec) > 2 and spec[2] == "global"
        names = spec[3:] if glob else spec[2:]
        if glob:
            masks = dict(zip(names, magnitude_masks([src[n] for n in names], s)))
        else:
            masks = {n: magnitude_masks([src[n]], s)[0] for n in names}
    elif kind == "channels":
        s, norm, names = float(spec[1]), spec[2], spec[3:]
        masks = {n: channel_mask(n, src[n], s, norm) for n in names}
    else:
        n_, m_, names = int(spec[1]), int(spec[2]), spec[3:]
        masks = {n: nofm_mask(n, src[n], n_, m_) for n in names}
    bad = 0
    for name, w in src.items():
        want = np.where(masks[name], w, np.float32(0)) if name in masks else w
        if name not in got or got[name].dtype != want.dtype or not np.array_equal(got[name], want):
            print(f"FAIL {' '.join(spec)}: {name} differs from the oracle")
            bad += 1
    print(f"{'FAIL' if bad else 'ok'} {' '.join(spec)}")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4:]))
