#!/usr/bin/python3
"""compare_safetensors.py GOT WANT RTOL: every tensor of WANT must be in GOT with the same
dtype and shape and a relative error (max |got-want| / max |want|) of at most RTOL."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
import safetensors_py  # noqa: E402

got, want = safetensors_py.load(sys.argv[1]), safetensors_py.load(sys.argv[2])
rtol = float(sys.argv[3])
bad = 0
for name in sorted(want):
    if name not in got:
        print(f"FAIL {name}: missing")
        bad += 1
        continue
    g, w = got[name].astype(np.float64), want[name].astype(np.float64)
    if g.shape != w.shape:
        print(f"FAIL {name}: shape {g.shape} vs {w.shape}")
        bad += 1
        continue
    err = float(np.max(np.abs(g - w))) / max(float(np.max(np.abs(w))), 1e-30)
    print(f"{'ok' if err <= rtol else 'FAIL'} {name}: relative error {err:.3g}")
    bad += err > rtol
sys.exit(1 if bad else 0)
