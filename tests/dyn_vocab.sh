#!/usr/bin/env bash
# The issue-22 builtins at a run-time batch (docs/dynamic-batch.md): tests/fixtures/vocab/
# vocab1d.lathe (conv1d layer, max_pool1d, avg_pool1d without padded counts, einsum over the
# batch letter, nearest and bilinear upsample, 1-D conv_transpose) compiled with
# `-D N=dynamic(max=8)` and run by `lathe run` at 3 and at 8 rows equals the -D N=3 / -D N=8
# builds bit for bit and the reference evaluator to 1e-5; 9 rows are refused.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
MODEL=$ROOT/tests/fixtures/vocab/vocab1d.lathe
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

/usr/bin/python3 - <<'PY'
import numpy as np
rng = np.random.default_rng(22)
for n in (3, 8, 9):
    np.save(f"x{n}.npy", rng.standard_normal((n, 4, 16)).astype(np.float32))
PY
for n in 3 8; do
  "$LATHE" run "$MODEL" -D 'N=dynamic(max=8)' -i x=x$n.npy -o dyn$n >/dev/null
  "$LATHE" run "$MODEL" -D 'N=dynamic(max=8)' -i x=x$n.npy -o ref$n --reference >/dev/null
  "$LATHE" run "$MODEL" -D N=$n -i x=x$n.npy -o fixed$n >/dev/null
done
/usr/bin/python3 - <<'PY'
import numpy as np
for n in (3, 8):
    for name in ("p", "a", "e", "near", "bil", "t"):
        d, r, f = (np.load(f"{k}{n}/{name}.npy") for k in ("dyn", "ref", "fixed"))
        assert d.shape[0] == n, (name, d.shape)
        assert np.array_equal(d, f), f"{name} at n={n}: dynamic != -D N={n}"
        err = np.abs(d - r).max() / max(1.0, np.abs(r).max())
        assert err < 1e-5, (name, n, err)
PY
if "$LATHE" run "$MODEL" -D 'N=dynamic(max=8)' -i x=x9.npy > err.txt 2>&1; then
  echo "FAIL: 9 rows accepted by a model bounded at 8"; exit 1
fi
echo "dyn_vocab: ok"
