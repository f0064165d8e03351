#!/usr/bin/env bash
# Quantization-aware training of grouped convolutions (issue 19, docs/int8.md
# "Quantization-aware training"): tests/int8/qat_grouped.lathe, a depthwise conv2d (4 groups,
# 2 outputs per channel) and a conv2d with 2 groups between int8 layers, a residual add, against
# PyTorch (F.conv2d with groups; tests/int8/make_qat_grouped_fixture.py, committed under
# tests/fixtures/qat_grouped/: each grouped weight fake-quantized per output channel).
#   1. the gradients of the compile-time backward pass (`lathe grad`) and the loss equal torch's;
#   2. two SGD steps by `lathe train`: params and ranges (dw.qat_out, g.qat_out included) equal
#      torch's; resumed after one step == straight, bit for bit;
#   3. conversion: trained on 256 samples, `lathe quantize` (no calibration pass) writes both
#      grouped layers as qconv2d with `groups` from the checkpoint's ranges; every scale and
#      zero point is the oracle's choose_params of its range, every int8 weight, bias,
#      multiplier and shift the oracle's from the trained weights (per output channel), and
#      the oracle's chain conv2d -> depthwise -> grouped from quantize(x) gives the converted
#      model's int8 values bit for bit (tests/int8/quantize_ref.py); each int8 op (qconv2d
#      with and without groups, qadd, qdense) on the int8 model's own inputs is within one
#      quantum of the fake-quantized op on the same values, every element; end to end (the
#      report) every int8 tensor is within three quanta of the fake-quantized model (measured:
#      the depthwise layer's finer scale turns c1's one quantum into three) and the predictions
#      agree.
set -euo pipefail
# shellcheck source=tests/int8/qat_check.bash
source "$(realpath "$2")/tests/int8/qat_check.bash" # LATHE, ROOT, PY, TMP (the cwd)
M=$ROOT/tests/int8/qat_grouped.lathe
F=$ROOT/tests/fixtures/qat_grouped

# ---- 1. gradients ---------------------------------------------------------------------------
qat_grad "$M" "$F"

# ---- 2. two steps, the ranges in the checkpoint, resume ---------------------------------------
qat_steps "$M" "$F" c1.qat_in,c1.qat_out,dw.qat_out,g.qat_out,r.qat_add,h.qat_out

# ---- 3. conversion without calibration ------------------------------------------------------
$PY - <<'PY'
import numpy as np
r = np.random.default_rng(11)
x = r.random((256, 2, 6, 6), dtype=np.float32) * 2 - 0.5
label = (x[:, 0].sum(axis=(1, 2)) > x[:, 1].sum(axis=(1, 2))).astype(np.int32)
label += 2 * (x[:, :, :3].sum(axis=(1, 2, 3)) > x[:, :, 3:].sum(axis=(1, 2, 3)))
np.save("x256.npy", x), np.save("label256.npy", label)
np.save("x8.npy", x[:8])
PY
qat_train "$M" x256.npy,label256.npy --resume w0.safetensors --epochs 3 --checkpoint qat.safetensors
quiet "$LATHE" quantize "$M" --weights qat.safetensors -o int8 --calibrate x256.npy,label256.npy \
  --report-json report.json
grep -q "taking the ranges of 6 tensors of 5 layers from qat.safetensors" log ||
  { cat log; echo "FAIL: the conversion did not take the checkpoint's ranges"; exit 1; }
DW="  dw = qconv_group_layer(c1, 8, 3, 3, stride = 1, padding = 1, dilation = 1, groups = 4,"
GC="  g = qconv_group_layer(dw, 4, 3, 3, stride = 1, padding = 1, dilation = 1, groups = 2,"
grep -qF "$DW" int8.lathe && grep -qF "$GC" int8.lathe &&
  grep -q "^  r = qadd(c1, g, .*, qmin = " int8.lathe ||
  { cat int8.lathe; echo "FAIL: the grouped layers are not qconv2d with groups"; exit 1; }
# without --calibrate (nothing to compare against): the same weights byte for byte, the same
# model text but for its header comment (which names the command)
quiet "$LATHE" quantize "$M" --weights qat.safetensors -o nocal
cmp nocal.safetensors int8.safetensors &&
  cmp <(grep -v "^#" nocal.lathe) <(grep -v "^#" int8.lathe) ||
  { echo "FAIL: the conversion without --calibrate differs"; exit 1; }
