#!/usr/bin/python3
"""compare_npy.py GOT.npy WANT.npy [RTOL]: fail unless max |got-want| / max(|want|, 1e-3)... .

The error measure is max_i |got_i - want_i| / max(max_i |want_i|, tiny): a relative error of
the whole tensor, which is what "relative error <= 1e-5" means for outputs near zero.
"""
import sys

import numpy as np

got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
rtol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
if got.shape != want.shape or got.dtype != want.dtype:
    sys.exit(f"FAIL {sys.argv[1]}: {got.dtype}{list(got.shape)} vs {want.dtype}{list(want.shape)}")
scale = max(float(np.max(np.abs(want.astype(np.float64)))) if want.size else 0.0, 1e-30)
err = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) / scale if want.size else 0.0
status = "ok" if err <= rtol else "FAIL"
print(f"{status} {sys.argv[1]} vs {sys.argv[2]}: relative error {err:.3g} (tolerance {rtol:g})")
sys.exit(0 if err <= rtol else 1)
