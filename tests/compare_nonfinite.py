#!/usr/bin/python3
"""compare_nonfinite.py GOT.npy WANT.npy [RTOL]: fail unless GOT has NaN exactly where WANT has,
+inf and -inf exactly where WANT has them, and its finite values within RTOL of WANT's (relative
to the largest finite |WANT|, as compare_npy.py). For the sparse kernels on inputs holding an
infinity or a NaN (tests/sparse_bake.sh), which must propagate as the dense kernels'.
"""
import sys

import numpy as np

got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
rtol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
if got.shape != want.shape or got.dtype != want.dtype:
    sys.exit(f"FAIL {sys.argv[1]}: {got.dtype}{list(got.shape)} vs {want.dtype}{list(want.shape)}")
for name, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
    wrong = np.argwhere(test(got) != test(want))
    if len(wrong):
        i = tuple(wrong[0])
        sys.exit(f"FAIL {sys.argv[1]}: {len(wrong)} elements differ in being {name}, first at "
                 f"{list(i)}: got {got[i]}, want {want[i]}")
finite = np.isfinite(want)
w, g = want[finite].astype(np.float64), got[finite].astype(np.float64)
scale = max(float(np.max(np.abs(w))) if w.size else 0.0, 1e-30)
err = float(np.max(np.abs(g - w))) / scale if w.size else 0.0
status = "ok" if err <= rtol else "FAIL"
print(f"{status} {sys.argv[1]} vs {sys.argv[2]}: {int((~finite).sum())} non-finite in place, "
      f"finite relative error {err:.3g} (tolerance {rtol:g})")
sys.exit(0 if err <= rtol else 1)
