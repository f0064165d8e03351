#!/usr/bin/env bash
# Regression test for a miscompiled `where`: leaky_relu after a stride-2 conv
# (tests/fixtures/leaky_conv.lathe). `lathe grad` at every -O level, the generated C built by
# the loader's cc -O3 -march=native, must give PyTorch's loss and gradients
# (tests/fixtures/make_leaky_fixture.py, same weights) to 1e-4; `lathe run` its probabilities.
# Before codegen/lower_struct.c loaded both branches of `where` into locals, gcc 12 turned the
# loop nest into masked loads that skipped elements: the loss came out as ~1e36 or NaN.
set -euo pipefail
LATHE=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/leaky_conv
MODEL=$ROOT/tests/fixtures/leaky_conv.lathe
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for level in 0 1 2 3; do
  echo "-O$level:"
  "$LATHE" run -O$level "$MODEL" --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" \
    --out "$TMP/run$level" >/dev/null
  /usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/run$level/probs.npy" "$FIX/probs.npy" 1e-4
  "$LATHE" grad -O$level "$MODEL" --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" \
    --input label="$FIX/label.npy" --out "$TMP/grad$level" > "$TMP/loss$level.txt"
  /usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$TMP/grad$level/grads.safetensors" \
    "$FIX/grads.safetensors" 1e-4
  /usr/bin/python3 - "$TMP/loss$level.txt" "$FIX/loss.npy" <<'PY'
import sys, numpy as np
got = float(open(sys.argv[1]).read().split("loss")[-1].split()[0])
want = float(np.load(sys.argv[2]))
err = abs(got - want) / abs(want)
print(f"loss {got:.7g} vs PyTorch {want:.7g}: relative error {err:.2g}")
sys.exit(0 if err <= 1e-4 else 1)
PY
done
