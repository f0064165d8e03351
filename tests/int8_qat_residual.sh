#!/usr/bin/env bash
# Quantization-aware training of residual connections (issue 19, docs/int8.md
# "Quantization-aware training"): tests/int8/qat_residual.lathe, whose two adds of int8 tensors
# `lathe quantize` writes as qadds (r = relu(c1 + c2) with the ReLU in the clamp, s = pool + c3),
# against PyTorch (tests/fixtures/make_qat_fixture.py residual, committed under
# tests/fixtures/qat_residual/: each add fake-quantized with a moving-average range of its own).
#   1. the gradients of the compile-time backward pass (`lathe grad`) and the loss equal torch's;
#   2. two SGD steps by `lathe train`: params and ranges (r.qat_add, s.qat_add included) equal
#      torch's; resumed after one step == straight, bit for bit;
#   3. conversion: trained on 256 samples, `lathe quantize` writes both adds as qadds with the
#      checkpoint's ranges and nothing float before the last layer; each qadd's constants are
#      the oracle's add_params of the ranges' scales; each int8 op (qconv2d, qadd, qdense) on
#      the int8 model's own inputs is within one quantum of the fake-quantized op on the same
#      values, every element; end to end (the report) every int8 tensor is within two quanta of
#      the fake-quantized model (one per op, accumulated down the chain) and the predictions
#      agree.
# The generated C of every entry against the evaluator: tests/unit/test_qat.c.
set -euo pipefail
# shellcheck source=tests/int8/qat_check.bash
source "$(realpath "$2")/tests/int8/qat_check.bash" # LATHE, ROOT, PY, TMP (the cwd)
M=$ROOT/tests/int8/qat_residual.lathe
F=$ROOT/tests/fixtures/qat_residual

# ---- 1. gradients ---------------------------------------------------------------------------
qat_grad "$M" "$F"

# ---- 2. two steps, the ranges in the checkpoint, resume ---------------------------------------
qat_steps "$M" "$F" c1.qat_in,c1.qat_out,c2.qat_out,r.qat_add,c3.qat_out,s.qat_add,h.qat_out

# ---- 3. conversion without calibration ------------------------------------------------------
$PY - <<'PY'
import numpy as np
r = np.random.default_rng(7)
x = r.random((256, 2, 6, 6), dtype=np.float32) * 2 - 0.5
label = (x[:, 0].sum(axis=(1, 2)) > x[:, 1].sum(axis=(1, 2))).astype(np.int32)
label += 2 * (x[:, :, :3].sum(axis=(1, 2, 3)) > x[:, :, 3:].sum(axis=(1, 2, 3)))
np.save("x256.npy", x), np.save("label256.npy", label)
np.save("x8.npy", x[:8])
PY
qat_train "$M" x256.npy,label256.npy --resume w0.safetensors --epochs 3 --checkpoint qat.safetensors
quiet "$LATHE" quantize "$M" --weights qat.safetensors -o int8 --calibrate x256.npy,label256.npy \
  --report-json report.json
grep -q "taking the ranges of 7 tensors of 5 layers from qat.safetensors" log ||
  { cat log; echo "FAIL: the conversion did not take the checkpoint's ranges"; exit 1; }
grep -q "^  r = qadd(c1, c2, .*, qmin = " int8.lathe &&
  grep -q "^  pool = max_pool2d(r, 2" int8.lathe &&
  grep -q "^  s = qadd(pool, c3, [-0-9, ]*)  #" int8.lathe ||
  { cat int8.lathe; echo "FAIL: the residual adds are not qadds"; exit 1; }
