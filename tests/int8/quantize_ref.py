#!/usr/bin/python3
"""tests/int8/quantize_ref.py — `lathe quantize`'s numbers against the oracle (issue 19).

    quantize_ref.py FLOAT.safetensors INT8.safetensors REPORT.json X.npy OUTDIR

With the report of `lathe quantize --report-json` (each observed tensor's chosen range, scale
and zero point; each layer's weight and bias names and its input/output tensors):
  - every scale and zero point is the oracle's choose_params of the chosen range; an int8
    softmax's range is [0, 255/256] (1/256, -128) and an int8 concat's the union of its
    inputs' ranges (concat_params);
  - every int8 layer's weights, bias, multipliers and shifts are the oracle's
    symmetric_weight_scales / quantize / quantize_bias / output_multipliers of the float
    checkpoint (per output channel: the dense weight's column, the conv weight's row; in
    [-127, 127], or [-63, 63] when the report's weight_max says --reduce-range);
  - the int8 layers of a chain (each reading quantize(X) or the layer before it directly, as
    the report's x_name says: an MLP's dense layers, a CNN's convolutions with no pooling
    between), run by the oracle's fully_connected and conv2d (per group for a grouped or
    depthwise conv2d: tests/int8/qgroup_ref.py's grouped_conv2d) from quantize(X), give
    exactly the int8 tensors OUTDIR/<layer>.npy that lathe computed; the chain stops at the
    first layer whose input is something else (a pooled or flattened tensor).
With --expected DIR (after the five arguments), the oracle's int8 chain is also saved there
as DIR/<layer>.npy, for tests/int8/oracle_check.bash's `check` of every backend.
Exits 1 naming the first mismatch of each check.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import safetensors_py  # noqa: E402
import tflite_ref as ref  # noqa: E402
import tflite_softmax as sm  # noqa: E402
from qgroup_ref import grouped_conv2d  # noqa: E402

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)
    return cond


def check_rule(t, tensors):
    """an int8 softmax's range is [0, 255/256] (scale 1/256, zero point -128: TFLite's); an
    int8 concat's the union of its inputs' ranges (concat_params of tflite_softmax.py)"""
    rule = t.get("rule", "observed")
    if rule == "softmax":
        check((t["lo"], t["hi"]) == (0, 255 / 256) and np.float32(t["scale"]) == np.float32(1 / 256)
              and t["zp"] == -128, f"{t['name']}: an int8 softmax's parameters are not 1/256, -128")
    elif rule == "concat":
        ins = [tensors[k] for k in t["inputs"]]
        check(len(ins) >= 2 and t["lo"] == min(i["lo"] for i in ins) and
              t["hi"] == max(i["hi"] for i in ins),
              f"{t['name']}: the concat's range is not the union of its inputs' ranges")
        scale, zp = sm.concat_params([(i["lo"], i["hi"]) for i in ins])
        check(np.float32(scale) == np.float32(t["scale"]) and zp == t["zp"],
              f"{t['name']}: concat_params gives ({scale}, {zp}), lathe ({t['scale']}, {t['zp']})")
    else:
        check(rule == "observed" and not t.get("inputs"), f"{t['name']}: rule {rule}")


def check_params(report):
    for t in report["tensors"]:
        scale, zp = ref.choose_params(t["lo"], t["hi"])
        check(np.float32(scale) == np.float32(t["scale"]) and zp == t["zp"],
              f"{t['name']}: choose_params gives ({scale}, {zp}), lathe ({t['scale']}, {t['zp']})")
        check_rule(t, report["tensors"])
    rules = sorted({t.get("rule", "observed") for t in report["tensors"]})
    print(f"ok: {len(report['tensors'])} tensors' scales and zero points are choose_params' "
          f"(rules: {', '.join(rules)})")


def check_layer(layer, tensors, fw, qw, per_channel, wmax):
    name, conv = layer["name"], layer["op"] == "conv2d"
    w = fw[layer["weight"]].astype(np.float32)
    axis = 0 if conv else 1
    scales = ref.symmetric_weight_scales(w, axis, wmax)
    if not per_channel:
        scales = np.full_like(scales, ref.symmetric_weight_scales(w.reshape(1, -1), 0, wmax)[0])
    wq = ref.quantize(w, scales, 0, -wmax, wmax, axis=axis)
    check(np.array_equal(wq, qw[name + ".w"].astype(np.int64)), f"{name}.w: not the oracle's")
    sx, sy = tensors[layer["x"]]["scale"], tensors[layer["y"]]["scale"]
    if layer["bias"]:
        b = ref.quantize_bias(fw[layer["bias"]], np.float32(sx), scales)
        check(np.array_equal(b, qw[name + ".b"].astype(np.int64)), f"{name}.b: not the oracle's")
    m, s = ref.output_multipliers(np.float32(sx), scales, np.float32(sy))
    check(np.array_equal(m, qw[name + ".m"].astype(np.int64)) and
          np.array_equal(s, qw[name + ".s"].astype(np.int64)),
          f"{name}: multipliers and shifts are not output_multipliers'")


def run_layer(L, q, tx, ty, qw):
    """The oracle's int8 layer L on its int8 input q."""
    lo, hi = ref.activation_range("relu" if L["relu"] else "none", ty["scale"], ty["zp"])
    p = [qw[L["name"] + k] for k in (".w", ".b", ".m", ".s")]
    if L["op"] == "dense":
        return ref.fully_connected(q.reshape(q.shape[0], -1), tx["zp"], *p, ty["zp"], lo, hi)
    return grouped_conv2d(q, tx["zp"], L["groups"], *p, ty["zp"], stride=L["stride"],
                          padding=L["padding"], dilation=L["dilation"], act_min=lo, act_max=hi)


