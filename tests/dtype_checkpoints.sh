#!/usr/bin/env bash
# A checkpoint serves both precisions: an f32 checkpoint loads into a model compiled with
# --dtype f64 (converted, same outputs to f32 rounding), and an f64 checkpoint into the f32
# model, compiled and under `lathe run --reference`; a file that is no checkpoint is still a
# clear error.
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
# the reference evaluator loads checkpoints by the same rule (converted, not refused)
"$LATHE" run "$M" --dtype f64 --reference --weights "$W32" --input x=x64.npy --out ref64 > /dev/null
"$LATHE" run "$M" --reference --weights "$W32" --input x=x.npy --out ref32 > /dev/null
echo "ok: an f32 checkpoint runs in the f64 model's reference evaluator"
"$LATHE" train "$M" --dtype f64 --data fashion-mnist --limit 640 --epochs 1 \
  --checkpoint w64.safetensors > /dev/null 2>&1
"$LATHE" run "$M" --weights w64.safetensors --input x=x.npy --out from64 > /dev/null
"$LATHE" run "$M" --dtype f64 --weights w64.safetensors --input x=x64.npy --out both64 > /dev/null
"$LATHE" run "$M" --reference --weights w64.safetensors --input x=x.npy --out ref_from64 > /dev/null
echo "ok: an f64 checkpoint runs in the f32 model (compiled and reference)"
/usr/bin/python3 - <<'PY'
import numpy as np
a, b = np.load('f32/probs.npy'), np.load('f64/probs.npy')
assert b.dtype == np.float64 and a.dtype == np.float32, (a.dtype, b.dtype)
err = np.max(np.abs(a - b)); assert err < 1e-5, err
c, d = np.load('from64/probs.npy'), np.load('both64/probs.npy')
err2 = np.max(np.abs(c - d)); assert err2 < 1e-5, err2
print(f"f32 vs f64 outputs: max abs difference {err:.2g} and {err2:.2g}")
r64, r32, rf = (np.load(f'{k}/probs.npy') for k in ('ref64', 'ref32', 'ref_from64'))
assert r64.dtype == np.float64 and r32.dtype == np.float32 and rf.dtype == np.float32
err3 = max(np.max(np.abs(r64 - b)), np.max(np.abs(r32 - a)), np.max(np.abs(rf - c)))
assert err3 < 1e-5, err3
print(f"--reference (f64 model, f32 checkpoint; f32 model, f64 checkpoint) vs compiled: {err3:.2g}")
PY
printf 'model m(x: f32[2, 3]) {\n  h = x * 1\n  output y = h\n}\n' > plain.lathe
status=0
"$LATHE" run "$M" --dtype f64 --weights plain.lathe --input x=x64.npy --out bad > out.txt 2>&1 ||
  status=$?
[ "$status" -eq 1 ] || { echo "FAIL: a non-checkpoint gave exit $status"; cat out.txt; exit 1; }
echo "ok: not a checkpoint: $(grep -o 'error: .*' out.txt | head -1)"