[ "$(grep -c "dequantize(" int8.lathe)" = 1 ] && grep -q "^  h_f = dequantize(h," int8.lathe ||
  { cat int8.lathe; echo "FAIL: a float island in the converted model"; exit 1; }
$PY - "$ROOT/tests/int8" <<'PY'
import json, re, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import tflite_ref as ref
t = {e["name"]: e for e in json.load(open("report.json"))["tensors"]}
text = open("int8.lathe").read()
for out, a, b, qa in (("r", "c1", "c2", "c1"), ("s", "pool", "c3", "r")):
    nums = [int(k) for k in re.search(rf"^  {out} = qadd\({a}, {b}, ([-0-9, ]*)", text,
                                      re.M).group(1).split(",") if k.strip()]
    _, m1, m2, mo = ref.add_params(np.float32(t[qa]["scale"]), np.float32(t[b]["scale"]),
                                   np.float32(t[out]["scale"]))
    want = [t[qa]["zp"], t[b]["zp"], t[out]["zp"], *m1, *m2, *mo]
    assert nums == want, f"FAIL: {out}: qadd constants {nums}, the oracle's {want}"
print("ok: the qadds' constants are the oracle's add_params of the trained ranges")
PY
quiet "$LATHE" run "$M" --weights qat.safetensors --input x=x8.npy --out fq
quiet "$LATHE" run int8.lathe --weights int8.safetensors --input x=x8.npy --out q
qat_converted '{"x": "c1.qat_in", "c1": "c1.qat_out", "c2": "c2.qat_out", "r": "r.qat_add",
  "c3": "c3.qat_out", "s": "s.qat_add", "h": "h.qat_out"}' 2

# each int8 op of the converted model on its own int8 inputs against the fake-quantized op of
# the QAT graph on the same values (weights fake-quantized per channel, float sums, the
# output fake-quantized with its trained range): within one quantum, every element
OUTS=$(printf '  output %s\\n' x_q c1 c2 r pool c3 s h)
sed "s/^  output probs\$/$OUTS  output probs/" int8.lathe >probed.lathe
quiet "$LATHE" run probed.lathe --weights int8.safetensors --input x=x8.npy --out ops
$PY - "$ROOT/tests/fixtures" "$ROOT/tests/int8" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import numpy as np, safetensors_py as st
import tflite_ref as ref
t = {e["name"]: e for e in json.load(open("report.json"))["tensors"]}
t["pool"] = t["r"]
w, v = st.load("qat.safetensors"), {}
for n in ("x_q", "c1", "c2", "r", "pool", "c3", "s", "h"):
    v[n] = np.load(f"ops/{n}.npy")
    assert v[n].dtype == np.int8, f"FAIL: {n} is {v[n].dtype}, not int8"
deq = lambda n: ref.dequantize(v[n], t[n if n != "x_q" else "x"]["scale"],
                               t[n if n != "x_q" else "x"]["zp"]).astype(np.float64)

def fq_weight(name, axis):
    wt = w[name].astype(np.float32)
    s = ref.symmetric_weight_scales(wt, axis)
    shape = [1] * wt.ndim
    shape[axis] = -1
    return ref.dequantize(ref.quantize(wt, s, 0, -127, 127, axis), s, 0, axis).astype(np.float64)

def conv(x, name):  # stride 1, padding 1, NCHW
    k = fq_weight(name + ".w", 0)
    xp, hw = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), x.shape[2]
    y = sum(np.einsum("nchw,oc->nohw", xp[:, :, i:i + hw, j:j + hw], k[:, :, i, j])
            for i in range(3) for j in range(3))
    return y + w[name + ".b"].astype(np.float64).reshape(1, -1, 1, 1)

relu = lambda a: np.maximum(a, 0)
want = {"c1": relu(conv(deq("x_q"), "c1")), "c2": conv(deq("c1"), "c2"),
        "r": relu(deq("c1") + deq("c2")), "c3": conv(deq("pool"), "c3"),
        "s": deq("pool") + deq("c3"),
        "h": relu(deq("s").reshape(8, 36) @ fq_weight("h.w", 1) + w["h.b"].astype(np.float64))}
worst = {}
for n, y in want.items():
    q = ref.quantize(y.astype(np.float32), t[n]["scale"], t[n]["zp"])
    worst[n] = int(np.max(np.abs(q - v[n].astype(np.int64))))
    assert worst[n] <= 1, f"FAIL: {n} is {worst[n]} quanta from the fake-quantized op"
assert np.array_equal(ref.max_pool2d(v["r"], 2), v["pool"].astype(np.int64)), "FAIL: pool"
print(f"ok: every int8 op on its own inputs within one quantum of the fake-quantized op {worst}")
PY
