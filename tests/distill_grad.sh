#!/usr/bin/env bash
# tests/distill_grad.sh — the distillation loss and the student's gradients from the generated
# C (`lathe grad`: the compiled grad entry) equal PyTorch (tests/fixtures/make_distill_fixture.py):
# tests/distill/student.lathe in f32 (relative error <= 1e-5) and f64 (gradients <= 1e-9; the
# loss as printed, 9 digits, <= 1e-8), student_onnx.lathe (the teacher as ONNX) in f32, and
# with a run-time batch (-D N=dynamic(max=16), called at 8) and an ONNX teacher whose batch
# is symbolic (student_onnx_dynamic.lathe).
# Then `lathe train` of the student writes a checkpoint of the student's params alone.
set -euo pipefail
LATHE=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/distill
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1]).astype(np.float64))" \
  "$FIX/x.npy" "$TMP/x64.npy"

check() { # MODEL DTYPE X PRECISION GRAD_TOL LOSS_TOL [-D ...]
  local out=$TMP/$(basename "$1" .lathe)_$2_$#
  "$LATHE" grad "$ROOT/tests/distill/$1" --lib "$ROOT/lib" --dtype "$2" "${@:7}" \
    --weights "$FIX/student.safetensors" --input x="$3" --input label="$FIX/label.npy" \
    --out "$out" >"$out.txt"
  cat "$out.txt"
  /usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$out/grads.safetensors" \
    "$FIX/grads_$4.safetensors" "$5"
  /usr/bin/python3 - "$out.txt" "$FIX/loss_$4.npy" "$6" <<'PY'
import sys, numpy as np
got = float(open(sys.argv[1]).read().split()[1])
want = float(np.load(sys.argv[2]))
err = abs(got - want) / abs(want)
print(f"loss {got:.9g} vs PyTorch {want:.9g}: relative error {err:.2g}")
sys.exit(0 if err <= float(sys.argv[3]) else 1)
PY
}
check student.lathe f32 "$FIX/x.npy" f32 1e-5 1e-5
check student.lathe f64 "$TMP/x64.npy" f64 1e-9 1e-8
check student_onnx.lathe f32 "$FIX/x.npy" f32 1e-5 1e-5
# a symbolic ONNX batch: fixed to the student's static N, or dynamic like the student's
check student_onnx_dynamic.lathe f32 "$FIX/x.npy" f32 1e-5 1e-5
check student_onnx_dynamic.lathe f32 "$FIX/x.npy" f32 1e-5 1e-5 -D 'N=dynamic(max=16)'
check student.lathe f32 "$FIX/x.npy" f32 1e-5 1e-5 -D 'N=dynamic(max=16)'

# a few train steps: the checkpoint holds the student's params (and optimizer state) only
mkdir -p "$TMP/data"
/usr/bin/python3 - "$FIX" "$TMP/data" <<'PY'
import sys, numpy as np
x, label = np.load(sys.argv[1] + "/x.npy"), np.load(sys.argv[1] + "/label.npy")
np.save(sys.argv[2] + "/x.npy", np.tile(x, (4, 1)))
np.save(sys.argv[2] + "/label.npy", np.tile(label, 4))
PY
"$LATHE" train "$ROOT/tests/distill/student.lathe" --lib "$ROOT/lib" --data "$TMP/data" \
  --epochs 2 --checkpoint "$TMP/ckpt.safetensors" >"$TMP/train.txt" 2>&1 ||
  { cat "$TMP/train.txt"; exit 1; }
tail -n 2 "$TMP/train.txt"
/usr/bin/python3 - "$ROOT/tests/fixtures" "$TMP/ckpt.safetensors" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import safetensors_py
keys = sorted(safetensors_py.load(sys.argv[2]))
print("checkpoint:", ", ".join(keys))
bad = [k for k in keys if k.startswith("teacher")]
params = {"h.w", "h.b", "logits.w", "logits.b"}
sys.exit(1 if bad or not params <= set(keys) else 0)
PY
