#!/usr/bin/env bash
# Gradients of examples/mlp.lathe's loss from the compiled backward pass (`lathe grad`)
# equal PyTorch autograd on the same weights and batch (tests/fixtures/make_mlp_fixture.py),
# relative error <= 1e-4 in f32; the loss matches too.
set -euo pipefail
LATHE=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/mlp
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$LATHE" grad "$ROOT/examples/mlp.lathe" --weights "$FIX/weights.safetensors" \
  --input x="$FIX/x.npy" --input label="$FIX/label.npy" --out "$TMP" | tee "$TMP/loss.txt"
/usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$TMP/grads.safetensors" \
  "$FIX/grads.safetensors" 1e-4
/usr/bin/python3 - "$TMP/loss.txt" "$FIX/loss.npy" <<'PY'
import sys, numpy as np
got = float(open(sys.argv[1]).read().split()[1])
want = float(np.load(sys.argv[2]))
err = abs(got - want) / abs(want)
print(f"loss {got:.7g} vs PyTorch {want:.7g}: relative error {err:.2g}")
sys.exit(0 if err <= 1e-5 else 1)
PY
