# tests/int8/oracle_check.bash — sourced by the int8 script tests that compare a model's
# outputs with the oracle's byte for byte (int8_ops.sh, int8_pool_add.sh); needs TMP set.
#   quiet CMD...            runs CMD, showing its output only when it fails
#   check DIR WHAT [WANT]   every WANT/NAME.npy (default $TMP/ref/expected) equals DIR/NAME.npy:
#                           dtype, shape and bytes
quiet() { "$@" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; echo "FAIL: $*" >&2; exit 1; }; }

check() {
  /usr/bin/python3 - "$1" "${3:-$TMP/ref/expected}" "$2" <<'PY'
import os, sys
import numpy as np
got_dir, want_dir, what = sys.argv[1:]
bad = []
for name in sorted(os.listdir(want_dir)):
    want, got = np.load(os.path.join(want_dir, name)), np.load(os.path.join(got_dir, name))
    if got.dtype != want.dtype or got.shape != want.shape or got.tobytes() != want.tobytes():
        bad.append(f"{name}: {got.dtype}{got.shape} vs {want.dtype}{want.shape}, "
                   f"{np.sum(got != want) if got.shape == want.shape else '?'} differ")
if bad:
    sys.exit(f"FAIL {what}: " + "; ".join(bad))
print(f"ok: {what}: {len(os.listdir(want_dir))} outputs equal the oracle byte for byte")
PY
}
