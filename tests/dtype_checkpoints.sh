#!/usr/bin/env bash
# A checkpoint serves both precisions: an f32 checkpoint loads into a model compiled with
# --dtype f64 (converted, same outputs to f32 rounding), and an f64 checkpoint into the f32
# model; a file that is no checkpoint is still a clear error.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
M=$ROOT/examples/mlp.lathe
W32=$ROOT/tests/fixtures/mlp/weights.safetensors
/usr/bin/python3 -c "
import numpy as np
x = (np.arange(64 * 784) % 13 / 12).reshape(64, 784)
np.save('x.npy', x.astype(np.float32)); np.save('x64.npy', x)"

"$LATHE" run "$M" --weights "$W32" --input x=x.npy --out f32 > /dev/null
"$LATHE" run "$M" --dtype f64 --weights "$W32" --input x=x64.npy --out f64 > /dev/null
echo "ok: an f32 checkpoint runs in the f64 model"
"$LATHE" train "$M" --dtype f64 --data fashion-mnist --limit 640 --epochs 1 \
  --checkpoint w64.safetensors > /dev/null 2>&1
"$LATHE" run "$M" --weights w64.safetensors --input x=x.npy --out from64 > /dev/null
"$LATHE" run "$M" --dtype f64 --weights w64.safetensors --input x=x64.npy --out both64 > /dev/null
echo "ok: an f64 checkpoint runs in the f32 model"
/usr/bin/python3 - <<'PY'
import numpy as np
a, b = np.load('f32/probs.npy'), np.load('f64/probs.npy')
assert b.dtype == np.float64 and a.dtype == np.float32, (a.dtype, b.dtype)
err = np.max(np.abs(a - b)); assert err < 1e-5, err
c, d = np.load('from64/probs.npy'), np.load('both64/probs.npy')
err2 = np.max(np.abs(c - d)); assert err2 < 1e-5, err2
print(f"f32 vs f64 outputs: max abs difference {err:.2g} and {err2:.2g}")
PY
printf 'model m(x: f32[2, 3]) {\n  h = x * 1\n  output y = h\n}\n' > plain.lathe
status=0
"$LATHE" run "$M" --dtype f64 --weights plain.lathe --input x=x64.npy --out bad > out.txt 2>&1 ||
  status=$?
[ "$status" -eq 1 ] || { echo "FAIL: a non-checkpoint gave exit $status"; cat out.txt; exit 1; }
echo "ok: not a checkpoint: $(grep -o 'error: .*' out.txt | head -1)"
