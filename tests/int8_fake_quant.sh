#!/usr/bin/env bash
# int8 (issue 19, docs/int8.md): fake_quant (tests/int8/fake_quant.lathe) against PyTorch's
# fake_quantize_per_tensor_affine / _per_channel_affine (tests/int8/fake_quant_torch.py, run
# here): the values (evaluator and compiled) and the straight-through gradient of lathe's
# compile-time backward pass (`lathe grad`) equal torch's bit for bit, per tensor, per channel
# and with a 4-bit range; the gradient is zero exactly where the clamp bites.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
quiet() { "$@" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; echo "FAIL: $*" >&2; exit 1; }; }
M=$ROOT/tests/int8/fake_quant.lathe
R=$TMP/ref
/usr/bin/python3 "$ROOT/tests/int8/fake_quant_torch.py" "$R"
IN=(--weights "$R/weights.safetensors" --input r1="$R/r1.npy" --input r2="$R/r2.npy"
  --input r3="$R/r3.npy" --input s="$R/s.npy" --input zp="$R/zp.npy")

# the forward entry takes only what the outputs need: the r's feed the loss alone
FWD=(--weights "$R/weights.safetensors" --input s="$R/s.npy" --input zp="$R/zp.npy")
quiet "$LATHE" run "$M" "${FWD[@]}" --out "$TMP/eval" --reference
quiet "$LATHE" run "$M" "${FWD[@]}" --out "$TMP/cc" --backend cc
quiet "$LATHE" grad "$M" "${IN[@]}" --out "$TMP/grad"
/usr/bin/python3 - "$TMP" "$R/expected" "$ROOT/tests/fixtures" <<'PY'
import sys
import numpy as np
tmp, want, fixtures = sys.argv[1:]
sys.path.insert(0, fixtures)
import safetensors_py
bad = []
def same(got, exp, what):
    if got.dtype != exp.dtype or got.shape != exp.shape or got.tobytes() != exp.tobytes():
        n = np.sum(got != exp) if got.shape == exp.shape else "?"
        bad.append(f"{what}: {n} elements differ")
for run in ("eval", "cc"):
    for y in ("yt", "yc", "y4"):
        same(np.load(f"{tmp}/{run}/{y}.npy"), np.load(f"{want}/{y}.npy"), f"{run} {y}")
grad = safetensors_py.load(f"{tmp}/grad/grads.safetensors")["x.v"]
same(grad, np.load(f"{want}/grad.npy"), "the gradient")
if bad:
    sys.exit("FAIL: " + "; ".join(bad))
print(f"ok: fake_quant's values (evaluator, compiled) and its straight-through gradient "
      f"({np.mean(grad == 0):.0%} zeros) equal PyTorch's bit for bit")
PY