def check_chain(report, qw, x, outdir, expected):
    tensors, prev = report["tensors"], None
    layers = [L for L in report["layers"] if L["int8"]]
    t0 = tensors[layers[0]["x"]]
    q = ref.quantize(x if layers[0]["op"] != "dense" else x.reshape(x.shape[0], -1),
                     t0["scale"], t0["zp"])
    for k, L in enumerate(layers):
        if k and L["x_name"] != prev:
            print(f"note: the chain stops at {L['name']} (its input {L['x_name']} is not "
                  f"{prev})")
            return
        q = run_layer(L, q, tensors[L["x"]], tensors[L["y"]], qw)
        prev = L["name"]
        if expected:
            np.save(os.path.join(expected, L["name"] + ".npy"), q.astype(np.int8))
        path = os.path.join(outdir, L["name"] + ".npy")
        if not os.path.exists(path):
            print(f"note: the chain stops at {L['name']} (not among lathe's outputs)")
            return
        got = np.load(path)
        kind = ("fully_connected" if L["op"] == "dense" else "conv2d" if L["groups"] == 1
                else f"conv2d ({L['groups']} groups)")
        if not check(got.dtype == np.int8 and np.array_equal(got.astype(np.int64), q),
                     f"{L['name']}: lathe's int8 values differ from the oracle's {kind}"):
            return
        print(f"ok: {L['name']} equals the oracle's {kind} bit for bit ({q.size} values)")


def main():
    fw, qw = safetensors_py.load(sys.argv[1]), safetensors_py.load(sys.argv[2])
    with open(sys.argv[3]) as f:
        report = json.load(f)
    x = np.load(sys.argv[4])
    check_params(report)
    for layer in report["layers"]:
        if layer["int8"]:
            check_layer(layer, report["tensors"], fw, qw, report["per_channel"],
                        report.get("weight_max", ref.WEIGHT_MAX))
    print(f"ok: weights, biases, multipliers and shifts checked for "
          f"{sum(L['int8'] for L in report['layers'])} int8 layers")
    expected = sys.argv[7] if len(sys.argv) == 8 and sys.argv[6] == "--expected" else None
    if expected:
        os.makedirs(expected, exist_ok=True)
    check_chain(report, qw, x, sys.argv[5], expected)
    print("quantize_ref:", "FAILED" if failures else "ok", f"({failures} failures)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
