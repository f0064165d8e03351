#!/usr/bin/env bash
# Quantization-aware training (issue 19, docs/int8.md "Quantization-aware training"): the
# `quantize` statement of tests/int8/qat_small.lathe against PyTorch's fake quantization
# (tests/fixtures/make_qat_fixture.py, committed under tests/fixtures/qat/), and the
# conversion of the trained model by `lathe quantize` without calibration.
#   1. the gradients of the compile-time backward pass (`lathe grad`: ranges from the batch)
#      and the loss equal torch's;
#   2. two train steps (`lathe train`, SGD): the params and the moving-average ranges in the
#      checkpoint equal torch's; a run resumed after the first step equals the straight run
#      bit for bit (ranges included);
#   3. conversion: trained on 256 samples, `lathe quantize` takes the ranges from the
#      checkpoint; every int8 layer's output is within one quantum of the QAT model's
#      fake-quantized one and the predictions agree (the report's JSON, and `lathe run` of
#      both models on a batch); the int8 model's scales are TFLite's from the ranges;
#   4. bad input: a float checkpoint (no ranges), options the statement decides, a model
#      without the statement and without --calibrate: clear errors, nothing written.
# The generated C train step against the evaluator: tests/unit/test_qat.c.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
PY=/usr/bin/python3
M=$ROOT/tests/int8/qat_small.lathe
F=$ROOT/tests/fixtures/qat
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
$PY -c 'import numpy' || { echo "int8_qat: python3-numpy is missing" >&2; exit 1; }
quiet() { "$@" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; echo "FAIL: $*" >&2; exit 1; }; }
close() { # close A.safetensors B.safetensors RTOL WHAT: every tensor of B in A, close
  $PY - "$ROOT/tests/fixtures" "$@" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, safetensors_py as st
a, b, rtol, what = st.load(sys.argv[2]), st.load(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
worst = 0.0
for k, want in b.items():
    got = a[k]
    assert got.shape == want.shape, f"{what}: {k} is {got.shape}, torch's {want.shape}"
    err = float(np.max(np.abs(got.astype(np.float64) - want) / np.maximum(1, np.abs(want))))
    assert err <= rtol, f"FAIL: {what}: {k} differs from torch's by {err:.3g} (> {rtol})"
    worst = max(worst, err)
print(f"ok: {what} equal torch's ({len(b)} tensors, largest relative error {worst:.2g})")
PY
}

# ---- 1. gradients ---------------------------------------------------------------------------
quiet "$LATHE" grad "$M" --weights "$F/weights.safetensors" --input x="$F/x.npy" \
  --input label="$F/label.npy" --out grad
close grad/grads.safetensors "$F/grads.safetensors" 1e-5 "the gradients through fake_quant"
$PY -c "
import numpy as np, re, sys
got = float(re.search(r'loss ([-0-9.e]+)', open('$TMP/log').read()).group(1))
want = float(np.load('$F/loss.npy'))
assert abs(got - want) <= 1e-5 * abs(want), f'FAIL: loss {got} against torch {want}'
print(f'ok: the loss {got} equals torch {want:.8f}')"

# ---- 2. two steps, the ranges in the checkpoint, resume ---------------------------------------
$PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/fixtures'); import safetensors_py as s, numpy as np
t = s.load('$F/weights.safetensors'); t['lathe.epoch'] = np.int64([0]).reshape(())
s.save('w0.safetensors', t)"
train() { quiet "$LATHE" train "$M" --data "$1" --task none "${@:2}"; }
DATA=$F/x.npy,$F/label.npy # one batch: one step per epoch
train "$DATA" --resume w0.safetensors --epochs 2 --checkpoint straight.safetensors
close straight.safetensors "$F/step2.safetensors" 1e-5 "params and ranges after two steps"
train "$DATA" --resume w0.safetensors --epochs 1 --checkpoint chain.safetensors
train "$DATA" --resume chain.safetensors --epochs 2 --checkpoint chain.safetensors
$PY - "$ROOT/tests/fixtures" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import safetensors_py as st
a, b = st.load("straight.safetensors"), st.load("chain.safetensors")
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
bad = [k for k in a if a[k].tobytes() != b[k].tobytes()]
assert not bad, f"FAIL: the resumed run differs from the straight one in {bad}"
assert all(k in a for k in ("c1.qat_in", "c1.qat_out", "h.qat_out")), sorted(a)
print(f"ok: the checkpoint carries the ranges; resumed == straight bit for bit ({len(a)} tensors)")
PY

# ---- 3. conversion without calibration ------------------------------------------------------
$PY - <<'PY'
import numpy as np
r = np.random.default_rng(5)
x = r.random((256, 1, 6, 6), dtype=np.float32) * 2 - 0.5
label = (x[:, 0, :3].sum(axis=(1, 2)) > x[:, 0, 3:].sum(axis=(1, 2))).astype(np.int32)
label += 2 * (x[:, 0, :, :3].sum(axis=(1, 2)) > x[:, 0, :, 3:].sum(axis=(1, 2)))
np.save("x256.npy", x), np.save("label256.npy", label)
np.save("x8.npy", x[:8])
PY
train x256.npy,label256.npy --resume w0.safetensors --epochs 3 --checkpoint qat.safetensors
quiet "$LATHE" quantize "$M" --weights qat.safetensors -o int8 --calibrate x256.npy,label256.npy \
  --report-json report.json
grep -q "taking the ranges of 3 tensors of 3 layers from qat.safetensors" log ||
  { cat log; echo "FAIL: the conversion did not take the checkpoint's ranges"; exit 1; }
quiet "$LATHE" run "$M" --weights qat.safetensors --input x=x8.npy --out fq
quiet "$LATHE" run int8.lathe --weights int8.safetensors --input x=x8.npy --out q
$PY - "$ROOT/tests/fixtures" "$ROOT/tests/int8" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import numpy as np, safetensors_py as st
import tflite_ref as ref
rep, ck = json.load(open("report.json")), st.load("qat.safetensors")
by_name = {"x": "c1.qat_in", "c1": "c1.qat_out", "h": "h.qat_out"}
for t in rep["tensors"]:
    lo, hi = (float(v) for v in ck[by_name[t["name"]]])
    s, z = ref.choose_params(lo, hi)
    assert (np.float32(t["scale"]), t["zp"]) == (np.float32(s), z), \
        f"FAIL: {t['name']}: scale {t['scale']} zp {t['zp']}, the oracle's {s} {z} of [{lo}, {hi}]"
worst = 0.0
for layer in rep["layers"]:
    if not layer["int8"]:
        continue
    scale = rep["tensors"][layer["y"]]["scale"]
    quanta = layer["max_abs_err"] / scale
    assert quanta <= 1 + 1e-5, f"FAIL: layer {layer['name']} is {quanta:.3f} quanta off"
    worst = max(worst, quanta)
out = rep["outputs"][0]
assert out["top1_agreement"] == 1, f"FAIL: top-1 agreement {out['top1_agreement']}"
fq, q = np.load("fq/probs.npy"), np.load("q/probs.npy")
assert np.array_equal(fq.argmax(1), q.argmax(1)), "FAIL: the predictions of the batch differ"
print(f"ok: int8 layers within {worst:.3f} quanta of the QAT model (256 samples); probs max "
      f"|diff| {out['max_abs_err']:.3g}, on a batch {np.abs(fq - q).max():.3g}; top-1 agrees")
PY

# ---- 4. bad input ----------------------------------------------------------------------------
fails() { # fails EXPECTED-TEXT COMMAND...: exits non-zero, says the text, writes no int8 files
  local want=$1
  shift
  if "$@" >"$TMP/log" 2>&1; then echo "FAIL: accepted: $*"; exit 1; fi
  grep -qF -- "$want" "$TMP/log" || { cat "$TMP/log"; echo "FAIL: expected '$want'"; exit 1; }
  [ ! -e bad.lathe ] && [ ! -e bad.safetensors ] || { echo "FAIL: output written: $*"; exit 1; }
}
fails "has no range 'c1.qat_in' (f32[2], min and max) for 'x': train the model" \
  "$LATHE" quantize "$M" --weights "$F/weights.safetensors" -o bad
fails "--keep-float: this model's quantize statement chooses the float layers" \
  "$LATHE" quantize "$M" --weights qat.safetensors -o bad --keep-float h
sed -e '/^  quantize$/d' "$M" > float.lathe
fails "expected --calibrate SPEC" "$LATHE" quantize float.lathe --weights qat.safetensors -o bad
$PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/fixtures'); import safetensors_py as s, numpy as np
t = s.load('qat.safetensors'); t['h.qat_out'] = np.zeros(2, np.float32); s.save('z.safetensors', t)"
fails "cannot quantize 'h' (range 'h.qat_out' of z.safetensors is [0, 0]): degenerate range" \
  "$LATHE" quantize "$M" --weights z.safetensors -o bad
echo "ok: a float checkpoint, --keep-float, no --calibrate without QAT, a zero range: refused"