echo "ok: converted without --calibrate: the same int8 model and weights"
[ "$(grep -c "dequantize(" int8.lathe)" = 1 ] && grep -q "^  h_f = dequantize(h," int8.lathe ||
  { cat int8.lathe; echo "FAIL: a float island in the converted model"; exit 1; }
sed 's/^  output probs$/  output c1\n  output dw\n  output g\n  output probs/' int8.lathe \
  >int8o.lathe
grep -q "^  output dw$" int8o.lathe
quiet "$LATHE" run int8o.lathe --weights int8.safetensors --input x=x8.npy --out q8 --reference
$PY "$ROOT/tests/int8/quantize_ref.py" qat.safetensors int8.safetensors report.json x8.npy q8 |
  tee oracle.log
grep -q "ok: g equals the oracle's conv2d (2 groups) bit for bit" oracle.log ||
  { echo "FAIL: the oracle's chain did not reach the grouped layer"; exit 1; }
quiet "$LATHE" run "$M" --weights qat.safetensors --input x=x8.npy --out fq
quiet "$LATHE" run int8.lathe --weights int8.safetensors --input x=x8.npy --out q
# end to end: one quantum off at an op moves the next by more where the next's scale is finer
# (dw's quantum is about half of c1's, and a depthwise tap sums 9 of them): measured 3 quanta
qat_converted '{"x": "c1.qat_in", "c1": "c1.qat_out", "dw": "dw.qat_out", "g": "g.qat_out",
  "r": "r.qat_add", "h": "h.qat_out"}' 3

# each int8 op of the converted model on its own int8 inputs against the fake-quantized op of
# the QAT graph on the same values (weights fake-quantized per output channel, float sums per
# group, the output fake-quantized with its trained range): within one quantum, every element
OUTS=$(printf '  output %s\\n' x_q c1 dw g r pool h)
sed "s/^  output probs\$/$OUTS  output probs/" int8.lathe >probed.lathe
quiet "$LATHE" run probed.lathe --weights int8.safetensors --input x=x8.npy --out ops
$PY - "$ROOT/tests/fixtures" "$ROOT/tests/int8" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import numpy as np, safetensors_py as st
import tflite_ref as ref
t = {e["name"]: e for e in json.load(open("report.json"))["tensors"]}
t["x_q"], t["pool"] = t["x"], t["r"]
w, v = st.load("qat.safetensors"), {}
for n in ("x_q", "c1", "dw", "g", "r", "pool", "h"):
    v[n] = np.load(f"ops/{n}.npy")
    assert v[n].dtype == np.int8, f"FAIL: {n} is {v[n].dtype}, not int8"
deq = lambda n: ref.dequantize(v[n], t[n]["scale"], t[n]["zp"]).astype(np.float64)

def fq_weight(name, axis):
    wt = w[name].astype(np.float32)
    s = ref.symmetric_weight_scales(wt, axis)
    return ref.dequantize(ref.quantize(wt, s, 0, -127, 127, axis), s, 0, axis).astype(np.float64)

def conv(x, name, groups):  # stride 1, padding 1, NCHW; output o reads group o // (O / groups)
    k = fq_weight(name + ".w", 0)
    xp, hw = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), x.shape[2]
    c, o = x.shape[1] // groups, k.shape[0] // groups
    y = np.concatenate([
        sum(np.einsum("nchw,oc->nohw", xp[:, g * c:(g + 1) * c, i:i + hw, j:j + hw],
                      k[g * o:(g + 1) * o, :, i, j]) for i in range(3) for j in range(3))
        for g in range(groups)], axis=1)
    return y + w[name + ".b"].astype(np.float64).reshape(1, -1, 1, 1)

relu = lambda a: np.maximum(a, 0)
want = {"c1": relu(conv(deq("x_q"), "c1", 1)), "dw": relu(conv(deq("c1"), "dw", 4)),
        "g": conv(deq("dw"), "g", 2), "r": relu(deq("c1") + deq("g")),
        "h": relu(deq("pool").reshape(8, 36) @ fq_weight("h.w", 1) + w["h.b"].astype(np.float64))}
worst = {}
for n, y in want.items():
    q = ref.quantize(y.astype(np.float32), t[n]["scale"], t[n]["zp"])
    worst[n] = int(np.max(np.abs(q - v[n].astype(np.int64))))
    assert worst[n] <= 1, f"FAIL: {n} is {worst[n]} quanta from the fake-quantized op"
assert np.array_equal(ref.max_pool2d(v["r"], 2), v["pool"].astype(np.int64)), "FAIL: pool"
print(f"ok: every int8 op on its own inputs within one quantum of the fake-quantized op {worst}")
PY
