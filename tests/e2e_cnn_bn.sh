#!/usr/bin/env bash
# Batch norm, avg/max pooling, conv_transpose2d and global_avg_pool against PyTorch
# (tests/fixtures/cnn_bn.lathe; fixture from tests/fixtures/make_cnn_fixture.py): `lathe run`
# (forward: eval mode, running statistics loaded from the weights) equals PyTorch's eval()
# output; `lathe grad` (train mode, batch statistics) equals PyTorch's train() loss and
# gradients; relative error <= 1e-4. A short training run updates the running statistics.
set -euo pipefail
LATHE=$1
ROOT=$2
export ROOT
FIX=$ROOT/tests/fixtures/cnn_bn
MODEL=$ROOT/tests/fixtures/cnn_bn.lathe
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$LATHE" compile "$MODEL" -o "$TMP/c"
for cc in gcc clang; do
  $cc -std=c99 -Wall -Wextra -Werror -O1 -c "$TMP/c/cnnbn.c" -o "$TMP/c/cnnbn-$cc.o"
done
"$LATHE" run "$MODEL" --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" \
  --out "$TMP/out"
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out/probs.npy" "$FIX/probs.npy" 1e-4

"$LATHE" grad "$MODEL" --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" \
  --input label="$FIX/label.npy" --out "$TMP/grad" | tee "$TMP/loss.txt"
/usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$TMP/grad/grads.safetensors" \
  "$FIX/grads.safetensors" 1e-4
/usr/bin/python3 - "$TMP/loss.txt" "$FIX/loss.npy" <<'PY'
import sys, numpy as np
got = float(open(sys.argv[1]).read().split()[1])
want = float(np.load(sys.argv[2]))
err = abs(got - want) / abs(want)
print(f"loss {got:.7g} vs PyTorch {want:.7g}: relative error {err:.2g}")
sys.exit(0 if err <= 1e-4 else 1)
PY
# biases followed by batch norm: zero gradient (PyTorch's is rounding noise, not in the fixture)
/usr/bin/python3 - "$TMP/grad/grads.safetensors" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ.get("ROOT", "."), "tests", "fixtures"))
import safetensors_py
got = safetensors_py.load(sys.argv[1])
for name in ("h1.b", "u.b", "h2.b"):
    m = float(abs(got[name]).max())
    print(f"{'ok' if m < 1e-5 else 'FAIL'} {name}: max |gradient| {m:.2g} (expected 0)")
    assert m < 1e-5
PY
